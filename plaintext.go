package kivuli

import (
	"errors"
	"net"
	"net/http"
	"net/url"
)

// A request in clear (http://, ws://) carries the session token and a
// signature that whoever reads it can replay to AWS within minutes. The
// host rules let one go only to a listed or loopback host; this file makes
// sure that no HTTP proxy reads it on the way: a loopback name is no
// guarantee, since Go's ProxyFromEnvironment sends "app.localhost" and
// "LOCALHOST" through HTTP_PROXY, and a listed host may be behind one.

// ProxyReporter is implemented by a [Transport.Base] that wraps another
// RoundTripper (for tracing, metrics or headers) and can tell whether it
// sends a request through an HTTP proxy, as an [*http.Transport] tells
// through its Proxy field.
//
// Before a request in clear is signed, the Transport asks its Base
// ([ProxyURLOf]): an *http.Transport (http.DefaultTransport included)
// through Proxy, another Base through ProxyURL. A Base that can tell
// neither way is taken to proxy every request but those Go itself never
// proxies (to "localhost" and to loopback IP addresses), so that through
// it only those may be sent in clear. Put such a wrapper outside the
// Transport instead, or give it a ProxyURL method that asks what it wraps.
type ProxyReporter interface {
	// ProxyURL returns the URL of the proxy through which req would be
	// sent, or nil when it would be sent directly, as http.Transport's
	// Proxy field does. An error counts as a proxy.
	ProxyURL(req *http.Request) (*url.URL, error)
}

// errCannotTell is ProxyURLOf's answer for a RoundTripper that cannot
// tell whether it uses a proxy.
var errCannotTell = errors.New("kivuli: the RoundTripper cannot tell whether it uses an HTTP proxy")

// ProxyURLOf returns the proxy through which rt would send req, or nil
// when it would send it directly: an [*http.Transport]'s Proxy answers, a
// [ProxyReporter]'s ProxyURL; any other RoundTripper is taken to proxy
// every request but those Go itself never proxies (to "localhost" and to
// loopback IP addresses), and for those others it returns an error. A
// wrapper's ProxyURL method can return ProxyURLOf(next, req).
func ProxyURLOf(rt http.RoundTripper, req *http.Request) (*url.URL, error) {
	switch rt := rt.(type) {
	case *http.Transport:
		if rt.Proxy == nil {
			return nil, nil
		}
		return rt.Proxy(req)
	case ProxyReporter:
		return rt.ProxyURL(req)
	}
	if neverProxied(req.URL.Hostname()) {
		return nil, nil
	}
	return nil, errCannotTell
}

// checkNoProxy returns an [ErrPlaintext] error unless Base sends req, a
// request in clear, directly (ProxyURLOf).
func (t *Transport) checkNoProxy(req *http.Request) error {
	u := req.URL
	p, err := ProxyURLOf(t.base(), asHTTP(req))
	switch {
	case err == nil && p == nil:
		return nil
	case errors.Is(err, errCannotTell):
		return invalid(ErrPlaintext, "%s://%s: Base, a %T, cannot tell whether it sends the request through an HTTP proxy, which would read the signature and the session token in clear; through such a Base, only \"localhost\" and loopback addresses, which Go never proxies, are reached in clear: use %ss://, an *http.Transport Base, or a Base with a ProxyURL method (kivuli.ProxyReporter)", u.Scheme, u.Host, t.base(), u.Scheme)
	}
	// The proxy's address is not quoted: it may hold a password.
	return invalid(ErrPlaintext, "%s://%s would go through the HTTP proxy that Base chooses for it (HTTP_PROXY, say), which would read the signature and the session token in clear: use %ss://, or exempt the host from the proxy (NO_PROXY)", u.Scheme, u.Host, u.Scheme)
}

// asHTTP returns req as a proxy is asked about it: a WebSocket handshake
// (ws://, wss://) is sent as an http:// or https:// request, and
// ProxyFromEnvironment knows no other scheme.
func asHTTP(req *http.Request) *http.Request {
	s := asciiLower(req.URL.Scheme)
	if s != "ws" && s != "wss" {
		return req
	}
	u := *req.URL
	u.Scheme = "http" + s[2:]
	r := new(http.Request)
	*r = *req
	r.URL = &u
	return r
}

// neverProxied reports whether Go's ProxyFromEnvironment never sends a
// request for hostname (URL.Hostname()) through a proxy, whatever
// HTTP_PROXY and NO_PROXY say: "localhost" exactly, as written, and the
// loopback IP addresses that net.ParseIP reads (no zone: Go before 1.22
// proxied those). Other names that resolve to loopback ("app.localhost",
// "LOCALHOST") are proxied.
func neverProxied(hostname string) bool {
	if hostname == "localhost" {
		return true
	}
	ip := net.ParseIP(hostname)
	return ip != nil && ip.IsLoopback()
}
