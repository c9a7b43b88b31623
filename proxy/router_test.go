package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// routerRun is a Router served on loopback as the kivuli command serves
// it, with an observer that records the routes it is told of.
type routerRun struct {
	url string
	rt  *Router
	obs *routeObserver
}

// upstreamRoute is a route to f's upstream (listed, in clear on
// loopback) with path upath, signing for signHost with f's credentials.
func upstreamRoute(t *testing.T, f *wiretest.Fixture, name, host, prefix, upath, signHost string) Route {
	t.Helper()
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint(f.IMDS.URL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { creds.Close() })
	return Route{Name: name, Host: host, PathPrefix: prefix, Config: Config{
		Upstream: "http://" + f.Host() + upath, SignHost: signHost, AllowedHosts: []string{f.Host()}, Credentials: creds}}
}

func startRouter(t *testing.T, cfg RouterConfig) *routerRun {
	t.Helper()
	obs := &routeObserver{}
	cfg.Observer = obs
	rt, err := NewRouter(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var http1 http.Protocols
	http1.SetHTTP1(true)
	srv := &http.Server{Handler: rt, Protocols: &http1, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wiretest.FailAfter)
		defer cancel()
		srv.Shutdown(ctx)
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &routerRun{url: "http://" + ln.Addr().String(), rt: rt, obs: obs}
}

func (r *routerRun) host() string { return strings.TrimPrefix(r.url, "http://") }

// routeObserver records, for each request done, the route it was told
// (Exchange.Route, and RouteOf) and the status; for each attempt,
// RouteOf.
type routeObserver struct {
	mu       sync.Mutex
	done     []string // "route status", route from Exchange.Route
	mismatch int      // Exchange.Route and RouteOf disagreed
	attempts []string
}

func (o *routeObserver) Attempted(r *http.Request, status int, err error, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts = append(o.attempts, RouteOf(r))
}

func (o *routeObserver) Done(r *http.Request, x Exchange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if x.Route != RouteOf(r) {
		o.mismatch++
	}
	reason := ""
	if x.Err != nil {
		reason = " " + x.Err.Stage + "/" + x.Err.Reason
	}
	o.done = append(o.done, x.Route+" "+http.StatusText(x.Status)+reason)
}

// waitDone waits until n requests are done, and returns what was told.
func (o *routeObserver) waitDone(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(wiretest.FailAfter)
	for {
		o.mu.Lock()
		got := append([]string(nil), o.done...)
		o.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests done, want %d: %q", len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const apsHost = "aps-workspaces.us-east-1.amazonaws.com"

// Each request goes to the route its Host or path prefix names, signed
// with that route's credentials and scope (each upstream checks every
// signature with its own keys), the prefix removed; the observer is told
// the route; a request no route takes gets 404 and reaches no upstream.
func TestRouterRoutes(t *testing.T) {
	es, aps, other := newProxyFixture(t, nil), newProxyFixture(t, nil), newProxyFixture(t, nil)
	r := startRouter(t, RouterConfig{Routes: []Route{
		upstreamRoute(t, es.Fixture, "es", "es.localhost", "", "", esHost),
		upstreamRoute(t, aps.Fixture, "", "", "/aps/", "/workspaces/ws-1", apsHost),
		upstreamRoute(t, other.Fixture, "sqs", "", "/sqs/", "", "sqs.eu-west-2.amazonaws.com"),
	}})
	port := r.url[strings.LastIndexByte(r.url, ':')+1:]
	cases := []struct {
		host, path string
		to         *proxyFixture
		wantURI    string
	}{
		{"es.localhost:" + port, "/logs/_search?q=a", es, "/logs/_search?q=a"},
		{"ES.LocalHost", "/", es, "/"},
		{"es.localhost", "/aps/api/v1/query", es, "/aps/api/v1/query"}, // a Host route takes every path of its Host
		{"127.0.0.1:" + port, "/aps/api/v1/query?query=up", aps, "/workspaces/ws-1/api/v1/query?query=up"},
		{"localhost", "/aps/", aps, "/workspaces/ws-1/"},
		{"localhost", "/aps//api/v1/labels", aps, "/workspaces/ws-1/api/v1/labels"}, // the signer removes empty segments,
		{"localhost", "/sqs/?Action=ListQueues", other, "/?Action=ListQueues"},
		{"localhost", "/sqs/123456789012/jobs", other, "/123456789012/jobs"},
	}
	for _, c := range cases {
		before := len(c.to.Requests())
		resp, body := wiretest.RawRequest(t, r.host(), "GET "+c.path+" HTTP/1.1\nHost: "+c.host+"\n\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %d %s", c.host, c.path, resp.StatusCode, body)
			continue
		}
		reqs := c.to.Requests()
		if len(reqs) != before+1 || reqs[len(reqs)-1].URI != c.wantURI {
			t.Errorf("%s %s reached its upstream as %v, want %s", c.host, c.path, reqs[before:], c.wantURI)
		}
	}
	for _, path := range []string{"/", "/aps", "/apsx/", "/APS/x", "/sqsx", "/es/"} {
		resp, body := wiretest.RawRequest(t, r.host(), "POST "+path+" HTTP/1.1\nHost: localhost\nContent-Length: 3\n\nabc")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no route") || !resp.Close {
			t.Errorf("%s: %d %q %v", path, resp.StatusCode, body, resp.Header)
		}
	}
	if n := len(es.Requests()) + len(aps.Requests()) + len(other.Requests()); n != len(cases) {
		t.Errorf("the upstreams received %d requests, want %d", n, len(cases))
	}
	for _, f := range []*proxyFixture{es, aps, other} {
		wiretest.Accepted(t, f.AWS)
	}
	for _, rec := range aps.AWS.Records() {
		if rec.Service != "aps" || rec.Region != "us-east-1" {
			t.Errorf("aps route signed for %s/%s", rec.Service, rec.Region)
		}
	}
	got := r.obs.waitDone(t, len(cases)+6)
	want := []string{"es OK", "es OK", "es OK", "/aps/ OK", "/aps/ OK", "/aps/ OK", "sqs OK", "sqs OK"}
	for range 6 {
		want = append(want, " Not Found route/no_route")
	}
	slices.Sort(got) // a request is done once its handler returns, after its client has the answer
	slices.Sort(want)
	if strings.Join(got, ",") != strings.Join(want, ",") || r.obs.mismatch != 0 {
		t.Errorf("the observer was told %q (%d mismatches), want %q", got, r.obs.mismatch, want)
	}
	r.obs.mu.Lock()
	defer r.obs.mu.Unlock()
	if strings.Join(r.obs.attempts, ",") != "es,es,es,/aps/,/aps/,/aps/,sqs,sqs" {
		t.Errorf("attempts by route: %q", r.obs.attempts)
	}
}

// A client cannot reach one route's upstream, or another path of it,
// through another route's name or prefix, with any trick the
// single-upstream proxy's hostile tests try: dot segments, plain or
// encoded; encoded slashes and backslashes; encoded letters; doubled
// slashes; ";" parameters; a Host with a trailing dot, another case, a
// port, a suffix; duplicate Hosts; absolute-form request targets;
// forwarding headers; a browser's page. Two routes share one upstream
// under two workspace paths; a third is another upstream by Host.
func TestRouterHostileCrossRoute(t *testing.T) {
	x, y := newProxyFixture(t, nil), newProxyFixture(t, nil)
	r := startRouter(t, RouterConfig{Routes: []Route{
		upstreamRoute(t, x.Fixture, "ws1", "", "/ws1/", "/workspaces/ws-1", apsHost),
		upstreamRoute(t, x.Fixture, "ws2", "", "/ws2/", "/workspaces/ws-2", apsHost),
		upstreamRoute(t, y.Fixture, "b", "b.localhost", "", "", esHost),
	}})
	const ok = http.StatusOK
	cases := []struct {
		name, req string
		status    int
		to        *proxyFixture // with status 200: where it must arrive
		wantURI   string
	}{
		{"control", "GET /ws2/api HTTP/1.1\nHost: localhost", ok, x, "/workspaces/ws-2/api"},
		{"dot segments", "GET /ws1/../ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"encoded dots", "GET /ws1/%2e%2e/ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"encoded slash after dots", "GET /ws1/..%2fws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"encoded slashes", "GET /ws1%2F..%2Fws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"encoded backslashes", "GET /ws1/a/..%5c..%5cws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"backslashes", "GET /ws1\\..\\ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"an encoded letter", "GET /%77s2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"a doubled slash", "GET //ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"a dot segment first", "GET /./ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"dots from no route", "GET /x/../ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"a parameter", "GET /ws1/..;/ws2/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"a parameter on the prefix", "GET /ws2;x/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"dots deeper", "GET /ws1/api/../../ws2/ HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"dots back into the prefix", "GET /ws1/../ws1/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"encoded dots back into the prefix", "GET /ws1/%2E%2E/ws1/api HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"dots at the end", "GET /ws1/%2e%2e HTTP/1.1\nHost: localhost", 400, nil, ""},
		{"dots inside the prefix", "GET /ws1/a/../b HTTP/1.1\nHost: localhost", ok, x, "/workspaces/ws-1/b"},
		{"no trailing slash", "GET /ws1 HTTP/1.1\nHost: localhost", 404, nil, ""},
		{"a longer name", "GET /ws1x/api HTTP/1.1\nHost: localhost", 404, nil, ""},
		{"another case", "GET /WS1/api HTTP/1.1\nHost: localhost", 404, nil, ""},
		{"the upstream's own path", "GET /workspaces/ws-2/api HTTP/1.1\nHost: localhost", 404, nil, ""},
		{"absolute form to the upstream", "GET http://" + x.Host() + "/workspaces/ws-2/api HTTP/1.1\nHost: localhost", 404, nil, ""},
		{"absolute form to the upstream's AWS name", "GET https://" + apsHost + "/ws2/api HTTP/1.1\nHost: localhost", 421, nil, ""},
		{"absolute form naming route b", "GET http://b.localhost/ws2/api HTTP/1.1\nHost: localhost", ok, y, "/ws2/api"},
		{"Host b with a trailing dot", "GET /ws2/api HTTP/1.1\nHost: b.localhost.", 421, nil, ""},
		{"Host b with a suffix", "GET /ws2/api HTTP/1.1\nHost: b.localhost.evil.example", 421, nil, ""},
		{"Host under b", "GET /ws2/api HTTP/1.1\nHost: evil.b.localhost", 421, nil, ""},
		{"Host b, another case and port", "GET /ws2/api HTTP/1.1\nHost: B.LOCALHOST:1", ok, y, "/ws2/api"},
		{"two Hosts", "GET /ws2/api HTTP/1.1\nHost: b.localhost\nHost: localhost", 400, nil, ""},
		{"X-Forwarded-Host b", "GET /ws2/api HTTP/1.1\nHost: localhost\nX-Forwarded-Host: b.localhost", ok, x, "/workspaces/ws-2/api"},
		{"Forwarded host b", "GET /ws1/api HTTP/1.1\nHost: localhost\nForwarded: host=b.localhost", ok, x, "/workspaces/ws-1/api"},
		{"a web page of another origin", "POST /ws2/api HTTP/1.1\nHost: localhost\nOrigin: http://evil.example\nContent-Length: 0", 403, nil, ""},
		{"a rebound Host", "GET /ws2/api HTTP/1.1\nHost: evil.example", 421, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bx, by := len(x.Requests()), len(y.Requests())
			resp, body := wiretest.RawRequest(t, r.host(), c.req+"\n\n")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, c.status)
			}
			gx, gy := x.Requests()[bx:], y.Requests()[by:]
			switch {
			case c.to == nil && len(gx)+len(gy) != 0:
				t.Fatalf("refused, yet sent: %v %v", gx, gy)
			case c.to == x && (len(gx) != 1 || len(gy) != 0 || gx[0].URI != c.wantURI):
				t.Fatalf("sent %v to x and %v to y, want %s to x", gx, gy, c.wantURI)
			case c.to == y && (len(gy) != 1 || len(gx) != 0 || gy[0].URI != c.wantURI):
				t.Fatalf("sent %v to x and %v to y, want %s to y", gx, gy, c.wantURI)
			}
		})
	}
	for _, f := range []*proxyFixture{x, y} {
		for _, rec := range wiretest.Accepted(t, f.AWS) {
			if f == y && rec.Service != "es" || f == x && rec.Service != "aps" {
				t.Errorf("%s signed for %s", rec.Path, rec.Service)
			}
		}
	}
}

