package kivuli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/aws-http-auth/sigv4a"
	v4auth "github.com/aws/smithy-go/aws-http-auth/v4"
)

// SigV4a (AWS4-ECDSA-P256-SHA256) signs like SigV4, with two differences:
// the credential scope names no region, the request carrying a signed
// X-Amz-Region-Set instead ("*" for S3 Multi-Region Access Points), and
// the string to sign is signed with an ECDSA P-256 key derived from the
// secret. smithy-go's sigv4a signer does the signing; it does not
// canonicalise as aws-c-auth and the SDKs do (it only trims header values,
// never removes dot segments, signs only host and x-amz-* headers, and
// always signs the session token), so it is given a request of kivuli's
// making, already canonical: the path as the canonical request has it,
// the headers that SigV4 would sign, their values trimmed and their inner
// runs of spaces collapsed, and credentials without the token, which
// kivuli places itself as for SigV4. What it adds (Authorization,
// X-Amz-Date, X-Amz-Region-Set, or the query of a presignature) is then
// copied onto the request sent.

const (
	algorithmV4A    = "AWS4-ECDSA-P256-SHA256"
	headerRegionSet = "X-Amz-Region-Set"
	queryRegionSet  = "X-Amz-Region-Set"
)

// ecdsaKeys holds a Transport's smithy signer, and so the ECDSA key it
// derives (a KDF over the secret and a P-256 scalar multiplication,
// several times a SigV4 signature): one per credential set, secret
// included (smithy's own cache is keyed by the access key ID alone), and
// only the newest set's, so that a set's key is dropped once its
// credentials have rotated. A request that still holds the set before
// (it fetched its credentials just before they rotated) signs with a key
// derived for it alone.
type ecdsaKeys struct{ cur atomic.Pointer[ecdsaSigner] }

type ecdsaSigner struct {
	key     signerKey
	expires time.Time // zero: credentials that do not expire
	s       *sigv4a.Signer
}

// signer returns the smithy signer of creds; c may be nil (a signer for
// one request).
func (c *ecdsaKeys) signer(creds aws.Credentials) *sigv4a.Signer {
	k := signerKey{creds.AccessKeyID, creds.SecretAccessKey}
	if c == nil {
		return sigv4a.New()
	}
	if e := c.cur.Load(); e != nil && e.key == k {
		return e.s
	}
	e := &ecdsaSigner{key: k, s: sigv4a.New()}
	if creds.CanExpire {
		e.expires = creds.Expires
	}
	for {
		old := c.cur.Load()
		if old != nil && old.key == k {
			return old.s
		}
		if old != nil && older(e.expires, old.expires) {
			return e.s // not kept: a newer set is in use
		}
		if c.cur.CompareAndSwap(old, e) {
			return e.s
		}
	}
}

// older reports whether credentials expiring at a are older than ones
// expiring at b; credentials that do not expire (zero) are never older.
func older(a, b time.Time) bool {
	return !a.IsZero() && !b.IsZero() && a.Before(b)
}

// v4aOptions are smithy's signer options: every header of the request it
// is given is signed (kivuli chose them), and the path is taken as the
// canonical request's (kivuli escaped it).
func v4aOptions(o *v4auth.SignerOptions) {
	o.HeaderRules = signEvery{}
	o.DisableDoublePathEscape = true
}

var v4aOptionList = []v4auth.SignerOption{v4aOptions}

type signEvery struct{}

func (signEvery) IsSigned(string) bool { return true }

// v4aRequest is what one SigV4a signature hands smithy's signer,
// allocated together: the request kivuli canonicalised, and the input.
type v4aRequest struct {
	req       http.Request
	url       url.URL
	in        sigv4a.SignRequestInput
	hash      [sha256.Size]byte
	regionSet [1]string
	shared    bool // req.Header is the signed request's own
}

