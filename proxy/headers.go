package proxy

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Which of a client's headers the proxy signs, sends unsigned, or drops.
//
// A signature covers the headers it lists; any of them changed on the way
// breaks it. So the proxy signs only headers that nobody between it and
// AWS has a reason to touch (Host, x-amz-*, Content-MD5, Content-Type, and
// those named in SignHeaders), and never the ones that proxies and
// load balancers rewrite or remove: hop-by-hop headers, forwarding
// headers, Accept-Encoding, tracing headers (toolhive#5835,
// grafana-aws-sdk#48). Those go unsigned, added after signing. S3 refuses
// an unsigned Content-MD5 (aws-sigv4-proxy#45) and every AWS service an
// unsigned x-amz-* header, so those are always signed.
//
// The split is made on the request the signer receives, after
// httputil.ReverseProxy has removed the hop-by-hop headers and those the
// client named in Connection: nothing removes a header once it is signed.

// strippedHeaders are the client's own signing headers: stale or forged,
// never forwarded (the signer sets its own).
var strippedHeaders = map[string]bool{
	"Authorization":        true,
	"X-Amz-Date":           true,
	"X-Amz-Security-Token": true,
	"X-Amz-Content-Sha256": true,
	// The length the proxy sends is the body's, set by net/http.
	"Content-Length": true,
}

// unsignedHeaders are never signed: proxies on the way remove, rewrite or
// add them.
var unsignedHeaders = map[string]bool{
	// Hop-by-hop (RFC 9110 section 7.6.1), and the WebSocket handshake's.
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	// Forwarding.
	"Via": true, "Forwarded": true, "X-Real-Ip": true,
	// Content negotiation that proxies rewrite, and what the SDK signer
	// leaves out anyway.
	"Accept-Encoding": true, "User-Agent": true, "Expect": true,
	// Tracing: W3C, AWS X-Ray, Zipkin B3, Jaeger, Google, Datadog, Sentry,
	// request IDs that meshes set.
	"Traceparent": true, "Tracestate": true, "Baggage": true, "X-Amzn-Trace-Id": true, "B3": true,
	"Uber-Trace-Id": true, "X-Cloud-Trace-Context": true, "Sentry-Trace": true, "X-Request-Id": true,
	"X-Correlation-Id": true, "Grpc-Trace-Bin": true, "X-Ot-Span-Context": true,
}

// unsignedPrefixes are prefixes of header names never signed.
var unsignedPrefixes = []string{"X-Forwarded-", "X-B3-", "Uberctx-", "X-Datadog-", "Sec-Websocket-", "Ot-Baggage-"}

// signedHeaders are signed by default, besides Host and x-amz-*.
var signedHeaders = map[string]bool{"Content-Md5": true, "Content-Type": true}