// The routes share one budget: with MaxRequests 1, a request held on one
// route makes another route's request wait, then get 503; Stats counts
// the requests of all routes.
func TestRouterSharedBudget(t *testing.T) {
	hold, arrived, release := wiretest.HoldingUpstream(t)
	a, b := newProxyFixture(t, hold), newProxyFixture(t, nil)
	r := startRouter(t, RouterConfig{MaxRequests: 1, QueueTimeout: -1, Routes: []Route{
		upstreamRoute(t, a.Fixture, "a", "", "/a/", "", esHost),
		upstreamRoute(t, b.Fixture, "b", "", "/b/", "", esHost),
	}})
	held := make(chan wiretest.Answer, 1)
	go func() { held <- wiretest.Get(r.url + "/a/slow") }()
	wiretest.WaitArrivals(t, arrived, 1)
	if s := r.rt.Stats(); s.InFlight != 1 {
		t.Errorf("Stats: %+v, want 1 in flight", s)
	}
	got := wiretest.Get(r.url + "/b/x")
	if got.Status != http.StatusServiceUnavailable || got.RetryAfter != "1" {
		t.Errorf("route b while route a holds the only turn: %+v", got)
	}
	release()
	if ans := <-held; ans.Status != http.StatusOK {
		t.Errorf("the held request: %+v", ans)
	}
	if got := wiretest.Get(r.url + "/b/x"); got.Status != http.StatusOK {
		t.Errorf("route b after: %+v", got)
	}
	done := r.obs.waitDone(t, 3)
	if !strings.Contains(strings.Join(done, ","), "b Service Unavailable limit/max_requests") {
		t.Errorf("the observer was told %q", done)
	}
}

