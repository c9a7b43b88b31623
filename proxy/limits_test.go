package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

const esHost = "search-logs-abc.eu-west-2.es.amazonaws.com"

// Past MaxRequests a request waits up to QueueTimeout for its turn,
// and gets it when one ends; with no time to wait, it gets 503 with
// Retry-After at once, counted by limit, and nothing is sent.
func TestProxyMaxRequests(t *testing.T) {
	t.Run("503 at once", func(t *testing.T) {
		h, arrived, release := wiretest.HoldingUpstream(t)
		f := wiretest.NewFixture(t, imdstestConfig(), h)
		p := startProxy(t, f, Config{SignHost: esHost, MaxRequests: 2, QueueTimeout: -1})
		held := make(chan wiretest.Answer, 2)
		for range 2 {
			go func() { held <- wiretest.Get(p.url + "/logs/_search") }()
		}
		wiretest.WaitArrivals(t, arrived, 2)
		a := wiretest.Get(p.url + "/logs/_count")
		if a.Status != http.StatusServiceUnavailable || a.RetryAfter != "1" || !strings.Contains(a.Body, "Config.MaxRequests 2") {
			t.Errorf("the third request: %d, Retry-After %q, %q, %v", a.Status, a.RetryAfter, a.Body, a.Err)
		}
		if v := p.metric(`kivuli_proxy_limited_requests_total{limit="max_requests"}`); v != 1 {
			t.Errorf("max_requests refusals counted: %v", v)
		}
		release()
		for range 2 {
			if a := <-held; a.Status != http.StatusOK {
				t.Errorf("a request held: %d %q %v", a.Status, a.Body, a.Err)
			}
		}
		if n := len(f.AWS.Records()); n != 2 {
			t.Errorf("the upstream received %d requests, want 2", n)
		}
	})
	t.Run("waits its turn", func(t *testing.T) {
		h, arrived, release := wiretest.HoldingUpstream(t)
		f := wiretest.NewFixture(t, imdstestConfig(), h)
		p := startProxy(t, f, Config{SignHost: esHost, MaxRequests: 1, QueueTimeout: time.Minute})
		first, second := make(chan wiretest.Answer, 1), make(chan wiretest.Answer, 1)
		go func() { first <- wiretest.Get(p.url + "/logs/_search") }()
		wiretest.WaitArrivals(t, arrived, 1)
		go func() { second <- wiretest.Get(p.url + "/logs/_count") }()
		p.waitMetric(t, "kivuli_proxy_queued_requests", 1)
		if len(arrived) != 0 {
			t.Fatal("the second request reached the upstream while the first was served")
		}
		release()
		for _, c := range []chan wiretest.Answer{first, second} {
			if a := <-c; a.Status != http.StatusOK {
				t.Errorf("%d %q %v", a.Status, a.Body, a.Err)
			}
		}
		if v := p.metric(`kivuli_proxy_limited_requests_total{limit="max_requests"}`); v != 0 {
			t.Errorf("max_requests refusals counted: %v", v)
		}
	})
}

// rawUpload starts a POST of /_bulk on a connection of its own, sends
// the head and first of the body, and leaves the connection open: the
// caller sends the rest, or stalls. chunked sends first as one chunk.
func rawUpload(t *testing.T, addr string, length int, chunked bool, first []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := "POST /_bulk HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n"
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(first))
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", length)
	}
	if _, err := c.Write(append([]byte(head), first...)); err != nil {
		t.Fatal(err)
	}
	if chunked {
		io.WriteString(c, "\r\n")
	}
	return c, bufio.NewReader(c)
}

// spoolFilesOpen counts the spool files in dir this process holds open:
// unlinked at once, they are seen only as "(deleted)" links in
// /proc/self/fd.
func spoolFilesOpen(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, filepath.Join(dir, "kivuli-proxy-body-")) {
			n++
		}
	}
	return n
}

