package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli/internal/guard"
)

// Router is a signing reverse proxy for several upstreams, an
// [http.Handler]: each request goes to the route the operator's
// [RouterConfig.Routes] give it by its Host (es.localhost) or its path
// prefix (/aps/, removed before signing and sending), never to a place
// the client names. Each route is a [Proxy] with its own [Config] (scope,
// header rules, body limits, credentials), and every rule of a Proxy
// holds for each. Make one with [NewRouter]; it is safe for concurrent
// use.
//
// In order, before anything is signed or sent: the Host and origin rules
// (421, 403), for every route at once; the route: a request whose Host is
// a route's takes one of that Host's routes, any other one of the routes
// without Host, by its path; a path that no route takes gets 404, and one
// that some reading puts under another route than its plain form (an
// encoded letter or slash, a dot segment, a doubled slash), or that climbs
// out of its route's prefix, 400. Then the route's Proxy serves it, its
// turn and body bytes taken from the budgets all routes share.
type Router struct {
	sites   map[string]*site // the routes of each Host, by lower-case name
	any     *site            // the routes without Host, or nil
	routes  []*routed        // in the order given
	guard   *guard.Guard
	b       *budgets
	obs     Observer
	onError func(http.ResponseWriter, *http.Request, *RequestError)
}

// NewRouter makes a router as cfg says, each route's Proxy as [New] makes
// it (ctx bounds their looks at their upstreams). Its errors are those of
// [RouterConfig.Validate] and of New, saying which route.
func NewRouter(ctx context.Context, cfg RouterConfig) (*Router, error) {
	specs, b, g, err := cfg.check()
	if err != nil {
		return nil, err
	}
	rt := &Router{sites: map[string]*site{}, guard: g, b: b, obs: cfg.Observer, onError: cfg.ErrorHandler}
	via := viaToken()
	pools := map[poolKey]*http.Transport{}
	for i, sp := range specs {
		c := cfg.Routes[i].Config
		c.Observer, c.ErrorHandler = cfg.Observer, cfg.ErrorHandler
		if c.Transport == nil {
			c.Transport = sharedPool(pools, c, sp.s, cap(b.admit.slots))
		}
		p, err := newProxy(ctx, c, sp.s, b)
		if err != nil {
			rt.Close()
			return nil, inRoute(i, cfg.Routes[i], err)
		}
		p.guard, p.route = nil, sp.name
		p.setVia(via)
		p.strip = strings.TrimSuffix(sp.prefix, "/")
		rt.add(sp, p)
	}
	return rt, nil
}

// poolKey is what an upstream connection pool is made of.
type poolKey struct {
	serverName                  string
	maxIdle                     int
	idleTimeout, headersTimeout time.Duration
}

// sharedPool is the upstream connection pool of a route with no
// Transport of its own: one for all routes that would make the same,
// holding no more idle connections, all hosts together, than requests
// are served at once (maxRequests), as one Proxy's pool does: N routes
// do not hold N pools of idle connections and their buffers. A route with
// a TLS configuration of its own (UpstreamTLSConfig: its roots, or no
// verification for a tunnel) has a pool of its own: shared, another
// route's certificates would be checked by its rules.
func sharedPool(pools map[poolKey]*http.Transport, c Config, s *settings, maxRequests int) *http.Transport {
	if c.UpstreamTLSConfig != nil {
		t := newUpstreamTransport(c, s)
		t.MaxIdleConns = min(s.maxIdle, maxRequests)
		return t
	}
	k := poolKey{c.UpstreamServerName, s.maxIdle, s.idleConnTimer, c.ResponseHeaderTimeout}
	if pools[k] == nil {
		t := newUpstreamTransport(c, s)
		t.MaxIdleConns = min(s.maxIdle, maxRequests)
		pools[k] = t
	}
	return pools[k]
}

// add puts the route of sp, served by p, in its site.
func (rt *Router) add(sp routeSpec, p *Proxy) {
	r := &routed{name: sp.name, host: sp.host, prefix: sp.prefix, p: p}
	rt.routes = append(rt.routes, r)
	s := rt.any
	if sp.host != "" {
		s = rt.sites[sp.host]
	}
	if s == nil {
		s = &site{}
		if sp.host != "" {
			rt.sites[sp.host] = s
		} else {
			rt.any = s
		}
	}
	if sp.prefix == "/" {
		s.all = r
		return
	}
	s.prefixes = append(s.prefixes, r)
}

type routeKey struct{}

// RouteOf is the name of the route a Router chose for r, as its Observer
// and ErrorHandler are given r; "" for a request it refused before
// choosing one, or that a Proxy of its own serves.
func RouteOf(r *http.Request) string {
	name, _ := r.Context().Value(routeKey{}).(string)
	return name
}

// ServeHTTP sends one request to its route's upstream, signed.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if rf := rt.guard.Check(r); rf != nil {
		rt.refuse(w, r, start, guardError(rf))
		return
	}
	s := rt.any
	if h := rt.sites[strings.ToLower(hostOnly(r.Host))]; h != nil {
		s = h
	}
	if s == nil {
		rt.refuse(w, r, start, noRoute(r.URL.EscapedPath()))
		return
	}
	route, e := s.pick(r.URL.EscapedPath())
	if e != nil {
		rt.refuse(w, r, start, e)
		return
	}
	route.p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, route.name)))
}

// refuse answers a request the Router takes to no route, as a Proxy
// answers one it refuses, and tells the observer.
func (rt *Router) refuse(w http.ResponseWriter, r *http.Request, start time.Time, e *RequestError) {
	if r.Body != nil && r.Body != http.NoBody {
		// net/http reads up to 256 KiB of an unread body after the
		// handler: a stalled one must not hold the connection.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(DefaultBodyIdleTimeout))
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	rec := &statusRecorder{ResponseWriter: w}
	if rt.onError != nil {
		rt.onError(rec, r, e)
	} else {
		http.Error(rec, e.Msg, e.Status)
	}
	if rt.obs != nil {
		rt.obs.Done(r, Exchange{Status: e.Status, Body: bodyNone, BytesOut: rec.written, Duration: time.Since(start), Err: e})
	}
}

// hostOnly is the host of host or host:port, without IPv6 brackets, as
// the guard reads it.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// Stats reads the gauges of all routes together.
func (rt *Router) Stats() Stats {
	s := Stats{
		Queued:         rt.b.admit.queued.Load(),
		BodyMemory:     rt.b.mem.inUse.Load(),
		BodyMemoryPeak: rt.b.mem.peak.Load(),
		Spool:          rt.b.disk.inUse.Load(),
		SpoolPeak:      rt.b.disk.peak.Load(),
	}
	for _, r := range rt.routes {
		s.InFlight += r.p.inFlight.Load()
	}
	return s
}

// LogValue is each route's name, what it takes, and its Proxy's
// [Proxy.LogValue], for a start-up log line.
func (rt *Router) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(rt.routes))
	for _, r := range rt.routes {
		attrs = append(attrs, slog.Group("route."+r.name, slog.String("host", r.host), slog.String("path_prefix", r.prefix), slog.Any("", r.p)))
	}
	return slog.GroupValue(attrs...)
}

// Shutdown is [Proxy.Shutdown] for every route: call it after
// http.Server.Shutdown has returned.
func (rt *Router) Shutdown(ctx context.Context) error {
	var first error
	for _, r := range rt.routes {
		if err := r.p.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close is [Proxy.Close] for every route.
func (rt *Router) Close() error {
	for _, r := range rt.routes {
		r.p.Close()
	}
	return nil
}
