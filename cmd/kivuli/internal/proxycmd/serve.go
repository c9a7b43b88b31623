package proxycmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// serve serves the proxy on --listen, and the admin endpoints on --admin,
// until ctx ends (SIGTERM, SIGINT) or a listener fails, then drains.
func (s *proxyServer) serve(ctx context.Context, f *proxyFlags, tlsConfig *tls.Config) error {
	tcp, err := base.ListenTCP("--listen", f.listen, f.allowRemote, listenRisk)
	if err != nil {
		return err
	}
	defer tcp.Close()
	for flag, u := range s.upstreamURLs() {
		if loopsToSelf(ctx, u, tcp.Addr()) {
			return base.UsageErrorf("%s %s is this proxy's own address (%s): every request would be forwarded to itself again", flag, u.Redacted(), tcp.Addr())
		}
	}
	srv := s.server(f, tlsConfig)
	ln := limitConns(srv, tcp, f.maxConns)
	s.conns.Store(ln)
	// Shutdown runs this once it has closed the listener.
	srv.RegisterOnShutdown(func() {
		s.log.Info("kivuli proxy: draining: not accepting connections", "in_flight", s.p.Stats().InFlight, "timeout", f.drainTimeout)
	})
	served := make(chan error, 2)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	admin, err := s.serveAdmin(f, served)
	if err != nil {
		srv.Close()
		return err
	}
	s.log.Info("kivuli proxy: listening", "listen", scheme+"://"+ln.Addr().String(), slog.Any("", s.p),
		"max_conns", f.maxConns, "max_requests", f.maxRequests, "memory_bound", base.FormatSize(f.memoryBound()))
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("kivuli: proxy: %w", err)
	}
	s.drain(srv, f.drainTimeout)
	if admin != nil {
		closing, cancel := context.WithTimeout(context.Background(), time.Second)
		admin.Shutdown(closing)
		cancel()
	}
	return runErr
}

// serveAdmin serves the admin endpoints on --admin, if given, sending the
// server's end to served.
func (s *proxyServer) serveAdmin(f *proxyFlags, served chan<- error) (*http.Server, error) {
	if f.admin == "" {
		return nil, nil
	}
	aln, err := base.ListenTCP("--admin", f.admin, f.allowRemote, adminRisk)
	if err != nil {
		return nil, err
	}
	admin := s.adminServer()
	go func() { served <- admin.Serve(limitConns(admin, aln, adminConns)) }()
	s.log.Info("kivuli proxy: admin", "admin", "http://"+aln.Addr().String(), "paths", "/healthz /readyz /metrics")
	return admin, nil
}

// drain stops accepting, waits up to timeout for the requests in flight
// (and the WebSocket tunnels, which Shutdown does not track), then ends
// what is left.
func (s *proxyServer) drain(srv *http.Server, timeout time.Duration) {
	s.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err == nil {
		err = s.p.Shutdown(ctx)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("kivuli proxy: drain timed out: ending the requests left", "in_flight", s.p.Stats().InFlight)
		srv.Close()
		s.p.Close()
	}
	s.log.Info("kivuli proxy: stopped")
}