// signV4A signs r, prepared by sign as for SigV4 (path, token, payload
// hash header, X-Amz-Expires), with SigV4a for the region set s.region.
func (s *signing) signV4A(ctx context.Context, r *http.Request) error {
	v := &v4aRequest{}
	if err := v.setPayloadHash(s.payloadHash); err != nil {
		return err
	}
	sanitizeHost(r)
	sr := v.canonical(r, s.policy.EscapePathOnce, !s.presign)
	v.regionSet[0] = s.region
	v.in.Request, v.in.Service, v.in.RegionSet, v.in.Time = sr, s.service, v.regionSet[:], s.time
	v.in.Credentials.AccessKeyID, v.in.Credentials.SecretAccessKey = s.creds.AccessKeyID, s.creds.SecretAccessKey
	if s.presign {
		v.in.SignatureType = v4auth.SignatureTypeQueryString
	}
	err := s.keys.signer(s.creds).SignRequest(&v.in, v4aOptionList...)
	if s.logger != nil && s.logger.Enabled(ctx, slog.LevelDebug) && err == nil {
		canon, sts := s.v4aCanonical(sr)
		defer s.logSigned(ctx, r, canon, sts)
	}
	v.unshare(r)
	if err != nil {
		return wrap("signing with SigV4a", err)
	}
	query := r.URL.RawQuery
	if s.presign {
		r.URL.RawQuery = sr.URL.RawQuery
	} else {
		for _, k := range [...]string{headerAuthorization, headerDate, headerRegionSet} {
			r.Header[k] = sr.Header[k]
		}
		if !wireSafe(query) {
			r.URL.RawQuery = v4aQuery(sr.URL.Query(), false)
		}
	}
	return nil
}

// setPayloadHash sets the payload hash as smithy takes it: the hash's
// bytes, or the UNSIGNED-PAYLOAD sentinel. smithy hex-encodes anything
// else, so the aws-chunked forms (STREAMING-...) cannot be signed.
func (v *v4aRequest) setPayloadHash(h string) error {
	if h == unsignedPayload {
		v.in.PayloadHash = []byte(unsignedPayload)
		return nil
	}
	if n, err := hex.Decode(v.hash[:], []byte(h)); err != nil || n != sha256.Size || len(h) != 2*sha256.Size {
		return invalid(ErrInvalidRequest, "the payload hash %q cannot be signed with SigV4a: an aws-chunked body (STREAMING-...) is signed with SigV4 only; send the body whole", h)
	}
	v.in.PayloadHash = v.hash[:]
	return nil
}

// sanitizeHost drops the default port from the host signed, as the SDK's
// SigV4 signer does (and so the host sent, which it is).
func sanitizeHost(r *http.Request) {
	host := signedHost(r)
	if strings.IndexByte(host, ':') < 0 {
		return
	}
	h, err := parseHost(host)
	if err != nil || h.port == "" || effectivePort("", r.URL.Scheme) != h.port {
		return
	}
	r.Host = host[:len(host)-len(h.port)-1]
}

