package proxycmd

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
)

// The proxy's memory and disk are bounded whatever its clients do. The
// library's handler bounds each request (--max-requests and its queue,
// --max-buffer, the body memory budget, --max-spool, --body-idle-timeout);
// the server bounds the connections:
//
//   - connections: at most --max-conns open; past it, new ones wait in
//     the kernel's accept queue (which costs this process nothing), and a
//     connection idle between requests is closed to make room, as nginx
//     does when it runs short;
//   - headers: at most --max-headers per request (431 past it), read
//     within 10 s.

// What clients can make the proxy hold, by what the flags bound: the
// figures are generous measures of what net/http and the proxy allocate
// (kivuli_process_resident_memory_peak_bytes shows the truth).
const (
	baseMemory = 24 << 20 // the program, its runtime and its pools at rest, and nonGoMemory
	// connMemory is a connection's buffers and goroutine, beside its
	// request's headers (read once, kept once as strings).
	connMemory = 24 << 10
	// tlsConnMemory is what TLS adds to a connection (crypto/tls's record
	// buffers).
	tlsConnMemory = 72 << 10
	// requestMemory is a request's share of the upstream's connection
	// (64 KiB read and write buffers, TLS), its answer's copy buffer and
	// its goroutines.
	requestMemory = 256 << 10
)

// nonGoMemory is the part of baseMemory outside the Go runtime's: the
// program's code and data, resident (about 6 MiB), and a margin for the
// garbage collector, which may overshoot its soft limit a little.
const nonGoMemory = 16 << 20

// memoryBound is the most resident memory the proxy holds at once with
// cfg's limits, whatever its clients do: the bound the manual states.
// Less nonGoMemory, it is the Go runtime's soft limit, so that the garbage
// collector keeps the heap under it rather than at twice what is live.
func (f *proxyFlags) memoryBound() int64 {
	conn := 2*(f.maxHeaders.N+4096) + connMemory // 4 KiB: net/http's slack
	if f.tlsCert != "" {
		conn += tlsConnMemory
	}
	return baseMemory + proxy.DefaultMemoryBudget + int64(f.maxConns)*conn + int64(f.maxRequests)*requestMemory
}

// server is the proxy's HTTP server. It sets no ReadTimeout nor
// WriteTimeout: they bound a whole request or answer, and an upload or a
// download of gigabytes, or an event stream, lasts long; a body that
// stalls is bounded by --body-idle-timeout (the handler's) instead.
//
// It speaks HTTP/1.1 only, with TLS too: an HTTP/2 connection carries up
// to 250 requests at once and 1 MiB of body nobody has read yet, and HPACK
// lets a few bytes on the wire stand for --max-headers of headers, which
// no bound per connection covers; to a sidecar, a connection per request
// in flight costs little.
func (s *proxyServer) server(f *proxyFlags, tlsConfig *tls.Config) *http.Server {
	var http1 http.Protocols
	http1.SetHTTP1(true)
	return &http.Server{
		Protocols:         &http1,
		Handler:           f.procs.wrap(s.handler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// net/http reads up to 4 KiB more before it answers 431.
		MaxHeaderBytes: int(f.maxHeaders.N),
		TLSConfig:      tlsConfig,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// adminServer is the admin listener's server: a few small requests from
// probes and scrapers, answered at once.
func (s *proxyServer) adminServer() *http.Server {
	return &http.Server{
		Handler:           s.guard.Wrap(s.adminHandler(), s.m.refusedBy),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          base.DiscardLog(),
	}
}

// adminConns is the most connections the admin listener keeps open.
const adminConns = 32

// limitConns makes srv serve at most max connections from ln at once, and
// returns the listener to serve.
func limitConns(srv *http.Server, ln net.Listener, max int) *connLimit {
	l := newConnLimit(ln, max)
	srv.ConnState = l.connState
	return l
}

// connLimit is a listener that keeps at most cap(slots) connections open.
type connLimit struct {
	net.Listener
	slots   chan struct{}
	closed  chan struct{}
	once    sync.Once
	waiting atomic.Bool // Accept waits for a slot: idle connections are closed
	mu      sync.Mutex
	idle    map[*limitedConn]struct{}
}

func newConnLimit(ln net.Listener, max int) *connLimit {
	return &connLimit{Listener: ln, slots: make(chan struct{}, max), closed: make(chan struct{}), idle: map[*limitedConn]struct{}{}}
}

// Accept waits for a free slot, closing an idle connection to make one,
// then accepts.
func (l *connLimit) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.waiting.Store(true)
		l.closeIdle()
		select {
		case l.slots <- struct{}{}:
			l.waiting.Store(false)
		case <-l.closed:
			l.waiting.Store(false)
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

func (l *connLimit) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// open is the number of connections open.
func (l *connLimit) open() int { return len(l.slots) }

// closeIdle closes one connection idle between requests, if there is one.
func (l *connLimit) closeIdle() {
	l.mu.Lock()
	var victim *limitedConn
	for c := range l.idle {
		victim = c
		break
	}
	delete(l.idle, victim)
	l.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
}

// connState is the server's ConnState hook: it knows the idle
// connections, and closes one that becomes idle while Accept waits.
func (l *connLimit) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	if s == http.StateIdle && l.waiting.Load() {
		lc.Close()
		return
	}
	l.mu.Lock()
	if s == http.StateIdle {
		l.idle[lc] = struct{}{}
	} else {
		delete(l.idle, lc)
	}
	l.mu.Unlock()
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l    *connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
