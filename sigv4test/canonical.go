package sigv4test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CanonicalRequest builds the canonical request for r under rule, for a header-signed request (signedHeaders lists lowercase names) or a presigned one (query without X-Amz-Signature). Exported so vectors_test and users can compare.
//
// r is read as [Verifier.Verify] reads it: the wire path and query from
// r.RequestURI, or from r.URL when RequestURI is empty; the host from r.Host,
// or r.URL.Host; the "content-length" header from the Content-Length header,
// or r.ContentLength. signedHeaders are lowercased, sorted and deduplicated.
// Query parameters named in excludeQuery (exact, decoded names) are left out
// of the canonical query string, as X-Amz-Signature is when presigned is
// true. The error reports a malformed percent-encoding in the query (or, with
// rule.SingleEncode, in the path).
func CanonicalRequest(r *http.Request, rule Rule, signedHeaders []string, payloadHash string, presigned bool, excludeQuery ...string) (string, error) {
	return buildCanonical(r, rule, signedHeaders, payloadHash, presigned, false, excludeQuery)
}

// buildCanonical builds the canonical request; with redact, the session
// token, any signature and any signed Authorization header are replaced by
// "REDACTED" so the result can be shown.
func buildCanonical(r *http.Request, rule Rule, signedHeaders []string, payloadHash string, presigned, redact bool, excludeQuery []string) (string, error) {
	uri, err := canonicalURI(wirePath(r), rule)
	if err != nil {
		return "", err
	}
	exclude := slices.Clone(excludeQuery)
	if presigned {
		exclude = append(exclude, querySig)
	}
	var redactKeys []string
	if redact {
		redactKeys = []string{queryToken, querySig}
	}
	query, err := canonicalQuery(wireQuery(r), exclude, redactKeys)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(signedHeaders))
	for _, h := range signedHeaders {
		names = append(names, strings.ToLower(strings.TrimSpace(h)))
	}
	slices.Sort(names)
	names = slices.Compact(names)

	var b strings.Builder
	b.WriteString(requestMethod(r))
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		if redact && (n == headerToken || n == "authorization") {
			b.WriteString(redacted)
		} else {
			b.WriteString(canonicalHeaderValue(r, n))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// StringToSign returns the SigV4 string to sign: the algorithm, the request
// date (basic format, as in X-Amz-Date), the credential scope
// (date/region/service/aws4_request) and the hex SHA-256 of the canonical
// request, one per line.
func StringToSign(amzDate, scope, canonicalRequest string) string {
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(canonicalRequest))
}

// Signature returns the hex HMAC-SHA256 of stringToSign under the SigV4
// signing key derived from secret for date (YYYYMMDD), region and service.
func Signature(secret, date, region, service, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(signingKey(secret, date, region, service), stringToSign))
}

// signingKey derives the SigV4 signing key of secret for date, region and
// service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// --- canonical URI and query ---

// canonicalURI builds the canonical URI from the wire path under rule.
func canonicalURI(wire string, rule Rule) (string, error) {
	p := wire
	if rule.SingleEncode {
		d, err := url.PathUnescape(p)
		if err != nil {
			return "", fmt.Errorf("malformed path %q: %w", wire, err)
		}
		p = d
	}
	if !rule.NoNormalize {
		p = normalizePath(p)
	}
	if p == "" {
		return "/", nil
	}
	return uriEncode(p, false), nil
}

// ambiguousPath reports whether normalising p depends on whose rule is
// applied: it ends in a "." or ".." segment that does not climb to the
// root, so that RFC 3986 reads "/a/." as "/a/" and botocore as "/a".
func ambiguousPath(p string) bool {
	i := strings.LastIndexByte(p, '/')
	last := p[i+1:]
	if (last == "." || last == "..") && normalizePath(p) != "/" {
		return true
	}
	// A segment that decodes to a dot segment ("%2E%2E") is one to RFC
	// 3986 and a name to botocore, wherever it stands.
	for seg := range strings.SplitSeq(p, "/") {
		if strings.Contains(seg, "%") {
			if d, err := url.PathUnescape(seg); err == nil && (d == "." || d == "..") {
				return true
			}
		}
	}
	return false
}

// normalizePath removes "." and ".." segments and empty segments (so "//"
// collapses), keeping a trailing slash; the result starts with "/".
func normalizePath(p string) string {
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	res := "/" + strings.Join(out, "/")
	if res != "/" && strings.HasSuffix(p, "/") {
		res += "/"
	}
	return res
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// uriEncode percent-encodes every byte of s except the RFC 3986 unreserved
// characters and, unless encodeSlash, '/'; hex digits are uppercase.
func uriEncode(s string, encodeSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// pair is one decoded query parameter.
type pair struct{ key, value string }

// parseQuery splits a raw query the way AWS does: on '&' then on the first
// '=', percent-decoding both halves with '+' as space; a key without '='
// has an empty value; empty pieces are skipped; order and repeats are kept.
// A piece with a malformed percent-encoding is left out and reported in the
// error, which comes with the pieces that did parse.
func parseQuery(raw string) ([]pair, error) {
	var out []pair
	var firstErr error
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("malformed query parameter name %q: %w", k, err)
			}
			continue
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("malformed value of query parameter %q: %w", dk, err)
			}
			continue
		}
		out = append(out, pair{dk, dv})
	}
	return out, firstErr
}

func queryValues(q []pair, key string) ([]string, bool) {
	var vs []string
	for _, p := range q {
		if p.key == key {
			vs = append(vs, p.value)
		}
	}
	return vs, len(vs) > 0
}

// canonicalQuery builds the canonical query string from a raw query:
// parameters named in exclude dropped, keys and values URI-encoded, sorted
// by key then value, repeats kept. Values of parameters named in redact are
// replaced by "REDACTED".
func canonicalQuery(raw string, exclude, redact []string) (string, error) {
	q, err := parseQuery(raw)
	if err != nil {
		return "", err
	}
	enc := make([]pair, 0, len(q))
	for _, p := range q {
		if slices.Contains(exclude, p.key) {
			continue
		}
		v := p.value
		if slices.Contains(redact, p.key) {
			v = redacted
		}
		enc = append(enc, pair{uriEncode(p.key, true), uriEncode(v, true)})
	}
	slices.SortFunc(enc, func(a, b pair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String(), nil
}

// redactQuery replaces the values of X-Amz-Signature and
// X-Amz-Security-Token (any case) in a raw query by "REDACTED".
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	pieces := strings.Split(raw, "&")
	for i, piece := range pieces {
		k, _, hasEq := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		if strings.EqualFold(dk, querySig) || strings.EqualFold(dk, queryToken) {
			if hasEq {
				pieces[i] = k + "=" + redacted
			}
		}
	}
	return strings.Join(pieces, "&")
}
