package proxycmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/spf13/pflag"
)

// Routes: one proxy for several upstreams, each chosen by the request's
// Host or path prefix (the library's proxy.Router). On the command line a
// route is one shell word, what it takes = where it goes, then options:
//
//	--route es.localhost=https://search-logs-abc.eu-west-2.es.amazonaws.com
//	--route /aps/=https://aps-workspaces.eu-west-2.amazonaws.com/workspaces/ws-1,role-arn=arn:aws:iam::123456789012:role/prom
//
// Hosts, paths, URLs and ARNs hold no character a shell reads, so no
// quoting is needed; the match reads as net/http's ServeMux patterns
// (HOST, /PREFIX/, HOST/PREFIX/). Options that take lists or need a comma
// are for --routes FILE, a JSON list of the same keys.

// routeFlags are --route and --routes.
type routeFlags struct {
	specs []string // --route
	file  string   // --routes
}

func addRouteFlags(fl *pflag.FlagSet, rf *routeFlags) {
	fl.StringArrayVar(&rf.specs, "route", nil, "serve `ROUTE`, MATCH=URL[,KEY=VALUE]...: requests whose Host is MATCH (es.localhost), or whose path is under it (/aps/, removed), go to URL; KEY: name, service, region, sign-host, role-arn, ... (repeatable; see ROUTES)")
	fl.StringVar(&rf.file, "routes", "", "serve the routes of the JSON `FILE` (a list of routes, each with the keys of --route, and match or host and path-prefix)")
}

// given reports whether routes were given: the proxy is then a router.
func (rf *routeFlags) given() bool { return len(rf.specs) > 0 || rf.file != "" }

// routeSpec is one route as --route or --routes gives it: the keys of
// the JSON file, named as the flags that set the same for one upstream.
type routeSpec struct {
	Name               string   `json:"name"`
	Match              string   `json:"match"`
	Host               string   `json:"host"`
	PathPrefix         string   `json:"path-prefix"`
	Upstream           string   `json:"upstream"`
	Service            string   `json:"service"`
	Region             string   `json:"region"`
	SignHost           string   `json:"sign-host"`
	UpstreamServerName string   `json:"upstream-server-name"`
	RoleARN            string   `json:"role-arn"`
	AllowHosts         []string `json:"allow-host"`
	HeaderAllow        []string `json:"header-allow"`
	HeaderDeny         []string `json:"header-deny"`
	UnsignedPayload    *bool    `json:"unsigned-payload"`
	MaxBody            string   `json:"max-body"`
	MaxBuffer          string   `json:"max-buffer"`
	BodyIdleTimeout    string   `json:"body-idle-timeout"`
	MaxAttempts        int      `json:"max-attempts"`

	from string // where it was given, for messages: "--route X", "--routes F: route 2"
}

// parseRoute reads one --route value: MATCH=URL, then ,KEY=VALUE options.
func parseRoute(v string) (routeSpec, error) {
	sp := routeSpec{from: "--route " + v}
	match, rest, ok := strings.Cut(v, "=")
	if !ok || match == "" || rest == "" {
		return sp, base.UsageErrorf("--route %q: want MATCH=URL, such as es.localhost=https://HOST or /aps/=https://HOST/PATH", v)
	}
	opts := strings.Split(rest, ",")
	sp.Match, sp.Upstream = match, opts[0]
	for _, o := range opts[1:] {
		k, val, ok := strings.Cut(o, "=")
		if !ok {
			return sp, base.UsageErrorf("--route %q: option %q: want KEY=VALUE (a URL with a comma goes in --routes FILE)", v, o)
		}
		if err := sp.set(k, val); err != nil {
			return sp, base.UsageErrorf("--route %q: %v", v, err)
		}
	}
	return sp, nil
}

// set sets the option k of a --route.
func (sp *routeSpec) set(k, v string) error {
	str := map[string]*string{"name": &sp.Name, "service": &sp.Service, "region": &sp.Region, "sign-host": &sp.SignHost,
		"upstream-server-name": &sp.UpstreamServerName, "role-arn": &sp.RoleARN, "max-body": &sp.MaxBody,
		"max-buffer": &sp.MaxBuffer, "body-idle-timeout": &sp.BodyIdleTimeout}
	list := map[string]*[]string{"allow-host": &sp.AllowHosts, "header-allow": &sp.HeaderAllow, "header-deny": &sp.HeaderDeny}
	switch {
	case str[k] != nil:
		*str[k] = v
	case list[k] != nil:
		*list[k] = append(*list[k], v)
	case k == "unsigned-payload":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("unsigned-payload=%q: want true or false", v)
		}
		sp.UnsignedPayload = &b
	case k == "max-attempts":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("max-attempts=%q: want a number, at least 1", v)
		}
		sp.MaxAttempts = n
	default:
		return fmt.Errorf("unknown option %q: the options are name, service, region, sign-host, upstream-server-name, role-arn, allow-host, header-allow, header-deny, unsigned-payload, max-body, max-buffer, body-idle-timeout, max-attempts", k)
	}
	return nil
}

