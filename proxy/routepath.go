package proxy

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// A Router's path prefixes (/aps/) are matched so that no reading of a
// path puts it under another route than the one chosen. The route is
// chosen twice: on the path as the client wrote it (its escaped form,
// which must begin with the prefix, letter for letter), and on its
// canonical reading (each %2F, %5C and "\" a separator, every segment
// decoded and cut at a ";parameter", dot segments and repeated slashes
// removed). When the two disagree (/%61ps/x, //aps/x, /es/../aps/x,
// /aps%2Fx), the request gets 400; so does one whose path after the
// prefix climbs above it in any reading (/aps/..%2Fes/, climbs). A
// prefix holds only unreserved characters, so that it reads the same
// encoded and decoded. /aps and /apsx/ are not under /aps/.

// site is the routes a request may take: those of one Host, or those
// without one.
type site struct {
	prefixes []*routed // by prefix, longest first ("/" is all)
	all      *routed   // the route of every other path (prefix "/"), or nil
}

// routed is a route as the Router serves it.
type routed struct {
	name, host, prefix string
	p                  *Proxy
}

// match is the route whose prefix the path p is under, or the site's
// route of every path, or nil.
func (s *site) match(p string) *routed {
	for _, r := range s.prefixes {
		if strings.HasPrefix(p, r.prefix) {
			return r
		}
	}
	return s.all
}

// pick is the route of a request's escaped path raw in s, or the reason
// it gets none.
func (s *site) pick(raw string) (*routed, *RequestError) {
	if raw == "" {
		raw = "/"
	}
	r := s.match(raw)
	if c := s.match(canonicalPath(raw)); c != r {
		return nil, &RequestError{Status: http.StatusBadRequest, Stage: "route", Reason: "path",
			Msg: "kivuli proxy: the path " + clipPath(raw) + " reads as the path of another route once decoded and cleaned: write it plainly"}
	}
	if r == nil {
		return nil, noRoute(raw)
	}
	if r.prefix != "/" && climbs(raw[len(r.prefix)-1:]) {
		return nil, &RequestError{Status: http.StatusBadRequest, Stage: "route", Reason: "path",
			Msg: "kivuli proxy: the path climbs out of the route's prefix " + r.prefix + " (a '..' segment, or one encoded): the client never chooses where a request goes"}
	}
	return r, nil
}

// noRoute is the answer to a request that matches no route.
func noRoute(raw string) *RequestError {
	return &RequestError{Status: http.StatusNotFound, Stage: "route", Reason: "no_route",
		Msg: "kivuli proxy: no route for the path " + clipPath(raw) + " with this Host: the routes are the Host names and path prefixes of RouterConfig.Routes"}
}

// canonicalPath is the escaped path raw as a server that decodes the most
// reads it: %2F, %5C and "\" separate, segments are decoded and cut at a
// ";", dot segments and empty segments are removed; a trailing '/' kept.
func canonicalPath(raw string) string {
	if strings.HasPrefix(raw, "/") && !strings.ContainsAny(raw, "%\\;") && !strings.Contains(raw, "//") && !strings.Contains(raw, "/.") {
		return raw // nothing to decode, no empty or dot segment: most paths
	}
	return decodeAndClean(raw)
}

// decodeAndClean is canonicalPath without its shortcut.
func decodeAndClean(raw string) string {
	var b strings.Builder
	for seg := range strings.SplitSeq(raw, "/") {
		for piece := range splitOptionalSeparators(seg) {
			if d, err := url.PathUnescape(piece); err == nil {
				piece = d
			}
			piece, _, _ = strings.Cut(piece, ";")
			b.WriteString("/" + piece)
		}
	}
	d := b.String()
	c := path.Clean(d)
	if c != "/" && (strings.HasSuffix(d, "/") || strings.HasSuffix(d, "/.") || strings.HasSuffix(d, "/..")) {
		c += "/"
	}
	return c
}

// stripPrefix removes strip (a route's prefix without its last '/') from
// the path of u, the outgoing request's, before ReverseProxy joins it to
// the upstream's: the escaped form kept as the client encoded it.
func stripPrefix(u *url.URL, strip string) {
	esc := u.EscapedPath()
	u.Path = strings.TrimPrefix(u.Path, strip)
	u.RawPath = strings.TrimPrefix(esc, strip) // used where it encodes Path
}

// clipPath is a client's path as quoted in a message: 100 bytes at most.
func clipPath(p string) string {
	if len(p) > 100 {
		p = p[:100] + "..."
	}
	return p
}