// A RouterConfig that is wrong, or ambiguous, is refused with an
// ErrInvalidConfig that says which route and what to write.
func TestRouterConfigErrors(t *testing.T) {
	up := func(name, host, prefix string) Route {
		return Route{Name: name, Host: host, PathPrefix: prefix, Config: Config{Upstream: "https://" + esHost}}
	}
	with := func(r Route, edit func(c *Config)) Route { edit(&r.Config); return r }
	cases := []struct {
		name string
		cfg  RouterConfig
		want string
	}{
		{"no routes", RouterConfig{}, "RouterConfig.Routes is empty"},
		{"a prefix without its last slash", RouterConfig{Routes: []Route{up("", "", "/aps")}}, `route "/aps": Route.PathPrefix "/aps": want a path that begins and ends with '/'`},
		{"a prefix without its first slash", RouterConfig{Routes: []Route{up("x", "", "aps/")}}, `route "x": Route.PathPrefix "aps/"`},
		{"an empty segment", RouterConfig{Routes: []Route{up("x", "", "/a//b/")}}, "each segment holds letters"},
		{"a dot segment", RouterConfig{Routes: []Route{up("x", "", "/a/../b/")}}, "is not . or .."},
		{"an encoded letter", RouterConfig{Routes: []Route{up("x", "", "/%61ps/")}}, "each segment holds letters"},
		{"a bad Host", RouterConfig{Routes: []Route{up("x", "es.localhost/x", "")}}, `Route.Host "es.localhost/x"`},
		{"a Host with a trailing dot", RouterConfig{Routes: []Route{up("x", "es.localhost.", "")}}, `Route.Host "es.localhost."`},
		{"a bad name", RouterConfig{Routes: []Route{up("a b", "", "")}}, `Route.Name "a b"`},
		{"two names", RouterConfig{Routes: []Route{up("a", "", "/x/"), up("a", "", "/y/")}}, `two routes are named "a"`},
		{"two defaults", RouterConfig{Routes: []Route{up("a", "", ""), up("b", "", "/")}}, `routes "a" and "b" both take Host "(any)" and path prefix /`},
		{"the same prefix", RouterConfig{Routes: []Route{up("a", "", "/x/"), up("b", "", "/x/")}}, `both take Host "(any)" and path prefix /x/`},
		{"the same Host", RouterConfig{Routes: []Route{up("a", "es.localhost", ""), up("b", "ES.localhost:80", "")}}, `both take Host "es.localhost"`},
		{"nested prefixes", RouterConfig{Routes: []Route{up("a", "", "/aps/"), up("b", "", "/aps/ws-1/")}}, "nest"},
		{"a served name that is a route's", RouterConfig{ServeHosts: []string{"ES.localhost:8080"}, Routes: []Route{up("a", "es.localhost", "")}}, `RouterConfig.ServeHosts "ES.localhost:8080" is a route's Host`},
		{"a shared field in a route", RouterConfig{Routes: []Route{with(up("a", "", ""), func(c *Config) { c.MaxRequests = 3 })}}, `route "a": Config.ServeHosts, Config.AllowOrigins, Config.MaxRequests`},
		{"a served name in a route", RouterConfig{Routes: []Route{with(up("a", "", ""), func(c *Config) { c.ServeHosts = []string{"x"} })}}, "set them in the RouterConfig"},
		{"a route's Config", RouterConfig{Routes: []Route{up("a", "", "/a/"), with(up("", "", "/b/"), func(c *Config) { c.Upstream = "" })}}, `route "/b/": Config.Upstream is required`},
		{"a route's limits", RouterConfig{Routes: []Route{with(up("a", "", ""), func(c *Config) { c.MaxBuffer = 10; c.MaxBody = 5 })}}, `route "a": Config.MaxBuffer (10B) is over Config.MaxBody (5B)`},
		{"a bad origin", RouterConfig{AllowOrigins: []string{"evil"}, Routes: []Route{up("a", "", "")}}, `RouterConfig.AllowOrigins "evil"`},
		{"a negative budget", RouterConfig{MaxRequests: -1, Routes: []Route{up("a", "", "")}}, "RouterConfig.MaxRequests and RouterConfig.MemoryBudget must not be negative"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if !errors.Is(err, kivuli.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
			continue
		}
		if _, err2 := NewRouter(t.Context(), c.cfg); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%s: NewRouter: %v, Validate: %v", c.name, err2, err)
		}
	}
	// The signer's refusal of a route's upstream, naming the route.
	f := newProxyFixture(t, nil)
	good := upstreamRoute(t, f.Fixture, "ok", "", "/ok/", "", esHost)
	bad := good
	bad.Name, bad.PathPrefix, bad.Config.Upstream, bad.Config.AllowedHosts = "bad", "/bad/", "https://example.com", nil
	_, err := NewRouter(t.Context(), RouterConfig{Routes: []Route{good, bad}})
	if !errors.Is(err, kivuli.ErrHostNotAllowed) || !strings.Contains(err.Error(), `host not allowed to receive signed requests: route "bad": "example.com"`) {
		t.Errorf("an upstream the signer refuses: %v", err)
	}
}

