package kivuli

import (
	"net/http"
	"strings"
)

// An http.Client follows a redirect by building a new request from the
// answer's Location and sending it through the same Transport, which would
// sign it for whatever host the Location names. An API Gateway API or a
// Lambda function URL, customers' code that the host rules allow on
// purpose, could then answer "302 Location: https://iam.amazonaws.com/..."
// and have the client sign an IAM call with the role. So a redirected
// request (Request.Response set, as only http.Client sets it) is signed
// only for the host the redirecting request was signed for, and dialled at
// the host that one was dialled at. The one exception is what AWS itself
// needs: S3's region redirects of one bucket, which the SDKs follow.

// maxRedirects is how many redirects [CheckRedirect] follows, as an
// http.Client without CheckRedirect does.
const maxRedirects = 10

// CheckRedirect is an [http.Client] CheckRedirect function with the
// redirect rule of [Transport]: a redirect is followed only to the host
// (and port) the redirecting request was signed for and sent to, or, for
// S3, to another regional endpoint of the same bucket ("301" or "307" from
// b.s3.amazonaws.com to b.s3.eu-west-2.amazonaws.com). Another redirect
// fails with an [ErrHostNotAllowed] error, and at most 10 are followed.
//
// A Transport applies the same rule to every redirected request it is
// given, whatever the client's CheckRedirect; with this one the client
// returns the error itself, with the redirecting answer, before building
// the next request. [NewRetryingClient] sets it.
//
//	client := &http.Client{Transport: t, CheckRedirect: kivuli.CheckRedirect}
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return invalid(ErrHostNotAllowed, "stopped after %d redirects", maxRedirects)
	}
	if len(via) == 0 {
		return nil
	}
	return checkRedirect(via[len(via)-1], req)
}

// checkRedirect returns nil if next, a request built from prev's answer,
// may be signed: for the host that prev was signed for and sent to, or as
// an S3 region redirect of prev's bucket.
func checkRedirect(prev, next *http.Request) error {
	if prev == nil || prev.URL == nil || next.URL == nil {
		return invalid(ErrHostNotAllowed, "a redirected request whose redirecting request is unknown is not signed")
	}
	from, to := signedHost(prev), signedHost(next)
	if sameHost(from, to, prev.URL.Scheme, next.URL.Scheme) &&
		sameHost(prev.URL.Host, next.URL.Host, prev.URL.Scheme, next.URL.Scheme) {
		return nil
	}
	if s3RegionRedirect(prev, next) {
		return nil
	}
	return invalid(ErrHostNotAllowed, "a redirect from %q to %q: a redirected request is signed only for the host the redirecting one was signed for and sent to (or, for S3, another region's endpoint of the same bucket); nothing was sent", from, to)
}

// signedHost is the host r is signed for: Request.Host when set, else
// URL.Host.
func signedHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// sameHost reports whether a and b, hosts of URLs of schemes sa and sb, are
// one host and port: names compared on their ASCII form without case,
// ports with the scheme's default filled in ("sts.amazonaws.com" and
// "STS.amazonaws.com:443" over https).
func sameHost(a, b, sa, sb string) bool {
	ha, err1 := parseHost(a)
	hb, err2 := parseHost(b)
	if err1 != nil || err2 != nil || ha.name != hb.name {
		return false
	}
	if ha.ip && !sameAddr(ha.name, hb.name) {
		return false
	}
	return effectivePort(ha.port, sa) == effectivePort(hb.port, sb)
}

// effectivePort is port, or the default port of scheme when empty.
func effectivePort(port, scheme string) string {
	if port != "" {
		return port
	}
	switch asciiLower(scheme) {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// s3RegionRedirect reports whether next is S3's region redirect of prev:
// a 301 or 307 answer from an S3 endpoint of a bucket, virtual-hosted
// (b.s3.amazonaws.com) or path-style (s3.amazonaws.com/b/), pointing at
// another regional endpoint of the same partition for the same bucket,
// over https, dialled at the host it is signed for (no tunnel on either
// side).
func s3RegionRedirect(prev, next *http.Request) bool {
	resp := next.Response
	if resp == nil || resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusTemporaryRedirect {
		return false
	}
	if asciiLower(next.URL.Scheme) != "https" || asciiLower(prev.URL.Scheme) != "https" ||
		!untunnelled(prev) || !untunnelled(next) {
		return false
	}
	b1, d1, ok1 := s3Bucket(prev.URL.Host, prev.URL.EscapedPath())
	b2, d2, ok2 := s3Bucket(next.URL.Host, next.URL.EscapedPath())
	return ok1 && ok2 && b1 == b2 && d1 == d2
}

// untunnelled reports whether r is signed for the host it is dialled at.
func untunnelled(r *http.Request) bool {
	return r.Host == "" || strings.EqualFold(r.Host, r.URL.Host)
}

// s3Bucket returns the bucket that an S3 endpoint's URL names, and the
// endpoint's AWS domain, for S3's plain bucket endpoints only: virtual-
// hosted (bucket.s3[.dualstack][.REGION], bucket.s3-REGION,
// bucket.s3-external-1) or path-style (s3[...].DOMAIN/bucket/...). Access
// points, Object Lambda, Outposts, Transfer Acceleration and FIPS
// endpoints are not region redirects' forms.
func s3Bucket(host, escapedPath string) (bucket, domain string, ok bool) {
	hn, err := parseHost(host)
	if err != nil || hn.ip || hn.port != "" {
		return "", "", false
	}
	h, ok := splitAWSHost(hn.name)
	if !ok || h.domain == "on.aws" {
		return "", "", false
	}
	rest, last := cutLast(h.prefix)
	if regionIn(h.parts, last) {
		rest, last = cutLast(rest)
	}
	if last == "dualstack" {
		rest, last = cutLast(rest)
	}
	if r, dash := strings.CutPrefix(last, "s3-"); dash && (r == "external-1" || regionIn(h.parts, r)) {
		last = "s3"
	}
	if last != "s3" {
		return "", "", false
	}
	if rest == "" { // path-style: the bucket is the first segment
		seg, _, _ := strings.Cut(strings.TrimPrefix(escapedPath, "/"), "/")
		if seg == "" || !strings.HasPrefix(escapedPath, "/") {
			return "", "", false
		}
		rest = seg
	}
	return rest, h.domain, true
}
