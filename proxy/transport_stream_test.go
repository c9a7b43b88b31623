package proxy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// Answers stream: the first event of a server-sent event stream, an AWS
// event stream (Bedrock, Lambda response streaming) or a chunked answer
// reaches the client while the upstream has not finished, held on a
// channel until the client has read it.
func TestProxyStreamsAnswers(t *testing.T) {
	type stream struct {
		contentType string
		first, rest string
		release     chan struct{}
	}
	streams := map[string]stream{
		"sse":         {"text/event-stream", "data: one\n\n", "data: two\n\n", make(chan struct{})},
		"eventstream": {"application/vnd.amazon.eventstream", "\x00\x00\x00\x10first-event\n", "\x00\x00\x00\x11second-event\n", make(chan struct{})},
		"chunked":     {"text/plain", "first line\n", "second line\n", make(chan struct{})},
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		s := streams[name]
		w.Header().Set("Content-Type", s.contentType)
		io.WriteString(w, s.first)
		http.NewResponseController(w).Flush()
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, s.rest)
	})
	f := wiretest.NewFixture(t, imdstestConfig(), upstream)
	p := startProxy(t, f, Config{SignHost: "bedrock-runtime.eu-west-2.amazonaws.com"})
	for name, s := range streams {
		t.Run(name, func(t *testing.T) {
			// The request and the read of the first event, on a goroutine:
			// a proxy that buffers returns neither until the upstream ends.
			type result struct {
				resp  *http.Response
				first string
				err   error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := http.Post(p.url+"/"+name+"/model/x/invoke-with-response-stream", "application/json", strings.NewReader(`{"prompt":"hi"}`))
				if err != nil {
					got <- result{err: err}
					return
				}
				b := make([]byte, len(s.first))
				n, _ := io.ReadFull(resp.Body, b)
				got <- result{resp: resp, first: string(b[:n])}
			}()
			var r result
			select {
			case r = <-got:
			case <-time.After(wiretest.FailAfter):
				close(s.release)
				t.Fatal("the first event did not arrive while the upstream held the rest: the proxy buffers")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			resp := r.resp
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != s.contentType {
				t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if r.first != s.first {
				t.Errorf("first event %q, want %q", r.first, s.first)
			}
			close(s.release)
			rest, _ := io.ReadAll(resp.Body)
			if string(rest) != s.rest {
				t.Errorf("then %q, want %q", rest, s.rest)
			}
		})
	}
	for _, r := range wiretest.Accepted(t, f.AWS) {
		if r.Service != "bedrock" {
			t.Errorf("service %s", r.Service)
		}
	}
}

// websocketUpgrade answers a WebSocket handshake and then echoes what
// arrives: enough to see the tunnel carry bytes both ways.
func websocketUpgrade(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || upgradeType(r.Header) == "" {
			http.Error(w, "want a WebSocket handshake", http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Sec-Websocket-Key")
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 256)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				conn.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
}

// WebSocket handshakes pass through, signed as the policy table says:
// Neptune's in headers, Transcribe's presigned in the query; neither
// signs the Upgrade, Connection or Sec-WebSocket-* headers, which reach
// the upstream as the client sent them. The tunnel then carries bytes
// both ways.
func TestProxyWebSocket(t *testing.T) {
	for _, c := range []struct {
		host      string
		service   string
		presigned bool
	}{
		{"db.cluster-abc.eu-west-2.neptune.amazonaws.com", "neptune-db", false},
		{"transcribestreaming.eu-west-2.amazonaws.com", "transcribe", true},
	} {
		t.Run(c.service, func(t *testing.T) {
			f := wiretest.NewFixture(t, imdstestConfig(), websocketUpgrade(t))
			p := startProxy(t, f, Config{SignHost: c.host})
			conn, err := net.Dial("tcp", p.host())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(wiretest.FailAfter))
			const key = "dGhlIHNhbXBsZSBub25jZQ=="
			io.WriteString(conn, "GET /gremlin?lang=en-US HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, accept %q: %s", resp.StatusCode, resp.Header.Get("Sec-Websocket-Accept"), b)
			}
			for _, msg := range []string{"hello", "a second frame"} {
				io.WriteString(conn, msg)
				b := make([]byte, len(msg))
				if _, err := io.ReadFull(br, b); err != nil || string(b) != msg {
					t.Errorf("echo %q: %q, %v", msg, b, err)
				}
			}
			recs := wiretest.Accepted(t, f.AWS)
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			if r.Service != c.service || r.Presigned != c.presigned {
				t.Errorf("service %s, presigned %v; want %s, %v", r.Service, r.Presigned, c.service, c.presigned)
			}
			if c.presigned && r.Token != sigv4test.QuerySigned {
				t.Errorf("token %v", r.Token)
			}
			for _, h := range []string{"connection", "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"} {
				if slices.Contains(r.SignedHeaders, h) {
					t.Errorf("%s is signed: %v", h, r.SignedHeaders)
				}
			}
			if !strings.Contains(r.RawQuery, "lang=en-US") {
				t.Errorf("query %q", r.RawQuery)
			}
		})
	}
}

// TestSmallAnswerInOneWrite: an answer of known length leaves the proxy as
// net/http buffers it, headers and body in one write to the client's
// connection, where flushing each write (FlushInterval -1) took three.
func TestSmallAnswerInOneWrite(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "16")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	f := wiretest.NewFixture(t, imdstestConfig(), upstream)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	p := startProxyOn(t, f, Config{SignHost: "search-x.eu-west-2.es.amazonaws.com"}, ln)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	const n = 5
	for range n {
		resp, err := client.Get(p.url + "/_cluster/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != `{"status":"ok"}`+"\n" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	p.waitRequests(t, n)
	if got := ln.writes.Load(); got != n {
		t.Errorf("%d writes to the client's connection for %d small answers, want one each", got, n)
	}
}

// countingListener counts the writes to the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// blockingObserver holds Done until released.
type blockingObserver struct{ release chan struct{} }

func (blockingObserver) Attempted(*http.Request, int, error, time.Duration) {}
func (o blockingObserver) Done(*http.Request, Exchange)                     { <-o.release }

// TestAnswerBeforeObserver: a GET's answer reaches the client before the
// observer is told of it, so that the metrics and the access log never
// delay it (net/http sends a buffered answer only when the handler
// returns, which is after Done).
func TestAnswerBeforeObserver(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"green"}`)
	})
	f := wiretest.NewFixture(t, imdstestConfig(), upstream)
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint(f.IMDS.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	obs := blockingObserver{release: make(chan struct{})}
	p, err := New(t.Context(), Config{Upstream: "http://" + f.Host(), AllowedHosts: []string{f.Host()},
		SignHost: "search-x.eu-west-2.es.amazonaws.com", Credentials: creds, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	defer close(obs.release) // before srv.Close, which waits for the handler
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/_cluster/health")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	select {
	case b := <-got:
		if b != `{"status":"green"}` {
			t.Fatalf("got %q", b)
		}
	case <-time.After(wiretest.FailAfter):
		t.Fatal("the answer waited for the observer")
	}
}
