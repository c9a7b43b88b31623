package kivuli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

const (
	// emptyPayloadHash is the hex SHA-256 of an empty body.
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// unsignedPayload stands for the body hash where a service accepts an
	// unsigned body.
	unsignedPayload = "UNSIGNED-PAYLOAD"

	headerAuthorization = "Authorization"
	headerDate          = "X-Amz-Date"
	headerToken         = "X-Amz-Security-Token"
	headerContentSHA256 = "X-Amz-Content-Sha256"
	queryToken          = "X-Amz-Security-Token"
)

// A v4.Signer caches the signing keys it derives, one per region and
// service, and takes a cached key whenever the access key ID and the day
// match, without looking at the secret. One signer shared by credentials
// with different secrets would sign with another's key: with a known
// access key ID (they are not secret) and any secret, a request would be
// signed with the key of whoever signed last. So each secret has a signer
// of its own, kept while it is in use.
type signerKey struct{ accessKeyID, secret string }

var signers struct {
	mu sync.RWMutex
	m  map[signerKey]*keyedSigner
	// last is the signer found last: a process signs with one set of
	// credentials at a time, and finding it there costs an atomic load
	// and a comparison of the key, where the map costs the read lock (two
	// atomic writes on a cache line that every core signing shares) and
	// hashing the secret.
	last atomic.Pointer[keyedSigner]
}

type keyedSigner struct {
	key signerKey
	s   *v4.Signer
	// cleanToken is the last session token signed with this key that
	// tokenHasCTL passed: one per key, so that a process signing for
	// several roles in turn (the proxy's routes) keeps each one's.
	cleanToken atomic.Pointer[string]
}

// maxSigners bounds the signers kept: a program signs with a few sets of
// credentials at a time (rotation keeps two alive for a while; a
// multi-tenant one, one per tenant).
const maxSigners = 64

// signerFor returns the signer of creds' secret.
func signerFor(creds aws.Credentials) *keyedSigner {
	k := signerKey{creds.AccessKeyID, creds.SecretAccessKey}
	if e := signers.last.Load(); e != nil && e.key == k {
		return e
	}
	signers.mu.RLock()
	e := signers.m[k]
	signers.mu.RUnlock()
	if e == nil {
		e = newSigner(k)
	}
	signers.last.Store(e)
	return e
}

// newSigner returns the signer of k, made if there is none.
func newSigner(k signerKey) *keyedSigner {
	signers.mu.Lock()
	defer signers.mu.Unlock()
	if e := signers.m[k]; e != nil {
		return e
	}
	if signers.m == nil || len(signers.m) >= maxSigners {
		signers.m = make(map[signerKey]*keyedSigner) // the ones in use come back at once
	}
	e := &keyedSigner{key: k, s: v4.NewSigner()}
	signers.m[k] = e
	return e
}

// The token is always placed by this package, never by the SDK signer.
// These are plain functions so that passing them allocates nothing.
func signerOptions(o *v4.SignerOptions) { o.DisableSessionToken = true }
func signerOptionsOnce(o *v4.SignerOptions) {
	o.DisableSessionToken = true
	o.DisableURIPathEscaping = true
}

// The option lists passed to the SDK signer: shared, so that a request
// does not allocate one.
var (
	signerOptionList     = []func(*v4.SignerOptions){signerOptions}
	signerOptionOnceList = []func(*v4.SignerOptions){signerOptionsOnce}
)

// signing is what one signature needs besides the request.
type signing struct {
	creds       aws.Credentials
	service     string
	region      string
	policy      Policy
	payloadHash string
	time        time.Time
	presign     bool
	expires     int64         // X-Amz-Expires of a presigned request, in seconds
	logger      *slog.Logger  // nil: no debug log
	values      *headerValues // nil: header values are allocated
	// sigv4a signs with SigV4a (sigv4a.go), for the region set region,
	// with keys' ECDSA key (nil: one derived for this request).
	sigv4a bool
	keys   *ecdsaKeys
}

// headerValues holds the values of the headers that this package sets
// itself (the token and the payload hash), in the object of the request's
// clone, so that setting them allocates nothing.
type headerValues [2]string

// The slots of headerValues.
const (
	tokenValue = iota
	payloadHashValue
)