// The route of a path, in its plain form and its canonical reading.
func TestRoutePick(t *testing.T) {
	aps, all := &routed{name: "aps", prefix: "/aps/"}, &routed{name: "all", prefix: "/"}
	s := &site{prefixes: []*routed{aps}, all: all}
	for raw, want := range map[string]string{
		"/aps/x": "aps", "/aps/": "aps", "/aps/.": "aps", "/aps/a/../b": "aps", "/aps//x": "aps", "": "all",
		"/aps": "all", "/apsx/": "all", "/APS/x": "all", "/": "all", "*": "all", "/x/y%2Fz": "all",
		"/aps/..": "400", "/aps/%2E%2E/x": "400", "/%61ps/x": "400", "//aps/x": "400", "/aps%2fx": "400", "/aps;v/x": "400", "/x/../aps/": "400",
	} {
		r, e := s.pick(raw)
		got := "400"
		if e == nil {
			got = r.name
		} else if e.Status != http.StatusBadRequest || e.Stage != "route" || e.Reason != "path" {
			t.Errorf("%q: %+v", raw, e)
		}
		if got != want {
			t.Errorf("%q: %s, want %s", raw, got, want)
		}
	}
	s.all = nil
	if _, e := s.pick("/x"); e == nil || e.Status != http.StatusNotFound || e.Reason != "no_route" {
		t.Errorf("no route: %+v", e)
	}
}

