// Package wiretest is what the signing proxy's tests (package proxy) and
// the kivuli command's tests share: requests written byte by byte, the
// requests of a web page, upstreams that record or hold what they
// receive, and bodies of any size. Only tests import it.
package wiretest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/sigv4test"
)

// FailAfter bounds a wait that only a broken server makes long: the tests
// are synchronised by channels, and this only turns a hang into a failure.
const FailAfter = 20 * time.Second

// RawRequest sends text, a request as it goes on the wire, to addr and
// reads the answer, so that a test controls every byte of the request
// line and the headers. The head ends at the first blank line.
func RawRequest(t *testing.T, addr, text string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, body, _ := strings.Cut(text, "\n\n") // the head's lines end in CRLF, the body is as given
	if _, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", strings.SplitN(text, "\n", 2)[0], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// ReadAnswer reads the answer on a raw connection, within FailAfter.
func ReadAnswer(t *testing.T, c net.Conn, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(FailAfter))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Accepted fails t unless every request the upstream received was
// accepted, and returns the records.
func Accepted(t *testing.T, s *sigv4test.Server) []sigv4test.Record {
	t.Helper()
	recs := s.Records()
	for i, r := range recs {
		if r.Err != nil {
			t.Errorf("request %d (%s %s) rejected: %v", i, r.Method, r.Path, r.Err)
		}
	}
	return recs
}

// Seen is a request an upstream received: its Host and request URI, its
// headers and its body.
type Seen struct {
	Host, URI string
	Header    http.Header
	Body      []byte
}

// Recorder is an upstream handler that records each request, then passes
// it to next (with its body still to read), or answers {"ok":true}.
type Recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []Seen
}

// NewRecorder is a Recorder in front of next (nil: answer {"ok":true}).
func NewRecorder(next http.Handler) *Recorder { return &Recorder{next: next} }

// ServeHTTP records r and answers it.
func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, Seen{Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone(), Body: b})
	rec.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	if rec.next != nil {
		rec.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

// Requests are the requests recorded so far.
func (rec *Recorder) Requests() []Seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Seen(nil), rec.seen...)
}

// HoldingUpstream is an upstream handler that holds each request until
// release is called (or the request ends), and tells of each arrival; a
// request for a path under /now is answered at once.
func HoldingUpstream(t *testing.T) (h http.Handler, arrived chan string, release func()) {
	arrived = make(chan string, 256)
	gate := make(chan struct{})
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		if strings.HasPrefix(r.URL.Path, "/now") {
			io.WriteString(w, "ok")
			return
		}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "ok")
	})
	return h, arrived, release
}

// WaitArrivals waits for n arrivals at a HoldingUpstream.
func WaitArrivals(t *testing.T, arrived <-chan string, n int) {
	t.Helper()
	for range n {
		select {
		case <-arrived:
		case <-time.After(FailAfter):
			t.Fatalf("fewer than %d requests reached the upstream", n)
		}
	}
}

// Answer is what a client got: a status, Retry-After and a body, or an
// error.
type Answer struct {
	Status     int
	RetryAfter string
	Body       string
	Err        error
}

// Get sends a GET and returns its answer.
func Get(url string) Answer {
	resp, err := http.Get(url)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(b), err}
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

// BulkReader is an endless _bulk body, a mebibyte of NDJSON over and
// over.
type BulkReader struct{ off int }

func (b *BulkReader) Read(p []byte) (int, error) {
	n := copy(p, bulkBlock[b.off:])
	b.off = (b.off + n) % len(bulkBlock)
	return n, nil
}

// BulkBytes is the first n bytes of an endless _bulk body.
func BulkBytes(n int) []byte {
	b, _ := io.ReadAll(io.LimitReader(&BulkReader{}, int64(n)))
	return b
}

// Zeros reads as an endless run of zero bytes.
type Zeros struct{}

func (Zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
