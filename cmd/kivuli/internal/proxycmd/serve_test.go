package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// On SIGTERM the proxy stops accepting connections, answers 503 on
// /readyz, lets the request in flight finish, and exits 0; past
// --drain-timeout it ends what is left and exits 0 all the same.
func TestProxyDrainsOnSIGTERM(t *testing.T) {
	arrived := make(chan string, 4)
	release := make(chan struct{})
	f := testkit.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	}))
	for _, c := range []struct {
		name    string
		timeout string
		finish  bool // the upstream answers during the drain
	}{
		{"drained", "30s", true},
		{"timed out", "200ms", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProxyProcess(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--drain-timeout", c.timeout)
			type result struct {
				status int
				body   string
				err    error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := http.Get(p.url + "/logs/_search")
				if err != nil {
					got <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{resp.StatusCode, string(b), err}
			}()
			select {
			case <-arrived:
			case <-time.After(failAfter):
				t.Fatal("the request did not reach the upstream")
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			p.waitLine(t, "not accepting connections")
			if c.finish {
				resp, err := http.Get(p.admin + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "draining") {
					t.Errorf("/readyz while draining: %d %s", resp.StatusCode, b)
				}
				if _, err := http.Get(p.url + "/logs/_count"); err == nil {
					t.Error("a new connection was accepted while draining")
				}
				release <- struct{}{}
				r := <-got
				if r.err != nil || r.status != http.StatusOK || r.body != "done" {
					t.Errorf("the request in flight: %d %q %v", r.status, r.body, r.err)
				}
			} else {
				p.waitLine(t, "drain timed out")
				if r := <-got; r.err == nil && r.status == http.StatusOK && r.body == "done" {
					t.Error("the request outlived the drain")
				}
			}
			err := p.cmd.Wait()
			if err != nil {
				t.Errorf("kivuli proxy: %v\n%s", err, p.stderr.String())
			}
			p.waitLine(t, "kivuli proxy: stopped")
		})
	}
}

// bulkBlock is a mebibyte of an OpenSearch _bulk body: NDJSON action and
// document lines.
var bulkBlock = func() []byte {
	var b []byte
	for n := 0; len(b) < 1<<20; n++ {
		b = fmt.Appendf(b, "{\"index\":{\"_index\":\"logs-2026.12.01\"}}\n{\"n\":%d,\"level\":\"info\",\"message\":\"request served in %d ms\"}\n", n, n%997)
	}
	return b
}()

// bulkReader is an endless _bulk body, bulkBlock over and over.
type bulkReader struct{ off int }

func (b *bulkReader) Read(p []byte) (int, error) {
	n := copy(p, bulkBlock[b.off:])
	b.off = (b.off + n) % len(bulkBlock)
	return n, nil
}

// A 100 MiB OpenSearch bulk body, with its length and chunked, is spooled
// to a file, hashed from it and sent, accepted by sigv4test; the proxy's
// memory stays far below the body (the Go runtime's whole memory, and
// the bodies held in memory, counted by the proxy's own metrics), and the
// spool directory is empty afterwards. The proxy runs as a process of its
// own, so that its memory is its own.
func TestProxySpoolsLargeBodies(t *testing.T) {
	f := testkit.NewFixture(t, imdstestConfig(), nil)
	spool := t.TempDir()
	p := startProxyProcess(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--spool-dir", spool)
	const size = 100 << 20
	for _, chunked := range []bool{false, true} {
		h := sha256.New()
		req, err := http.NewRequest(http.MethodPost, p.url+"/_bulk", io.TeeReader(io.LimitReader(&bulkReader{}, size), h))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.ContentLength = size
		if chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("chunked %v: %d %s", chunked, resp.StatusCode, b)
		}
		recs := accepted(t, f.AWS)
		r := recs[len(recs)-1]
		if r.BodyLen != size || r.Chunked || r.PayloadHash != hex.EncodeToString(h.Sum(nil)) {
			t.Errorf("chunked %v: %d bytes, chunked %v, hash %s", chunked, r.BodyLen, r.Chunked, r.PayloadHash)
		}
	}
	p.waitRequests(t, 2)
	m := map[string]float64{}
	for _, s := range []string{`kivuli_proxy_request_bodies_total{mode="spooled"}`, `kivuli_proxy_body_memory_peak_bytes`,
		`go_memstats_sys_bytes`, `go_memstats_heap_alloc_bytes`, `kivuli_process_resident_memory_peak_bytes`} {
		m[s] = metricValue(t, p.admin, s)
	}
	t.Logf("after 2 x 100 MiB: Go runtime %.1f MiB, heap %.1f MiB, peak RSS (race detector included) %.1f MiB, peak body memory %.0f KiB",
		m[`go_memstats_sys_bytes`]/(1<<20), m[`go_memstats_heap_alloc_bytes`]/(1<<20),
		m[`kivuli_process_resident_memory_peak_bytes`]/(1<<20), m[`kivuli_proxy_body_memory_peak_bytes`]/(1<<10))
	if m[`kivuli_proxy_request_bodies_total{mode="spooled"}`] != 2 {
		t.Errorf("%v bodies spooled", m[`kivuli_proxy_request_bodies_total{mode="spooled"}`])
	}
	if v := m[`kivuli_proxy_body_memory_peak_bytes`]; v > 1<<20 {
		t.Errorf("%v bytes of body held in memory at once, over --max-buffer", v)
	}
	if v := m[`go_memstats_sys_bytes`]; v <= 0 || v > 64<<20 {
		t.Errorf("the Go runtime holds %.1f MiB for a 100 MiB body", v/(1<<20))
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("the spool directory holds %v", ents)
	}
}