// Routes without a Transport of their own share one upstream pool, which
// keeps no more idle connections, all hosts together, than MaxRequests;
// a route with other pool settings has its own.
func TestRouterSharesUpstreamPool(t *testing.T) {
	f := newProxyFixture(t, nil)
	a, b, c := upstreamRoute(t, f.Fixture, "a", "", "/a/", "", esHost), upstreamRoute(t, f.Fixture, "b", "", "/b/", "", apsHost), upstreamRoute(t, f.Fixture, "c", "", "/c/", "", esHost)
	c.Config.IdleConnTimeout = time.Second
	rt, err := NewRouter(t.Context(), RouterConfig{MaxRequests: 8, Routes: []Route{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	pool := func(i int) *http.Transport { return rt.routes[i].p.signer.Base.(*lastHop).next.(*http.Transport) }
	if pool(0) != pool(1) || pool(0) == pool(2) {
		t.Errorf("pools: %p %p %p", pool(0), pool(1), pool(2))
	}
	if pool(0).MaxIdleConns != 8 || pool(0).MaxIdleConnsPerHost != DefaultMaxIdleConns {
		t.Errorf("the shared pool keeps %d idle connections, %d per host", pool(0).MaxIdleConns, pool(0).MaxIdleConnsPerHost)
	}
}

// A route may have both a Host and a prefix. A request whose Host is a
// route's takes that Host's routes only, never the routes without Host:
// the Host chooses the set of routes, the path one of them.
func TestRouterHostAndPrefix(t *testing.T) {
	a, b := newProxyFixture(t, nil), newProxyFixture(t, nil)
	r := startRouter(t, RouterConfig{Routes: []Route{
		upstreamRoute(t, a.Fixture, "", "x.localhost", "/a/", "", esHost),
		upstreamRoute(t, b.Fixture, "", "", "/a/", "", esHost),
		upstreamRoute(t, b.Fixture, "", "", "/b/", "", esHost),
	}})
	for _, c := range []struct {
		host, path string
		status     int
		to         *proxyFixture
		uri        string
	}{
		{"x.localhost", "/a/q", 200, a, "/q"},
		{"localhost", "/a/q", 200, b, "/q"},
		{"x.localhost", "/b/q", 404, nil, ""},
		{"x.localhost:8080", "/", 404, nil, ""},
	} {
		ba, bb := len(a.Requests()), len(b.Requests())
		resp, body := wiretest.RawRequest(t, r.host(), "GET "+c.path+" HTTP/1.1\nHost: "+c.host+"\n\n")
		if resp.StatusCode != c.status {
			t.Errorf("%s%s: %d %s", c.host, c.path, resp.StatusCode, body)
			continue
		}
		ga, gb := a.Requests()[ba:], b.Requests()[bb:]
		switch {
		case c.to == nil && len(ga)+len(gb) > 0, c.to == a && (len(ga) != 1 || ga[0].URI != c.uri || len(gb) > 0),
			c.to == b && (len(gb) != 1 || gb[0].URI != c.uri || len(ga) > 0):
			t.Errorf("%s%s reached a as %v and b as %v", c.host, c.path, ga, gb)
		}
	}
	if got := r.obs.waitDone(t, 4); !slices.Contains(got, "x.localhost/a/ OK") || !slices.Contains(got, "/a/ OK") {
		t.Errorf("the routes' default names: %q", got)
	}
}

// canonicalPath's shortcut for paths with nothing to decode or clean
// gives what the whole reading gives.
func TestCanonicalPathShortcut(t *testing.T) {
	parts := []string{"a", "aps", ".", "..", "", ".x", "x.", "%2e", "%2F", "%61", "\\", ";", "-", "~"}
	rng := rand.New(rand.NewPCG(20, 3))
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			b.WriteString("/")
			for range rng.IntN(3) {
				b.WriteString(parts[rng.IntN(len(parts))])
			}
		}
		if p := b.String(); canonicalPath(p) != decodeAndClean(p) {
			t.Fatalf("%q: %q, the whole reading %q", p, canonicalPath(p), decodeAndClean(p))
		}
	}
}

// The cost of choosing a route for a request: the plain and canonical
// readings of its path.
func BenchmarkRoutePick(b *testing.B) {
	s := &site{prefixes: []*routed{{name: "aps", prefix: "/aps/"}, {name: "s3", prefix: "/s3/"}}, all: &routed{name: "all", prefix: "/"}}
	b.ReportAllocs()
	for b.Loop() {
		if r, e := s.pick("/aps/workspaces/ws-1/api/v1/query_range"); e != nil || r.name != "aps" {
			b.Fatal(r, e)
		}
	}
}

// TestRouterPoolOfItsOwn: a route with a TLS configuration of its own
// (here no verification, a tunnel's) does not share its connection pool
// with a route that verifies, in either order: a shared pool checked the
// later route's certificates by the first one's rules.
func TestRouterPoolOfItsOwn(t *testing.T) {
	pools := map[poolKey]*http.Transport{}
	insecure := Config{Upstream: "https://tunnel.example:8443", UpstreamTLSConfig: &tls.Config{InsecureSkipVerify: true}}
	strict := Config{Upstream: "https://es.us-east-1.es.amazonaws.com"}
	s1, err := insecure.settings()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := strict.settings()
	if err != nil {
		t.Fatal(err)
	}
	a := sharedPool(pools, insecure, s1, 100)
	b := sharedPool(pools, strict, s2, 100)
	c := sharedPool(pools, insecure, s1, 100)
	if a == b || c == b || b.TLSClientConfig != nil && b.TLSClientConfig.InsecureSkipVerify {
		t.Fatalf("the verifying route shares a pool that does not verify")
	}
	if !a.TLSClientConfig.InsecureSkipVerify {
		t.Fatalf("the tunnel's pool lost its TLS configuration")
	}
}
