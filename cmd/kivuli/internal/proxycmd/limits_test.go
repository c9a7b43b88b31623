package proxycmd

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

const esHost = "search-logs-abc.eu-west-2.es.amazonaws.com"

// waitMetric polls the proxy's metrics until series has the value want.
func waitMetric(t *testing.T, admin, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(wiretest.FailAfter)
	for {
		got := metricValue(t, admin, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", series, got, want)
		}
		time.Sleep(10 * time.Millisecond) // polling a metric: nothing to wait on
	}
}

// At the defaults, 64 clients are served at once, and twice as many see no
// 503: the ones past --max-requests wait their turn.
func TestProxyDefaultsServeManyClients(t *testing.T) {
	const served = 64
	var mu sync.Mutex
	n := 0
	gate := make(chan struct{})
	f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if n++; n == served {
			close(gate) // as many requests at once as the defaults allow
		}
		mu.Unlock()
		select {
		case <-gate:
		case <-time.After(wiretest.FailAfter):
			http.Error(w, "fewer than 64 requests arrived at once", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := startProxy(t, f, "--sign-host", esHost)
	answers := make(chan wiretest.Answer, 2*served)
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * served}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for range 2 * served {
		go func() {
			resp, err := c.Get(p.url + "/logs/_search")
			if err != nil {
				answers <- wiretest.Answer{Err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- wiretest.Answer{Status: resp.StatusCode, Body: string(b)}
		}()
	}
	for range 2 * served {
		if a := <-answers; a.Status != http.StatusOK {
			t.Errorf("%d %q %v", a.Status, a.Body, a.Err)
		}
	}
}

// A request line and headers over --max-headers get 431; under it, they
// pass. The admin listener, which serves small requests only, takes 8 KiB.
func TestProxyMaxHeaders(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	p := startProxy(t, f, "--sign-host", esHost, "--max-headers", "8KiB")
	for _, c := range []struct {
		pad  int
		want int
	}{{4 << 10, http.StatusOK}, {16 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		resp, body := wiretest.RawRequest(t, p.host(), "GET /logs/_search HTTP/1.1\nHost: localhost\nX-Pad: "+strings.Repeat("a", c.pad)+"\n\n")
		if resp.StatusCode != c.want {
			t.Errorf("%d bytes of headers: %d %q", c.pad, resp.StatusCode, body)
		}
		resp, body = wiretest.RawRequest(t, strings.TrimPrefix(p.admin, "http://"), "GET /healthz HTTP/1.1\nHost: localhost\nX-Pad: "+strings.Repeat("a", c.pad)+"\n\n")
		if resp.StatusCode != c.want {
			t.Errorf("admin, %d bytes of headers: %d %q", c.pad, resp.StatusCode, body)
		}
	}
}

// At --max-conns, a connection idle between requests is closed to make
// room for a new one; with none idle, a new connection waits to be
// accepted until a request ends.
func TestProxyMaxConns(t *testing.T) {
	h, arrived, release := wiretest.HoldingUpstream(t)
	f := wiretest.NewFixture(t, imdstestConfig(), h)
	p := startProxy(t, f, "--sign-host", esHost, "--max-conns", "2")
	type conn struct {
		net.Conn
		br *bufio.Reader
	}
	dial := func(path string) conn {
		c, err := net.Dial("tcp", p.host())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		return conn{c, bufio.NewReader(c)}
	}
	answered := func(c conn) {
		t.Helper()
		if resp, body := wiretest.ReadAnswer(t, c, c.br); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	a := dial("/hold/a")
	wiretest.WaitArrivals(t, arrived, 1)
	b := dial("/now/b")
	answered(b) // b is now idle, kept alive
	wiretest.WaitArrivals(t, arrived, 1)
	c := dial("/hold/c")
	wiretest.WaitArrivals(t, arrived, 1)
	b.SetReadDeadline(time.Now().Add(wiretest.FailAfter))
	if n, err := b.br.ReadByte(); err != io.EOF {
		t.Errorf("the idle connection was not closed to make room: %v %v", n, err)
	}
	waitMetric(t, p.admin, "kivuli_proxy_open_connections", 2)
	// Both connections busy: a third waits, unanswered.
	d := dial("/now/d")
	d.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := d.br.Peek(1); !isTimeout(err) {
		t.Fatalf("a connection past --max-conns was served at once: %v", err)
	}
	if len(arrived) != 0 {
		t.Fatalf("%q reached the upstream", <-arrived)
	}
	release()
	answered(a)
	answered(c)
	answered(d)
}

// isTimeout reports a read that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
