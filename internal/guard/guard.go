// Package guard refuses what a web page on the same machine sends a local
// server: a Host that DNS rebinding produces, and a browser's request from
// a page of another origin. The signing proxy (package proxy) and the
// kivuli command's servers (imds, exec --serve, the proxy's admin
// listener) share it.
package guard

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/kivuli-go/kivuli"
)

// What a web page on the same machine can reach. A browser sends "simple"
// requests (GET, and POST with a form or text/plain body) to any address
// without asking the server first, and with DNS rebinding a page reads the
// answers of a loopback server under its own name, which it sends as the
// Host header. A guard refuses both, before a handler does anything:
//
//   - a Host that is not a name this server serves: an IP literal (which
//     rebinding cannot produce: it changes what a name resolves to),
//     localhost, the host of the listen address, or a name the operator
//     gave. The port is not compared: rebinding keeps the attacker's
//     name, and clients through a port forward (ssh -L, docker -p) send
//     their own port.
//   - a request a browser sent from a page of another origin: an Origin
//     that is not the server's own, or a Sec-Fetch-Site other than
//     same-origin (a page the server served) or none (typed by the user),
//     unless the operator allowed that Origin. Programs that are not
//     browsers (curl, the AWS SDKs, Grafana's backend) send neither.

// Guard checks the Host and the browser headers of requests.
type Guard struct {
	names   map[string]bool // host names served besides IP literals and localhost, lower case
	origins map[string]bool // origins allowed, as originKey gives them
	hint    string          // how to serve another name, for the refusal's message
}

// Refusal is a guard's answer to a request it refuses.
type Refusal struct {
	Status int    // 421 for a Host, 403 for an origin
	Reason string // "host" or "origin", a metric's label
	Msg    string
}

// New makes a guard that serves the host names of names (host or
// host:port, the values of the setting called nameField) and allows the
// origins (scheme://host[:port], of the setting called originField). Its
// errors are *kivuli.Error of kind ErrInvalidConfig that name the setting.
func New(names []string, nameField string, origins []string, originField string) (*Guard, error) {
	g := &Guard{names: map[string]bool{}, origins: map[string]bool{}}
	if nameField != "" {
		g.hint = ", or serve the name with " + nameField
	}
	for _, n := range names {
		u, err := url.Parse("http://" + n)
		if err != nil || u.Host != n || u.Path != "" || u.Hostname() == "" || strings.ContainsAny(u.Hostname(), "*%") {
			return nil, invalid("%s %q: want a host name, or host:port", nameField, n)
		}
		g.names[strings.ToLower(u.Hostname())] = true
	}
	for _, o := range origins {
		k, ok := originKey(o)
		if !ok {
			return nil, invalid("%s %q: want an origin, scheme://host[:port], as a browser sends it (e.g. https://grafana.example.com)", originField, o)
		}
		g.origins[k] = true
	}
	return g, nil
}

func invalid(format string, args ...any) error {
	return &kivuli.Error{Kind: kivuli.ErrInvalidConfig, Reason: fmt.Sprintf(format, args...)}
}

// ServeListen adds the host of a listen address to the names served.
func (g *Guard) ServeListen(addr string) {
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		g.names[strings.ToLower(h)] = true
	}
}

// Check returns why r is refused, or nil.
func (g *Guard) Check(r *http.Request) *Refusal {
	if !g.hostServed(r.Host) {
		return g.refuse(http.StatusMisdirectedRequest, "host", fmt.Sprintf(
			"Host %s is not a name this server answers to (a web page's DNS rebinding sends its own): use an IP address or localhost%s", clip(r.Host), g.hint))
	}
	origin := r.Header.Values("Origin")
	if len(origin) == 1 {
		if k, ok := originKey(origin[0]); ok && g.origins[k] {
			return nil
		}
	}
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" || len(origin) > 0 && !sameOrigin(r, origin) {
		return g.refuse(http.StatusForbidden, "origin", fmt.Sprintf(
			"a request from a web page of another origin (Origin %s, Sec-Fetch-Site %s) is refused", clip(strings.Join(origin, ",")), clip(site)))
	}
	return nil
}

func (g *Guard) refuse(status int, reason, msg string) *Refusal {
	return &Refusal{Status: status, Reason: reason, Msg: "kivuli: " + msg}
}

// Wrap answers the requests the guard refuses in plain text, telling
// refused (if not nil) of each, and passes the others to h.
func (g *Guard) Wrap(h http.Handler, refused func(*Refusal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rf := g.Check(r); rf != nil {
			if refused != nil {
				refused(rf)
			}
			http.Error(w, rf.Msg, rf.Status)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hostServed reports whether host, a Host header, names this server. An
// empty one (HTTP/1.0) never comes from a browser.
func (g *Guard) hostServed(host string) bool {
	h := strings.ToLower(hostOnly(host))
	if host == "" || h == "localhost" || g.names[h] {
		return true
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// sameOrigin reports whether origin, the request's Origin values, is the
// server's own: the scheme of the connection (https over TLS) and the Host
// the request was sent to.
func sameOrigin(r *http.Request, origin []string) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	own, ok := originKey(scheme + "://" + r.Host)
	theirs, ok2 := originKey(origin[0])
	return len(origin) == 1 && ok && ok2 && own == theirs
}

// originKey is an origin as compared: scheme and host in lower case, the
// scheme's default port removed. ok is false for anything but an http or
// https origin (such as "null", which sandboxed pages and file: URLs send).
func originKey(s string) (key string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || u.Path != "" && u.Path != "/" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme != "http" && scheme != "https" || host == "" {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" && port != map[string]string{"http": "80", "https": "443"}[scheme] {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// hostOnly is the host of host or host:port, without IPv6 brackets.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// clip is a client's value as quoted in a message: at most 100 bytes.
func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return fmt.Sprintf("%q", s)
}
