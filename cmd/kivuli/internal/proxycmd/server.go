package proxycmd

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/guard"
	"github.com/kivuli-go/kivuli/proxy"
)

// proxyServer is the library's proxy as kivuli proxy serves it: with its
// metrics and access log (one proxy.Observer), its refusals in the words
// of the flags, the admin endpoints, and the state of its drain.
type proxyServer struct {
	p        proxyHandler // a *proxy.Proxy, or a *proxy.Router (routeserver.go)
	handler  http.Handler // p, or p wrapped by --log-failed-requests
	obs      *proxyObserver
	noVerify bool // --no-verify-ssl: /readyz says so
	upstream *url.URL
	// routes are the names of a Router's routes, and routeUpstreams their
	// upstreams; both nil for one upstream.
	routes         []string
	routeUpstreams []*url.URL
	creds          *kivuli.Credentials
	log            *slog.Logger
	m              *proxyMetrics
	guard          *guard.Guard // the admin listener's, with the proxy's rules
	conns          atomic.Pointer[connLimit]
	draining       atomic.Bool
	stopSubs       func()
}

// newProxyServer makes the proxy of cfg with creds, its observer and its
// error answers the command's. An upstream the signer refuses exits 4.
func newProxyServer(ctx context.Context, cfg proxy.Config, creds *kivuli.Credentials, log *slog.Logger) (*proxyServer, error) {
	s := &proxyServer{creds: creds, log: log}
	s.m = newProxyMetrics(s)
	s.obs = &proxyObserver{m: s.m, log: log}
	cfg.Credentials, cfg.Observer, cfg.Logger = creds, s.obs, log
	cfg.ErrorHandler = s.errorAnswer
	var err error
	if s.guard, err = guard.New(cfg.ServeHosts, "--serve-host", cfg.AllowOrigins, "--allow-origin"); err != nil {
		return nil, base.ConfigError(err)
	}
	if s.upstream, err = url.Parse(cfg.Upstream); err != nil {
		return nil, base.UsageErrorf("--upstream %q: %v", cfg.Upstream, err)
	}
	p, err := proxy.New(ctx, cfg)
	if err != nil {
		return nil, upstreamError(cfg.Upstream, err)
	}
	s.p, s.handler = p, p
	s.stopSubs = s.m.watchCredentials(creds)
	return s, nil
}

// errorAnswer is the proxy's own answer to a request it refuses, in the
// flags' words, kept out of --log-failed-requests.
func (s *proxyServer) errorAnswer(w http.ResponseWriter, _ *http.Request, e *proxy.RequestError) {
	markOwn(w)
	http.Error(w, base.FlagWords(e.Msg), e.Status)
}

// close ends the tunnels left and stops counting refreshes.
func (s *proxyServer) close() {
	s.p.Close()
	s.stopSubs()
}