// headerValue returns v as the values of a header, in slot i of s.values
// when there is one. The slice's capacity is 1, so that a later Add
// copies it instead of writing over the next slot.
func (s *signing) headerValue(i int, v string) []string {
	if s.values == nil {
		return []string{v}
	}
	s.values[i] = v
	return s.values[i : i+1 : i+1]
}

// sign signs r in place per s: it removes stale signing headers and query
// parameters, checks that r can be sent as signed, sets the path it is sent
// and signed with, places the token and the payload hash header as the
// policy says, and adds the Authorization header, or for presigning the
// signature query parameters.
func sign(ctx context.Context, r *http.Request, s *signing) error {
	stripSigning(r)
	ks := signerFor(s.creds)
	if err := checkHeaders(r.Method, r.Header, &ks.cleanToken, s.creds.SessionToken); err != nil {
		return err
	}
	// AWS does not separate parameters at ';' (S3's documented
	// response-content-disposition=attachment;filename=r.pdf), but
	// net/url's Query, which the SDK signer reads, drops a parameter
	// holding one: send and sign it as %3B, as botocore does.
	if strings.IndexByte(r.URL.RawQuery, ';') >= 0 {
		r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, ";", "%3B")
	}
	if !validQuery(r.URL.RawQuery) {
		return invalidRequest("the query is not valid percent-encoding, so it cannot be signed as the service will read it", nil)
	}
	if err := setSigningPath(r.URL, s.policy); err != nil {
		return err
	}

	place := s.tokenPlacement()
	s.placeToken(r, place, true)
	if !s.presign && (s.policy.Payload != PayloadHash || s.payloadHash == unsignedPayload || strings.HasPrefix(s.payloadHash, "STREAMING-")) {
		r.Header[headerContentSHA256] = s.headerValue(payloadHashValue, s.payloadHash)
	}
	if s.presign {
		r.URL.RawQuery = appendQuery(r.URL.RawQuery, "X-Amz-Expires", strconv.FormatInt(s.expires, 10))
	}
	if s.sigv4a {
		if err := s.signV4A(ctx, r); err != nil {
			return err
		}
		s.placeToken(r, place, false)
		return nil
	}
	capture, optFns := s.signerOptions(ctx)
	if err := s.sdkSign(ctx, r, ks.s, optFns); err != nil {
		return err
	}
	s.placeToken(r, place, false)
	if capture != nil {
		capture.log(ctx, s, r)
	}
	return nil
}

// stripSigning removes what an earlier signature left, or what the caller
// set by hand where signing puts its own: the signing headers, in any case,
// and the parameters of a presignature.
func stripSigning(r *http.Request) {
	for k := range r.Header {
		if isSigningHeader(k) {
			delete(r.Header, k)
		}
	}
	if strings.Contains(r.URL.RawQuery, "X-Amz-") {
		r.URL.RawQuery = stripAuthQuery(r.URL.RawQuery)
	}
}

// setSigningPath sets the path that is sent, and signed, as the policy
// says: S3's strictly escaped once, every other service's with its dot
// segments removed.
func setSigningPath(u *url.URL, pol Policy) error {
	if pol.EscapePathOnce {
		if err := s3CanonicalisePath(u); err != nil {
			return err
		}
	}
	if !pol.KeepDotSegments {
		return sendNormalizedPath(u)
	}
	return nil
}

// tokenPlacement is where the token goes: the policy's placement, in the
// query when presigning, as a URL carries no headers.
func (s *signing) tokenPlacement() TokenPlacement {
	switch p := s.policy.Token; {
	case !s.presign:
		return p
	case p == TokenHeader:
		return TokenQuery
	case p == TokenHeaderUnsigned:
		return TokenQueryUnsigned
	default:
		return p
	}
}

// placeToken puts the session token where place says: a signed placement
// before signing (beforeSigning true), an unsigned one after.
func (s *signing) placeToken(r *http.Request, place TokenPlacement, beforeSigning bool) {
	token := s.creds.SessionToken
	signed := place == TokenHeader || place == TokenQuery
	if token == "" || signed != beforeSigning {
		return
	}
	switch place {
	case TokenHeader, TokenHeaderUnsigned:
		r.Header[headerToken] = s.headerValue(tokenValue, token)
	case TokenQuery, TokenQueryUnsigned:
		r.URL.RawQuery = appendQuery(r.URL.RawQuery, queryToken, token)
	}
}