// neverSigned reports whether k (canonical) is never signed.
func neverSigned(k string) bool {
	if unsignedHeaders[k] {
		return true
	}
	for _, p := range unsignedPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// headerPattern is a header name, or a prefix of names when it ends in
// '*', in canonical form.
type headerPattern struct {
	name   string
	prefix bool
}

func (p headerPattern) match(k string) bool {
	if p.prefix {
		return strings.HasPrefix(k, p.name)
	}
	return k == p.name
}

// headerRules is what SignHeaders, DropHeaders and SetHeaders make of
// the split.
type headerRules struct {
	allow, deny []headerPattern
	set         http.Header // canonical names
}

// newHeaderRules checks the patterns of SignHeaders and DropHeaders, and
// SetHeaders. A header that is never signed cannot be allowed: signing it
// would break the signature the first time a proxy on the way touches it.
func newHeaderRules(allow, deny []string, set http.Header) (*headerRules, error) {
	r := &headerRules{}
	var err error
	if r.set, err = setHeaders(set); err != nil {
		return nil, err
	}
	parse := func(field string, specs []string) ([]headerPattern, error) {
		var out []headerPattern
		for _, spec := range specs {
			for s := range strings.SplitSeq(spec, ",") {
				s = strings.TrimSpace(s)
				name, prefix := strings.CutSuffix(s, "*")
				if name == "" || !isHeaderToken(name) {
					return nil, invalid("%s %q: want a header name, or a prefix ending in '*' (X-Opensearch-*)", field, s)
				}
				out = append(out, headerPattern{name: canonicalPrefix(name), prefix: prefix})
			}
		}
		return out, nil
	}
	if r.allow, err = parse("Config.SignHeaders", allow); err != nil {
		return nil, err
	}
	if r.deny, err = parse("Config.DropHeaders", deny); err != nil {
		return nil, err
	}
	for _, p := range r.allow {
		switch {
		case !p.prefix && neverSigned(p.name):
			return nil, invalid("Config.SignHeaders %s: %s is never signed: proxies on the way remove or rewrite it, which would break the signature", p.name, p.name)
		case !p.prefix && strippedHeaders[p.name]:
			return nil, invalid("Config.SignHeaders %s: the proxy sets %s itself", p.name, p.name)
		}
	}
	return r, nil
}

// setHeaders checks SetHeaders and returns them under canonical names.
func setHeaders(h http.Header) (http.Header, error) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(http.Header, len(h))
	for k, vv := range h {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case !isHeaderToken(k):
			return nil, invalid("Config.SetHeaders %q: not a header name", k)
		case neverSigned(ck):
			return nil, invalid("Config.SetHeaders %s: %s is never signed: proxies on the way remove or rewrite it", ck, ck)
		case strippedHeaders[ck], ck == "Host", strings.HasPrefix(ck, "X-Amz-"):
			return nil, invalid("Config.SetHeaders %s: the signer sets %s, or the client's request does", ck, ck)
		}
		for _, v := range vv {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, invalid("Config.SetHeaders %s: a value holds a line break or NUL", ck)
			}
		}
		out[ck] = append(out[ck], vv...)
	}
	return out, nil
}

// canonicalPrefix is http.CanonicalHeaderKey for a name or a prefix of
// one ("x-opensearch-" is "X-Opensearch-").
func canonicalPrefix(s string) string {
	if strings.HasSuffix(s, "-") {
		return http.CanonicalHeaderKey(s + "x")[:len(s)]
	}
	return http.CanonicalHeaderKey(s)
}

// isHeaderToken reports whether s is an RFC 9110 token, as header names are.
func isHeaderToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

func (r *headerRules) denied(k string) bool {
	for _, p := range r.deny {
		if p.match(k) {
			return true
		}
	}
	return false
}

// signs reports whether header k (canonical, not never-signed) is signed.
func (r *headerRules) signs(k string) bool {
	if signedHeaders[k] || strings.HasPrefix(k, "X-Amz-") {
		return true
	}
	for _, p := range r.allow {
		if p.match(k) {
			return true
		}
	}
	return false
}

// split sorts the headers of a request about to be signed into those to
// sign and those to add after signing, dropping the client's signing
// headers and the denied ones. The values are shared with h, which
// neither result is allowed to change.
func (r *headerRules) split(h http.Header) (signed, unsigned http.Header) {
	signed, unsigned = make(http.Header, len(h)), make(http.Header, len(h))
	for k, vv := range h {
		ck := http.CanonicalHeaderKey(k) // no allocation when it is already
		switch {
		case strippedHeaders[ck], r.denied(ck), r.set[ck] != nil:
		case neverSigned(ck):
			unsigned[k] = vv
		case r.signs(ck):
			signed[k] = vv
		default:
			unsigned[k] = vv
		}
	}
	for k, vv := range r.set {
		signed[k] = vv
	}
	return signed, unsigned
}

// String lists the rules, for the start-up log.
func (r *headerRules) String() string {
	names := func(ps []headerPattern) string {
		var s []string
		for _, p := range ps {
			if p.prefix {
				s = append(s, p.name+"*")
			} else {
				s = append(s, p.name)
			}
		}
		return strings.Join(s, ",")
	}
	s := fmt.Sprintf("signed: Host,Content-Md5,Content-Type,X-Amz-*%s; dropped: %s", prefixComma(names(r.allow)), names(r.deny))
	if len(r.set) > 0 {
		set := slices.Sorted(maps.Keys(r.set))
		s += "; set: " + strings.Join(set, ",")
	}
	return s
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return "," + s
}
