package sigv4test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// --- reading the request as it was on the wire ---

func requestMethod(r *http.Request) string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}

// requestTarget returns the request target as received: r.RequestURI, or
// what net/http's client would send for r.URL.
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		t := r.RequestURI
		// Absolute form: drop scheme and authority.
		if i := strings.Index(t, "://"); i >= 0 && !strings.HasPrefix(t, "/") {
			t = t[i+3:]
			if j := strings.IndexAny(t, "/?"); j >= 0 {
				t = t[j:]
			} else {
				t = ""
			}
		}
		return t
	}
	if r.URL == nil {
		return ""
	}
	p := r.URL.Opaque
	if p == "" {
		p = r.URL.EscapedPath()
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		p += "?" + r.URL.RawQuery
	}
	return p
}

// wirePath is the path of the request target, still percent-encoded.
func wirePath(r *http.Request) string {
	p, _, _ := strings.Cut(requestTarget(r), "?")
	return p
}

// wireQuery is the raw query of the request target.
func wireQuery(r *http.Request) string {
	_, q, _ := strings.Cut(requestTarget(r), "?")
	return q
}

func isChunked(r *http.Request) bool {
	for _, te := range r.TransferEncoding {
		if strings.EqualFold(te, "chunked") {
			return true
		}
	}
	for _, te := range r.Header.Values("Transfer-Encoding") {
		if strings.Contains(strings.ToLower(te), "chunked") {
			return true
		}
	}
	return false
}

// headerValues returns the values of the header whose lowercase name is
// name, whatever the case of its key in r.Header, in arrival order. (Keys
// net/http could not canonicalise may spell one name several ways; their
// values are joined in key order.)
func headerValues(r *http.Request, name string) ([]string, bool) {
	if vs, ok := r.Header[http.CanonicalHeaderKey(name)]; ok && !otherCaseKeys(r.Header, name) {
		return vs, true
	}
	var keys []string
	for k := range r.Header {
		if strings.ToLower(k) == name {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		out = append(out, r.Header[k]...)
	}
	return out, true
}

// otherCaseKeys reports whether h has keys spelling name in more than one way.
func otherCaseKeys(h http.Header, name string) bool {
	n := 0
	for k := range h {
		if len(k) == len(name) && strings.ToLower(k) == name {
			n++
		}
	}
	return n > 1
}

// canonicalHeaderValue returns the canonical value of the header named
// (lowercase) name: each value trimmed, inner runs of spaces collapsed, and
// repeated headers joined with ',' in arrival order.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		h := r.Host
		if h == "" && r.URL != nil {
			h = r.URL.Host
		}
		vals = []string{h}
	case "content-length":
		if vs, ok := headerValues(r, name); ok {
			vals = vs
		} else if r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if vs, ok := headerValues(r, name); ok {
			vals = vs
		} else {
			vals = []string{strings.Join(r.TransferEncoding, ",")}
		}
	default:
		vals, _ = headerValues(r, name)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = trimAll(v)
	}
	return strings.Join(out, ",")
}

// trimAll trims leading and trailing whitespace and collapses each inner
// run of spaces to one.
func trimAll(s string) string {
	s = strings.Trim(s, " \t")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