// signerOptions returns the SDK signer's options for s, and the logger that
// captures the canonical request when the debug log is on.
func (s *signing) signerOptions(ctx context.Context) (*captureLogger, []func(*v4.SignerOptions)) {
	optFns := signerOptionList
	if s.policy.EscapePathOnce {
		optFns = signerOptionOnceList
	}
	if s.logger == nil || !s.logger.Enabled(ctx, slog.LevelDebug) {
		return nil, optFns
	}
	capture := &captureLogger{}
	return capture, append(optFns[:1:1], func(o *v4.SignerOptions) { o.LogSigning, o.Logger = true, capture })
}

// sdkSign signs r with signer, the SDK signer of s.creds: in the
// Authorization header, or in the query when presigning.
func (s *signing) sdkSign(ctx context.Context, r *http.Request, signer *v4.Signer, optFns []func(*v4.SignerOptions)) error {
	if s.presign {
		signed, _, err := signer.PresignHTTP(ctx, s.creds, r, s.payloadHash, s.service, s.region, s.time, optFns...)
		if err != nil {
			return wrap("presigning", err)
		}
		_, r.URL.RawQuery, _ = strings.Cut(signed, "?")
		return nil
	}
	// The SDK signer replaces RawQuery by its canonical form (sorted,
	// re-encoded). Send the query as given instead: validQuery made sure
	// that the service reads it as the signer did, and a server behind the
	// signature may read the order of repeated keys. A query holding bytes
	// that cannot go on the wire as they are (controls, spaces, non-ASCII)
	// goes in the signer's encoding.
	query := r.URL.RawQuery
	if err := signer.SignHTTP(ctx, s.creds, r, s.payloadHash, s.service, s.region, s.time, optFns...); err != nil {
		return wrap("signing", err)
	}
	if wireSafe(query) {
		r.URL.RawQuery = query
	}
	return nil
}

// isSigningHeader reports whether k names a header that signing sets, in
// any case: a stale one, or one set by hand in the header map, must not be
// sent beside the new one.
func isSigningHeader(k string) bool {
	switch len(k) {
	case len(headerAuthorization):
		return strings.EqualFold(k, headerAuthorization)
	case len(headerDate):
		return strings.EqualFold(k, headerDate)
	case len(headerToken): // = len(headerContentSHA256)
		return strings.EqualFold(k, headerToken) || strings.EqualFold(k, headerContentSHA256)
	case len(headerRegionSet):
		return strings.EqualFold(k, headerRegionSet)
	}
	return false
}

// uriPath returns the escaped path the SDK signer signs and net/http sends:
// from URL.Opaque when set, else URL.EscapedPath.
func uriPath(u *url.URL) string {
	p := u.EscapedPath()
	if u.Opaque != "" {
		p, _, _ = strings.Cut(u.Opaque, "?")
		p = strings.TrimPrefix(p, "//")
		if i := strings.IndexByte(p, '/'); i >= 0 {
			p = p[i:]
		} else {
			p = ""
		}
	}
	if p == "" {
		return "/"
	}
	return p
}

// sendNormalizedPath rewrites the path of u, when it has dot segments or
// repeated slashes, to its normalised form, so that the path sent is the
// path signed. Services read "/a/." differently (RFC 3986 and smithy-rs as
// "/a/", botocore as "/a"); a path without dot segments every reading
// agrees on.
func sendNormalizedPath(u *url.URL) error {
	// The escaped path has dot segments or repeated slashes only if the
	// forms it is made from have them (escaping never makes a '/' or a
	// '.'): looking there first spares building it, which allocates for
	// a path that needs escaping ("/logs-*/_search").
	if !hasDotsOrSlashes(u.Path) && !hasDotsOrSlashes(u.RawPath) && !hasDotsOrSlashes(u.Opaque) {
		return nil
	}
	p := uriPath(u)
	if encodedDotSegment(p) {
		return invalidRequest("the path has a percent-encoded dot segment (%2E), which services read differently (as a dot segment to remove, or as a name): send it as '.' or '..', which is removed, or escape the name otherwise", nil)
	}
	n := normalizePath(p)
	if n == p {
		return nil
	}
	return setEscapedPath(u, n)
}