// canonical returns the request that smithy signs for r: its method,
// host and query, its path as the canonical request has it (escaped once
// more unless escapeOnce), and the headers that SigV4 signs (all but those
// the SDK's signer ignores, and Content-Length from ContentLength), their
// values normalised as the canonical request has them. When r's headers
// are all signed and canonical already (the common case), and the
// signature goes in them (share), they are r's own map, which smithy then
// signs into; unshare removes what it added there besides the signature.
func (v *v4aRequest) canonical(r *http.Request, escapeOnce, share bool) *http.Request {
	path := uriPath(r.URL)
	if !escapeOnce {
		path = escapePath(path)
	}
	dec, _ := url.PathUnescape(path) // made of unreserved bytes, '/' and escapes
	h := r.Header
	v.shared = share && signedAsTheyAre(h)
	if !v.shared {
		h = make(http.Header, len(r.Header)+4)
		for k, vs := range r.Header {
			if ignoredV4A(k) {
				continue
			}
			ck := http.CanonicalHeaderKey(k) // smithy lowers it; one key per name
			for _, val := range vs {
				h[ck] = append(h[ck], strings.TrimSpace(stripExcessSpaces(val)))
			}
		}
	}
	if r.ContentLength > 0 {
		h["Content-Length"] = []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	v.url.Scheme, v.url.Host, v.url.Path, v.url.RawPath, v.url.RawQuery = r.URL.Scheme, r.URL.Host, dec, path, r.URL.RawQuery
	v.req.Method, v.req.Host, v.req.URL, v.req.Header = r.Method, stripExcessSpaces(signedHost(r)), &v.url, h
	return &v.req
}

// unshare removes from r's headers, when smithy signed into them, the
// Host and Content-Length it was given to sign, which net/http sends from
// Request.Host and ContentLength.
func (v *v4aRequest) unshare(r *http.Request) {
	if v.shared {
		delete(r.Header, "Host")
		delete(r.Header, "Content-Length")
	}
}

// signedAsTheyAre reports whether every header of h is one SigV4 signs,
// under its canonical name, with values as the canonical request has them.
func signedAsTheyAre(h http.Header) bool {
	for k, vs := range h {
		if ignoredV4A(k) || http.CanonicalHeaderKey(k) != k || !canonicalValues(vs) {
			return false
		}
	}
	return true
}

// canonicalValues reports whether header values are as the canonical
// request has them: no white space around, no run of spaces within.
func canonicalValues(vs []string) bool {
	for _, val := range vs {
		if val != "" && (val[0] <= ' ' || val[len(val)-1] <= ' ' || val[0] >= 0x80 || val[len(val)-1] >= 0x80) || strings.Contains(val, "  ") {
			return false
		}
	}
	return true
}

// ignoredV4A reports whether k is a header that SigV4 does not sign: those
// the SDK's signer ignores, Host (net/http sends Request.Host, signed as
// host) and Content-Length (signed from ContentLength).
func ignoredV4A(k string) bool {
	for _, h := range [...]string{"Authorization", "User-Agent", "X-Amzn-Trace-Id", "Expect", "Transfer-Encoding", "Host", "Content-Length"} {
		if len(k) == len(h) && strings.EqualFold(k, h) {
			return true
		}
	}
	return false
}

// stripExcessSpaces trims the spaces around s and collapses its inner
// runs of spaces into one, as the canonical request's header values are.
func stripExcessSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// plainPath reports whether p holds only unreserved bytes and '/', which
// no escaping changes.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '/' && !unreserved(c) {
			return false
		}
	}
	return true
}

// escapePath escapes every byte of an escaped path but the unreserved
// ones and '/': the canonical URI of the services that escape it twice.
func escapePath(p string) string {
	if plainPath(p) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '/' || unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
		}
	}
	return b.String()
}

// v4aQuery is the canonical query of q, as smithy makes it: keys and
// values escaped, then sorted by key and value; without X-Amz-Signature
// when presigned.
func v4aQuery(q url.Values, presigned bool) string {
	type kv struct{ k, v string }
	var kvs []kv
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			kvs = append(kvs, kv{queryEscape(k), queryEscape(v)})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range kvs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

// v4aCanonical rebuilds, for the debug log, the canonical request and
// string to sign of sr as smithy signed it: from the parts kivuli gave
// it, and the headers and parameters it added.
func (s *signing) v4aCanonical(sr *http.Request) (canon, sts string) {
	q := sr.URL.Query()
	var signed string
	if s.presign {
		signed = q.Get("X-Amz-SignedHeaders")
	} else if _, rest, ok := strings.Cut(sr.Header.Get(headerAuthorization), "SignedHeaders="); ok {
		signed, _, _ = strings.Cut(rest, ",")
	}
	values := make(map[string][]string, len(sr.Header))
	for k, vs := range sr.Header {
		values[strings.ToLower(k)] = append(values[strings.ToLower(k)], vs...)
	}
	var b strings.Builder
	b.WriteString(sr.Method + "\n" + sr.URL.RawPath + "\n" + v4aQuery(q, s.presign) + "\n")
	for name := range strings.SplitSeq(signed, ";") {
		vs := values[name]
		for i := range vs {
			vs[i] = strings.TrimSpace(vs[i])
		}
		b.WriteString(name + ":" + strings.Join(vs, ",") + "\n")
	}
	b.WriteString("\n" + signed + "\n" + s.payloadHash)
	canon = b.String()
	date := s.time.UTC().Format("20060102T150405Z")
	sum := sha256.Sum256([]byte(canon))
	sts = algorithmV4A + "\n" + date + "\n" + date[:8] + "/" + s.service + "/aws4_request\n" + hex.EncodeToString(sum[:])
	return canon, sts
}
