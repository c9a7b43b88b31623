package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/guard"
)

// Route is one upstream of a [Router], and the requests that go to it:
// those whose Host is Host, or whose path is under PathPrefix, or both.
type Route struct {
	// Name names the route in [Exchange.Route], [RouteOf] and messages:
	// letters, digits and . _ ~ / : @ + -, at most 100. Empty: Host and
	// PathPrefix written together (es.localhost, /aps/, es.localhost/aps/).
	Name string
	// Host is the name (host or host:port; the port is not compared, and
	// letters compare in any case) of the requests this route serves, such
	// as es.localhost. The Router serves it (no Config.ServeHosts needed).
	// A request whose Host is a route's takes one of that Host's routes
	// only; other requests take the routes without Host.
	Host string
	// PathPrefix is the path the requests this route serves are under,
	// beginning and ending with '/' (/aps/), removed before the path is
	// joined to Config.Upstream's. Empty or "/": every path that no other
	// prefix of the same Host (or of no Host) takes. Its segments hold
	// letters, digits and - . _ ~ only, no dot segments; prefixes of one
	// Host never nest, but for "/".
	PathPrefix string
	// Config is the route's proxy: its upstream, credentials, scope,
	// header rules, body limits and retries. Routes without a Transport
	// share an upstream connection pool where their pool settings agree. The fields of what all
	// routes share are the RouterConfig's and must be left zero here:
	// ServeHosts, AllowOrigins, MaxRequests, QueueTimeout, MemoryBudget,
	// MaxSpool, Observer, ErrorHandler.
	Config Config
}

// RouterConfig is a [Router]'s configuration: Routes is required, and
// every other field's zero value is [Config]'s default. What bounds the
// process is shared by all routes: one request budget (MaxRequests, and
// the queue), one memory budget and one spool, so that no route, and no
// number of routes, makes the proxy hold more than one Proxy would.
type RouterConfig struct {
	// Routes are the upstreams and the requests each serves. A request
	// no route matches gets 404, and nothing is signed or sent.
	Routes []Route
	// ServeHosts and AllowOrigins are as [Config]'s, for every route; the
	// routes' Hosts are served besides.
	ServeHosts, AllowOrigins []string
	// MaxRequests, QueueTimeout, MemoryBudget and MaxSpool are as
	// [Config]'s, shared by all routes. MemoryBudget is never less than
	// the largest of the routes' MaxBuffer.
	MaxRequests  int
	QueueTimeout time.Duration
	MemoryBudget int64
	MaxSpool     int64
	// Observer and ErrorHandler are as [Config]'s, for every route and
	// for the requests the Router refuses itself; [RouteOf] tells which
	// route a request took.
	Observer     Observer
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err *RequestError)
}

// Validate checks c as [NewRouter] does, but for the routes' credentials:
// its errors are [*kivuli.Error]s of kind [kivuli.ErrInvalidConfig] that
// name the route and the field.
func (c RouterConfig) Validate() error {
	_, _, _, err := c.check()
	return err
}

// routeSpec is a route checked: its name, Host (lower case, no port),
// prefix and settings.
type routeSpec struct {
	name, host, prefix string
	s                  *settings
}

// check checks c and its routes, and returns them with the budgets
// they share, filled in with their defaults, and the guard of all.
func (c RouterConfig) check() ([]routeSpec, *budgets, *guard.Guard, error) {
	if len(c.Routes) == 0 {
		return nil, nil, nil, invalid("RouterConfig.Routes is empty: give at least one route")
	}
	specs := make([]routeSpec, 0, len(c.Routes))
	maxBuffer := int64(0)
	for i, rt := range c.Routes {
		sp, err := checkRoute(rt)
		if err != nil {
			return nil, nil, nil, inRoute(i, rt, err)
		}
		maxBuffer = max(maxBuffer, sp.s.maxBuffer)
		specs = append(specs, sp)
	}
	if err := checkOverlaps(specs, c.ServeHosts); err != nil {
		return nil, nil, nil, err
	}
	g, err := routerGuard(c, specs)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.MaxRequests < 0 || c.MemoryBudget < 0 {
		return nil, nil, nil, invalid("RouterConfig.MaxRequests and RouterConfig.MemoryBudget must not be negative")
	}
	memory := max(cmp.Or(c.MemoryBudget, DefaultMemoryBudget), maxBuffer)
	b := newBudgets(cmp.Or(c.MaxRequests, DefaultMaxRequests), cmp.Or(max(c.QueueTimeout, -1), DefaultQueueTimeout),
		memory, sizeOr(c.MaxSpool, DefaultMaxSpool))
	return specs, b, g, nil
}