// encodedDotSegment reports whether the escaped path p has a segment that
// decodes to "." or "..", but not literally: RFC 3986 reads it as a dot
// segment, botocore as a name.
func encodedDotSegment(p string) bool {
	if !strings.Contains(p, "%2") {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if strings.Contains(seg, "%") {
			if d, err := url.PathUnescape(seg); err == nil && (d == "." || d == "..") {
				return true
			}
		}
	}
	return false
}

// hasDotsOrSlashes reports whether p may hold a dot segment or repeated
// slashes.
func hasDotsOrSlashes(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/.")
}

// normalizePath removes "." and ".." segments and empty segments (repeated
// slashes) from an escaped path, as AWS services other than S3 do before
// computing the signature. A trailing slash is kept.
func normalizePath(p string) string {
	if !hasDotsOrSlashes(p) {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	n := "/" + strings.Join(out, "/")
	last := segs[len(segs)-1]
	if len(out) > 0 && (last == "" || last == "." || last == "..") {
		n += "/"
	}
	return n
}

// s3CanonicalisePath rewrites the path of u to the form S3 signs: the path
// decoded, then every byte but the unreserved ones and '/' escaped (an
// escaped "%2F" becomes '/', the same key to S3). S3 signs the path
// escaped exactly once; sending that same form makes the path sent and the
// path signed agree.
func s3CanonicalisePath(u *url.URL) error {
	p := uriPath(u)
	strict := strictEscapePath(p)
	if strict == p {
		return nil
	}
	return setEscapedPath(u, strict)
}

// setEscapedPath makes p, an escaped path, the path of u, in Path and
// RawPath; never in Opaque, where a path starting with "//" would name a
// host.
func setEscapedPath(u *url.URL, p string) error {
	dec, err := url.PathUnescape(p)
	if err != nil {
		return invalidRequest("the path is not valid percent-encoding", nil)
	}
	u.Path, u.RawPath, u.Opaque = dec, p, ""
	if u.EscapedPath() != p {
		return invalidRequest("the path holds bytes that cannot be sent as they are", nil)
	}
	return nil
}

// strictEscapePath is the canonical URI of an escaped path escaped once:
// decoded, then every byte but the unreserved ones and '/' escaped.
func strictEscapePath(p string) string {
	if plainPath(p) {
		return p
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		dec = p
	}
	return escapePath(dec)
}

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// checkHeaders refuses what net/http would refuse to send, before it is
// signed and logged: a method that is not a token, a header name that is
// not one, a value or a session token holding a control character (a line
// break in the debug log's canonical request would move the token out of
// the line where it is redacted). It also refuses a signed header whose
// value begins or ends with white space beyond ASCII (U+0085, U+00A0,
// ...): the SDK signer trims it with strings.TrimSpace, while servers trim
// only spaces and tabs, so the signature could never match. No error
// quotes a value.
func checkHeaders(method string, h http.Header, cleanToken *atomic.Pointer[string], token string) error {
	if method != "" && !isToken(method) {
		return invalidRequest("the method is not an HTTP token", nil)
	}
	if tokenHasCTL(cleanToken, token) {
		return invalidRequest("the session token holds a control character", nil)
	}
	for k, vs := range h {
		if !isToken(k) {
			return invalid(ErrInvalidRequest, "the header name %q is not an HTTP token", k)
		}
		for _, v := range vs {
			if hasCTL(v) {
				return invalidRequest("the value of header "+k+" holds a control character", nil)
			}
			// Servers trim spaces and tabs; what is left must not start
			// or end with white space the SDK would trim too. Only a
			// non-ASCII byte can begin such white space there (a control
			// byte was refused above): "0\u00a0 " ends with one behind
			// the space.
			if t := trimSpaceTab(v); t != "" && (t[0] >= 0x80 || t[len(t)-1] >= 0x80) && strings.TrimSpace(t) != t {
				switch k {
				case "User-Agent", "X-Amzn-Trace-Id", "Expect":
					continue // not signed
				}
				return invalidRequest("the value of header "+k+" starts or ends with non-ASCII white space, which the SDK signer trims and AWS does not", nil)
			}
		}
	}
	return nil
}

// trimSpaceTab is strings.Trim(v, " \t"), as servers trim a header value,
// without building a cutset on every call.
func trimSpaceTab(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// tokenHasCTL is hasCTL for a session token, with memo the last clean
// one of its key. The same token signs every request until the
// credentials change, and its string is the same one each time, so
// comparing it with the last clean token ends at once (the runtime's
// comparison sees the same bytes at the same address), where reading it
// again cost 2% of a small GET. A token with a control byte is never
// remembered.
func tokenHasCTL(memo *atomic.Pointer[string], token string) bool {
	if p := memo.Load(); p != nil && *p == token {
		return false
	}
	if hasCTL(token) {
		return true
	}
	clean := token // allocated here, not on every call as &token would be
	memo.Store(&clean)
	return false
}

// hasCTL reports whether s holds a control byte other than tab. It runs
// over the session token of every request (hundreds of bytes, often more
// than a thousand), so it reads eight bytes at a time: a word with no byte
// below 0x20 and none equal to 0x7f is passed at once, and only another
// is looked at byte by byte (a tab, or a control byte).
func hasCTL(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; len(s) >= 8; s = s[8:] {
		b := s[:8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		// (x - n*ones) &^ x & highs is non-zero exactly when a byte of x
		// is below n (for n up to 0x80): below 0x20, or 0x7f (w^0x7f.. zero).
		del := w ^ 0x7f*ones
		if ((w-0x20*ones)&^w|(del-ones)&^del)&highs == 0 {
			continue
		}
		if ctlByte(b) {
			return true
		}
	}
	return ctlByte(s)
}

// ctlByte is hasCTL a byte at a time.
func ctlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 token, as methods and header
// names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validQuery reports whether raw parses as net/url and AWS parse it: every
// '%' starts a valid escape.
func validQuery(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '%':
			if i+2 >= len(raw) || !ishex(raw[i+1]) || !ishex(raw[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// wireSafe reports whether a query can be sent as it is: printable
// ASCII, no space.
func wireSafe(raw string) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] >= 0x7f {
			return false
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stripAuthQuery removes the parameters of an earlier presignature.
func stripAuthQuery(raw string) string {
	var kept []string
	for kv := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
			"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", queryRegionSet:
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(kept, "&")
}

func appendQuery(raw, key, value string) string {
	kv := key + "=" + queryEscape(value)
	if raw == "" {
		return kv
	}
	return raw + "&" + kv
}

// queryEscape escapes as SigV4 wants: a space is %20, not '+'.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// captureLogger receives the SDK signer's debug message.
type captureLogger struct{ msg string }

func (c *captureLogger) Logf(_ logging.Classification, format string, v ...any) {
	c.msg = fmt.Sprintf(format, v...)
}

// log writes the canonical request and the string to sign at debug level,
// redacted (redactCanonical). The signed URL of a
// presignature, which carries the signature, is left out.
func (c *captureLogger) log(ctx context.Context, s *signing, r *http.Request) {
	const (
		canonMark = "---[ CANONICAL STRING  ]-----------------------------\n"
		stsMark   = "\n---[ STRING TO SIGN ]--------------------------------\n"
	)
	_, rest, _ := strings.Cut(c.msg, canonMark)
	canon, rest, _ := strings.Cut(rest, stsMark)
	sts, _, _ := strings.Cut(rest, "\n---")
	s.logSigned(ctx, r, canon, sts)
}

// logSigned writes the canonical request, redacted, and the string to
// sign of r at debug level. For SigV4a, region is the region set.
func (s *signing) logSigned(ctx context.Context, r *http.Request, canon, sts string) {
	algorithm := "SigV4"
	if s.sigv4a {
		algorithm = "SigV4a"
	}
	s.logger.LogAttrs(ctx, slog.LevelDebug, "kivuli: signed request",
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("algorithm", algorithm),
		slog.String("service", s.service),
		slog.String("region", s.region),
		slog.Bool("presigned", s.presign),
		slog.String("canonical_request", redactCanonical(canon, s.creds.SessionToken)),
		slog.String("string_to_sign", sts))
}