// An upload that stops sending is dropped after BodyIdleTimeout with
// 408, counted, nothing sent upstream; its spool file is closed and its
// space freed: chunked (spooled), with its length (buffered), and
// streamed to S3.
func TestProxyDropsStalledUploads(t *testing.T) {
	for _, c := range []struct {
		name     string
		signHost string
		length   int
		chunked  bool
		sent     int
		spooled  bool
	}{
		{"chunked, spooled", esHost, 0, true, 3 << 20, true},
		{"length, buffered", esHost, 512 << 10, false, 100 << 10, false},
		{"length, streamed to S3", "my-bucket.s3.eu-west-2.amazonaws.com", 8 << 20, false, 2 << 20, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each waits for its timeout
			f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body) // as S3 does before it answers
			}))
			spool := t.TempDir()
			p := startProxy(t, f, Config{SignHost: c.signHost, SpoolDir: spool, BodyIdleTimeout: time.Second})
			conn, br := rawUpload(t, p.host(), c.length, c.chunked, wiretest.BulkBytes(c.sent))
			if c.spooled {
				// The body is being spooled: one file, unlinked, open.
				deadline := time.Now().Add(wiretest.FailAfter)
				for spoolFilesOpen(t, spool) != 1 {
					if time.Now().After(deadline) {
						t.Fatal("no spool file open while the body arrives")
					}
					time.Sleep(10 * time.Millisecond) // polling /proc: nothing to wait on
				}
			}
			resp, body := wiretest.ReadAnswer(t, conn, br)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "Config.BodyIdleTimeout") {
				t.Errorf("a stalled upload: %d %q", resp.StatusCode, body)
			}
			p.waitMetric(t, "kivuli_proxy_in_flight_requests", 0)
			if n := spoolFilesOpen(t, spool); n != 0 {
				t.Errorf("%d spool files still open", n)
			}
			if v := p.metric("kivuli_proxy_spool_bytes"); v != 0 {
				t.Errorf("%v bytes still spooled", v)
			}
			if ents, _ := os.ReadDir(spool); len(ents) != 0 {
				t.Errorf("the spool directory holds %v", ents)
			}
			if v := p.metric(`kivuli_proxy_limited_requests_total{limit="body_idle_timeout"}`); v != 1 {
				t.Errorf("body_idle_timeout drops counted: %v", v)
			}
			if !strings.Contains(c.name, "streamed") && len(f.AWS.Records()) != 0 {
				t.Errorf("the upstream received %d requests", len(f.AWS.Records()))
			}
		})
	}
}

// pacedReader gives size bytes of r in bursts of burst bytes, pausing
// pause before each burst after the first: a slow upload that keeps
// moving.
type pacedReader struct {
	r            io.Reader
	left, burst  int
	inBurst      int
	pause        time.Duration
	pauses       int
	started, end time.Time
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		p.end = time.Now()
		return 0, io.EOF
	}
	if p.started.IsZero() {
		p.started = time.Now()
	}
	if p.inBurst == p.burst {
		// The client's pace, which the test sets: real time, as the
		// proxy's deadlines are the kernel's.
		time.Sleep(p.pause)
		p.pauses++
		p.inBurst = 0
	}
	b = b[:min(len(b), p.left, p.burst-p.inBurst)]
	n, err := p.r.Read(b)
	p.left -= n
	p.inBurst += n
	return n, err
}

