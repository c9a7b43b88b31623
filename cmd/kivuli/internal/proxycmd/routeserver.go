package proxycmd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/guard"
	"github.com/kivuli-go/kivuli/proxy"
)

// proxyHandler is what kivuli proxy serves: a proxy.Proxy (--upstream),
// or a proxy.Router (--route, --routes).
type proxyHandler interface {
	http.Handler
	slog.LogValuer
	Stats() proxy.Stats
	Shutdown(ctx context.Context) error
	Close() error
}

// routerConfig checks the flags of a proxy with routes and makes its
// configuration, all but the credentials, and each route's --route
// role-arn.
func (f *proxyFlags) routerConfig() (proxy.RouterConfig, []string, error) {
	var rc proxy.RouterConfig
	var p problems
	f.checkServing(&p)
	if f.upstream != "" {
		p.add(base.UsageErrorf("--upstream and --route (or --routes) do not go together: give every upstream as a route (--route /=URL for all other paths)"))
	}
	if f.service != "" || f.signHost != "" || f.serverName != "" {
		p.add(base.UsageErrorf("--service, --sign-host and --upstream-server-name are one upstream's: give them to its route (--route MATCH=URL,service=S,sign-host=H)"))
	}
	if f.noVerifySSL {
		p.add(base.UsageErrorf("--no-verify-ssl is for one upstream, a tunnel's: it does not go with routes"))
	}
	setHeaders := customHeaders(f.customHeaders, &p)
	if err := p.err(); err != nil {
		return rc, nil, err
	}
	specs, err := f.rf.routeSpecs()
	if err != nil {
		return rc, nil, err
	}
	def := proxy.Config{Region: f.region, AllowedHosts: f.allowHosts,
		SignHeaders: f.headerAllow, DropHeaders: f.headerDeny, SetHeaders: setHeaders, UnsignedPayload: f.unsignedPayload,
		MaxBody: noneIfZero(f.maxBody.N), MaxBuffer: noneIfZero(f.maxBuffer.N), SpoolDir: f.spoolDir,
		BodyIdleTimeout: noneIfZero(f.bodyIdleTimeout), MaxAttempts: f.maxAttempts,
		MaxIdleConns: f.maxIdleConns, IdleConnTimeout: noneIfZero(f.idleConnTimeout), ResponseHeaderTimeout: f.responseHeaderTimeout,
	}
	roles := make([]string, 0, len(specs))
	for _, sp := range specs {
		r, err := sp.route(def)
		if err != nil {
			return rc, nil, err
		}
		rc.Routes = append(rc.Routes, r)
		roles = append(roles, sp.RoleARN)
	}
	rc.ServeHosts = append(slices.Clip(f.serveHosts), listenNames(f.listen, f.admin)...)
	rc.AllowOrigins = f.allowOrigins
	rc.MaxRequests, rc.QueueTimeout, rc.MaxSpool = f.maxRequests, noneIfZero(f.queueTimeout), noneIfZero(f.maxSpool.N)
	if err := rc.Validate(); err != nil {
		return rc, nil, base.ConfigError(err)
	}
	return rc, roles, nil
}

// checkServing checks the flags of the server's own limits and
// listeners, and aws-sigv4-proxy's, as for one upstream.
func (f *proxyFlags) checkServing(p *problems) {
	f.peer.check(p)
	f.checkLimits(p)
	p.add(base.CheckListen("--listen", f.listen, f.allowRemote, listenRisk))
	if f.admin != "" {
		p.add(base.CheckListen("--admin", f.admin, f.allowRemote, adminRisk))
	}
}

// runRoutes serves the routes until ctx ends.
func (f *proxyFlags) runRoutes(ctx context.Context) error {
	rc, roles, err := f.routerConfig()
	if err != nil {
		return err
	}
	tlsConfig, err := f.tlsConfig()
	if err != nil {
		return err
	}
	log, done := f.startProcess()
	defer done()
	needRegion := slices.ContainsFunc(roles, func(r string) bool { return r != "" })
	src, err := f.sf.Open(ctx, f.App, f.region, needRegion)
	if err != nil {
		return err
	}
	defer src.Close()
	closeRoles, err := assumeRoles(ctx, src, &rc, roles)
	if err != nil {
		return err
	}
	defer closeRoles()
	s, err := newRouterServer(ctx, rc, src.Creds, log)
	if err != nil {
		return err
	}
	defer s.close()
	f.dress(s)
	return s.serve(ctx, f, tlsConfig)
}

// newRouterServer makes the router of rc (its routes' credentials set,
// or creds), with the command's observer and error answers, as
// newProxyServer does for one upstream. An upstream the signer refuses
// exits 4.
func newRouterServer(ctx context.Context, rc proxy.RouterConfig, creds *kivuli.Credentials, log *slog.Logger) (*proxyServer, error) {
	s := &proxyServer{creds: creds, log: log}
	for i := range rc.Routes {
		c := &rc.Routes[i].Config
		if c.Credentials == nil {
			c.Credentials = creds
		}
		c.Logger = log
		s.routes = append(s.routes, routeName(rc.Routes[i]))
		if u, err := url.Parse(c.Upstream); err == nil {
			s.routeUpstreams = append(s.routeUpstreams, u)
		}
	}
	s.m = newProxyMetrics(s)
	s.obs = &proxyObserver{m: s.m, log: log, routed: true}
	rc.Observer, rc.ErrorHandler = s.obs, s.errorAnswer
	var err error
	if s.guard, err = guard.New(rc.ServeHosts, "--serve-host", rc.AllowOrigins, "--allow-origin"); err != nil {
		return nil, base.ConfigError(err)
	}
	rt, err := proxy.NewRouter(ctx, rc)
	if err != nil {
		if base.RefusedBySigner(err) {
			return nil, &base.ExitError{Code: base.ExitRefused, Err: fmt.Errorf("kivuli: %s", base.FlagWords(strings.TrimPrefix(err.Error(), "kivuli: ")))}
		}
		return nil, base.ConfigError(err)
	}
	s.p, s.handler = rt, rt
	s.stopSubs = s.m.watchCredentials(creds)
	return s, nil
}

// routeName is the name the library gives r: its Name, or its Host and
// PathPrefix written together.
func routeName(r proxy.Route) string {
	if r.Name != "" {
		return r.Name
	}
	if n := r.Host + r.PathPrefix; n != "" {
		return n
	}
	return "/"
}

// upstreamURLs are the upstreams the proxy forwards to, with the flag
// that gave them, for the check that none is the proxy itself.
func (s *proxyServer) upstreamURLs() map[string]*url.URL {
	if s.routeUpstreams == nil {
		return map[string]*url.URL{"--upstream": s.upstream}
	}
	m := map[string]*url.URL{}
	for i, u := range s.routeUpstreams {
		m[fmt.Sprintf("route %q: its upstream", s.routes[i])] = u
	}
	return m
}