// checkRoute checks one route: its name, Host, prefix and Config.
func checkRoute(rt Route) (routeSpec, error) {
	sp := routeSpec{prefix: cmp.Or(rt.PathPrefix, "/")}
	if rt.Host != "" {
		u, err := url.Parse("http://" + rt.Host)
		if err != nil || u.Host != rt.Host || u.Hostname() == "" || strings.ContainsAny(u.Hostname(), "*%") || strings.HasSuffix(u.Hostname(), ".") {
			return sp, invalid("Route.Host %q: want a host name, or host:port", rt.Host)
		}
		sp.host = strings.ToLower(u.Hostname())
	}
	if err := checkPrefix(sp.prefix); err != nil {
		return sp, err
	}
	sp.name = rt.Name
	if sp.name == "" {
		sp.name = rt.Host + rt.PathPrefix
		if sp.name == "" {
			sp.name = "/"
		}
	}
	if len(sp.name) > 100 || strings.TrimLeft(sp.name, nameChars) != "" {
		return sp, invalid("Route.Name %q: want letters, digits and . _ ~ / : @ + -, at most 100", clipPath(sp.name))
	}
	cfg := rt.Config
	if len(cfg.ServeHosts) > 0 || len(cfg.AllowOrigins) > 0 || cfg.MaxRequests != 0 || cfg.QueueTimeout != 0 ||
		cfg.MemoryBudget != 0 || cfg.MaxSpool != 0 || cfg.Observer != nil || cfg.ErrorHandler != nil {
		return sp, invalid("Config.ServeHosts, Config.AllowOrigins, Config.MaxRequests, Config.QueueTimeout, Config.MemoryBudget, Config.MaxSpool, Config.Observer and Config.ErrorHandler are shared by all routes: set them in the RouterConfig")
	}
	var err error
	sp.s, err = cfg.settings()
	return sp, err
}

// nameChars are the characters of a route's name.
const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~/:@+-"

// checkPrefix checks a PathPrefix: '/' at both ends, segments of
// unreserved characters that are not dot segments.
func checkPrefix(p string) error {
	if p == "/" {
		return nil
	}
	inner, ok1 := strings.CutPrefix(p, "/")
	inner, ok2 := strings.CutSuffix(inner, "/")
	if !ok1 || !ok2 || inner == "" {
		return invalid("Route.PathPrefix %q: want a path that begins and ends with '/', such as /aps/", p)
	}
	for seg := range strings.SplitSeq(inner, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") != "" {
			return invalid("Route.PathPrefix %q: each segment holds letters, digits and - . _ ~ only, and is not . or ..", p)
		}
	}
	return nil
}

// checkOverlaps refuses two routes with the same name, or the same Host
// and prefix, prefixes of one Host that nest, and a ServeHosts name that
// is a route's Host (a request to it would take that Host's routes only).
func checkOverlaps(specs []routeSpec, serveHosts []string) error {
	names := map[string]bool{}
	for i, a := range specs {
		for _, b := range specs[:i] {
			switch {
			case a.host != b.host:
			case a.prefix == b.prefix:
				return invalid("RouterConfig.Routes: routes %q and %q both take Host %q and path prefix %s", b.name, a.name, cmp.Or(a.host, "(any)"), a.prefix)
			case a.prefix != "/" && b.prefix != "/" && (strings.HasPrefix(a.prefix, b.prefix) || strings.HasPrefix(b.prefix, a.prefix)):
				return invalid("RouterConfig.Routes: the path prefixes %s (route %q) and %s (route %q) nest: give each upstream a prefix of its own", b.prefix, b.name, a.prefix, a.name)
			}
		}
		if names[a.name] {
			return invalid("RouterConfig.Routes: two routes are named %q", a.name)
		}
		names[a.name] = true
	}
	for _, n := range serveHosts {
		h := n
		if u, err := url.Parse("http://" + n); err == nil {
			h = u.Hostname()
		}
		if slices.ContainsFunc(specs, func(s routeSpec) bool { return s.host != "" && s.host == strings.ToLower(h) }) {
			return invalid("RouterConfig.ServeHosts %q is a route's Host: its requests take that Host's routes; remove it from RouterConfig.ServeHosts", n)
		}
	}
	return nil
}

// inRoute is err, of the route at index i, saying which route.
func inRoute(i int, rt Route, err error) error {
	where := fmt.Sprintf("route %d", i+1)
	if n := cmp.Or(rt.Name, rt.Host+rt.PathPrefix); n != "" {
		where = fmt.Sprintf("route %q", clipPath(n))
	}
	var ke *kivuli.Error
	if errors.As(err, &ke) {
		c := *ke
		c.Reason = strings.TrimSuffix(where+": "+c.Reason, ": ")
		return &c
	}
	return fmt.Errorf("kivuli: %s: %w", where, err)
}

// routerGuard is the guard of a Router's requests: c's names and origins,
// and the routes' Hosts.
func routerGuard(c RouterConfig, specs []routeSpec) (*guard.Guard, error) {
	names := slices.Clone(c.ServeHosts)
	for _, sp := range specs {
		if sp.host != "" {
			names = append(names, sp.host)
		}
	}
	return guard.New(names, "RouterConfig.ServeHosts", c.AllowOrigins, "RouterConfig.AllowOrigins")
}