// A 100 MiB upload that pauses often, each pause shorter than
// BodyIdleTimeout but all of them far longer, goes through whole,
// with its length and chunked: the timeout is between reads, not for the
// body.
func TestProxySlowUploadSucceeds(t *testing.T) {
	t.Parallel() // it takes its time; the two uploads one after the other, not to starve each other
	// Pauses of a tenth of the timeout, twelve of them: each far below it
	// (on two busy cores under the race detector), all above it.
	const idle = 2 * time.Second
	const size = 100 << 20
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	p := startProxy(t, f, Config{SignHost: esHost, SpoolDir: t.TempDir(), BodyIdleTimeout: idle})
	for _, chunked := range []bool{false, true} {
		h := sha256.New()
		body := &pacedReader{r: io.TeeReader(&wiretest.BulkReader{}, h), left: size, burst: size/12 + 1, pause: idle / 10}
		req, err := http.NewRequest(http.MethodPost, p.url+"/_bulk", body)
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
		if paused := time.Duration(body.pauses) * body.pause; paused <= idle {
			t.Fatalf("the upload paused %v in all, not more than BodyIdleTimeout", paused)
		}
		recs := wiretest.Accepted(t, f.AWS)
		r := recs[len(recs)-1]
		if r.BodyLen != size || r.PayloadHash != hex.EncodeToString(h.Sum(nil)) {
			t.Errorf("chunked %v: %d bytes, hash %s", chunked, r.BodyLen, r.PayloadHash)
		}
	}
}

// The spool holds MaxSpool at most, across requests: a body of known
// length that would go over it gets 503 with Retry-After before a byte is
// read, a chunked one once it would, one larger than the whole spool 413;
// all counted, none sent; once the space is freed, the same body passes.
func TestProxyMaxSpool(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	spool := t.TempDir()
	p := startProxy(t, f, Config{SignHost: esHost, SpoolDir: spool, MaxBuffer: 64 << 10, MaxSpool: 1 << 20})
	post := func(size int, chunked bool) wiretest.Answer {
		var r io.Reader = bytes.NewReader(wiretest.BulkBytes(size))
		if chunked {
			r = io.MultiReader(r) // no length known
		}
		req, err := http.NewRequest(http.MethodPost, p.url+"/_bulk", r)
		if err != nil {
			t.Fatal(err)
		}
		// As curl sends a large body: the client waits for the proxy's
		// word before it sends one it may refuse.
		req.Header.Set("Expect", "100-continue")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return wiretest.Answer{Err: err}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return wiretest.Answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Body: string(b)}
	}
	if a := post(2<<20, false); a.Status != http.StatusRequestEntityTooLarge || !strings.Contains(a.Body, "Config.MaxSpool") {
		t.Errorf("a body larger than the spool: %d %q %v", a.Status, a.Body, a.Err)
	}
	// A body that holds 768 KiB of the spool, arriving slowly.
	holder, br := rawUpload(t, p.host(), 768<<10, false, wiretest.BulkBytes(100<<10))
	p.waitMetric(t, "kivuli_proxy_spool_bytes", 768<<10)
	for _, chunked := range []bool{false, true} {
		a := post(512<<10, chunked)
		if a.Status != http.StatusServiceUnavailable || a.RetryAfter != "5" || !strings.Contains(a.Body, "Config.MaxSpool") {
			t.Errorf("chunked %v, over the spool: %d Retry-After %q %q %v", chunked, a.Status, a.RetryAfter, a.Body, a.Err)
		}
	}
	if v := p.metric(`kivuli_proxy_limited_requests_total{limit="max_spool"}`); v != 3 {
		t.Errorf("max_spool refusals counted: %v, want 3", v)
	}
	if n := len(f.AWS.Records()); n != 0 {
		t.Errorf("the upstream received %d requests", n)
	}
	if _, err := holder.Write(wiretest.BulkBytes(768 << 10)[100<<10:]); err != nil {
		t.Fatal(err)
	}
	if resp, body := wiretest.ReadAnswer(t, holder, br); resp.StatusCode != http.StatusOK {
		t.Fatalf("the holder: %d %s", resp.StatusCode, body)
	}
	p.waitMetric(t, "kivuli_proxy_spool_bytes", 0)
	for _, chunked := range []bool{false, true} {
		if a := post(512<<10, chunked); a.Status != http.StatusOK {
			t.Errorf("chunked %v, once the spool is free: %d %q %v", chunked, a.Status, a.Body, a.Err)
		}
	}
}