// readRoutes reads --routes FILE: {"routes": [{...}, ...]}.
func readRoutes(file string) ([]routeSpec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, base.UsageErrorf("--routes: %v", err)
	}
	var doc struct {
		Routes []routeSpec `json:"routes"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, base.UsageErrorf("--routes %s: %v (want {\"routes\": [{\"match\": \"/aps/\", \"upstream\": \"https://...\"}, ...]})", file, err)
	}
	if len(doc.Routes) == 0 {
		return nil, base.UsageErrorf("--routes %s: no routes", file)
	}
	for i := range doc.Routes {
		doc.Routes[i].from = fmt.Sprintf("--routes %s: route %d", file, i+1)
	}
	return doc.Routes, nil
}

// routeSpecs are the routes of --route and --routes, in that order.
func (rf *routeFlags) routeSpecs() ([]routeSpec, error) {
	var specs []routeSpec
	for _, v := range rf.specs {
		sp, err := parseRoute(v)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	if rf.file != "" {
		more, err := readRoutes(rf.file)
		if err != nil {
			return nil, err
		}
		specs = append(specs, more...)
	}
	return specs, nil
}

// route is sp as the library's Route, on top of the per-upstream flags'
// values in def: a key of the route replaces the flag's value.
func (sp routeSpec) route(def proxy.Config) (proxy.Route, error) {
	r := proxy.Route{Name: sp.Name, Host: sp.Host, PathPrefix: sp.PathPrefix, Config: def}
	if sp.Match != "" {
		if sp.Host != "" || sp.PathPrefix != "" {
			return r, base.UsageErrorf("%s: give match, or host and path-prefix, not both", sp.from)
		}
		r.Host, r.PathPrefix = sp.Match, ""
		if i := strings.IndexByte(sp.Match, '/'); i >= 0 {
			r.Host, r.PathPrefix = sp.Match[:i], sp.Match[i:]
		}
	}
	c := &r.Config
	c.Upstream, c.Service, c.SignHost, c.UpstreamServerName = sp.Upstream, sp.Service, sp.SignHost, sp.UpstreamServerName
	if sp.Region != "" {
		c.Region = sp.Region
	}
	for _, l := range []struct {
		dst *[]string
		v   []string
	}{{&c.AllowedHosts, sp.AllowHosts}, {&c.SignHeaders, sp.HeaderAllow}, {&c.DropHeaders, sp.HeaderDeny}} {
		if l.v != nil {
			*l.dst = slices.Clone(l.v)
		}
	}
	if sp.UnsignedPayload != nil {
		c.UnsignedPayload = *sp.UnsignedPayload
	}
	if sp.MaxAttempts != 0 {
		c.MaxAttempts = sp.MaxAttempts
	}
	return r, sp.limits(c)
}

// limits sets c's body limits from sp's, where given.
func (sp routeSpec) limits(c *proxy.Config) error {
	for _, s := range []struct {
		key, v string
		dst    *int64
	}{{"max-body", sp.MaxBody, &c.MaxBody}, {"max-buffer", sp.MaxBuffer, &c.MaxBuffer}} {
		if s.v == "" {
			continue
		}
		var f base.SizeFlag
		if err := f.Set(s.v); err != nil {
			return base.UsageErrorf("%s: %s %q: %v", sp.from, s.key, s.v, err)
		}
		*s.dst = noneIfZero(f.N)
	}
	if sp.MaxBuffer == "" && c.MaxBody > 0 && c.MaxBuffer > c.MaxBody {
		c.MaxBuffer = c.MaxBody // a route's small max-body under the default buffer
	}
	if sp.BodyIdleTimeout != "" {
		d, err := time.ParseDuration(sp.BodyIdleTimeout)
		if err != nil || d < 0 {
			return base.UsageErrorf("%s: body-idle-timeout %q: want a duration, such as 30s", sp.from, sp.BodyIdleTimeout)
		}
		c.BodyIdleTimeout = noneIfZero(d)
	}
	return nil
}
