// Package sigv4test checks AWS Signature Version 4 (SigV4) the way AWS
// services do: it recomputes each request's signature from what arrived on
// the wire and compares it with the one the request carries.
//
// It is an independent implementation, written against the published
// algorithm and the official test vectors (see testdata/sigv4), and shares no
// code with any SDK signer, so it can check a signer's output rather than
// agree with its bugs.
//
// A [Verifier] checks one *http.Request as a server received it. A [Server]
// is a loopback HTTP endpoint (an [httptest.Server]) that verifies every
// request, records a [Record] of each, answers rejected requests with an
// AWS-style error and passes accepted ones to a handler.
//
// Both forms of SigV4 are checked: the Authorization header form and the
// presigned (query string) form, with session tokens that are signed or
// added after signing, in a header or in the query.
//
// # What is checked
//
//   - The canonical request is rebuilt from the wire: the path as received
//     (double-encoded and normalised, or for S3 decoded and encoded once,
//     see [Rule]); the query split on '&' and '=', percent-decoded ('+' is a
//     space), re-encoded with the RFC 3986 unreserved set, sorted by key then
//     value, repeats kept; the signed headers trimmed, inner runs of spaces
//     collapsed, repeats joined with ',' in arrival order.
//   - A path that is normalised (every rule but S3's) must not end in a
//     "." or ".." segment below the root ("/a/.", "/a/b/.."): AWS services
//     read such paths differently (RFC 3986 and smithy-rs keep a trailing
//     slash, botocore does not), so a signer must send paths with their dot
//     segments removed. Such requests are rejected with the code
//     AmbiguousPath, which is this package's own, not AWS's.
//   - SignedHeaders must include host, and every x-amz-* header present
//     except X-Amz-Security-Token must be signed.
//   - The credential scope date must be the date of X-Amz-Date (or, for the
//     header form, of the Date header, in basic or HTTP format).
//   - X-Amz-Date must be within 15 minutes of [Verifier.Now]; a presigned
//     URL with X-Amz-Expires is instead valid from 15 minutes before
//     X-Amz-Date until X-Amz-Date plus X-Amz-Expires (at most 7 days).
//   - The key must be known and unexpired; a key with a session token must
//     present exactly that token, and a key without one must present none.
//   - Payload: an X-Amz-Content-Sha256 header (or presigned query
//     parameter) is the canonical payload hash and must be the SHA-256 of
//     the body received, or UNSIGNED-PAYLOAD where the rule allows it. With
//     no such header the body is hashed. A presigned URL without one is
//     checked against UNSIGNED-PAYLOAD and, for services other than S3, also
//     against the SHA-256 of the body and of an empty body (IoT, Transcribe
//     and MSK sign sha256("")). aws-chunked streaming payloads
//     (STREAMING-*) are not supported.
//   - A session token in the query is tried first as part of the canonical
//     query, then without it (a token appended after signing).
package sigv4test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	terminator      = "aws4_request"
	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// emptySHA256 is the hex SHA-256 of an empty payload.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxSkew     = 15 * time.Minute
	// maxPresignExpires is the longest X-Amz-Expires AWS accepts: 7 days.
	maxPresignExpires = 7 * 24 * 60 * 60
	defaultMaxBody    = 256 << 20
	redacted          = "REDACTED"

	headerToken  = "x-amz-security-token"
	queryToken   = "X-Amz-Security-Token"
	querySig     = "X-Amz-Signature"
	headerSHA256 = "x-amz-content-sha256"
	querySHA256  = "X-Amz-Content-Sha256"
)

// Credentials are the secret half of an access key, as a [Secrets] function
// returns them. SessionToken is set for temporary credentials; a request made
// with them must then present that token. Expiration zero means the
// credentials never expire.
//
// Its fields are those of imdstest.Credentials, in the same order, so that
// the emulator's credentials convert: to check requests signed with
// credentials from an imdstest.Server srv,
//
//	Secrets: func(id string) (sigv4test.Credentials, bool) {
//		c, ok := srv.Lookup(id)
//		return sigv4test.Credentials(c), ok
//	}
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// Secrets resolves an access key ID to its credentials; ok=false means unknown key.
// A Secrets function may be called from several goroutines at once.
type Secrets func(accessKeyID string) (creds Credentials, ok bool)

// Static returns a [Secrets] that knows exactly the given credentials, keyed
// by their AccessKeyID. When an ID repeats, the last one wins. Credentials
// with an empty AccessKeyID are ignored.
func Static(creds ...Credentials) Secrets {
	m := make(map[string]Credentials, len(creds))
	for _, c := range creds {
		if c.AccessKeyID != "" {
			m[c.AccessKeyID] = c
		}
	}
	return func(id string) (Credentials, bool) {
		c, ok := m[id]
		return c, ok
	}
}

// TokenPlacement says where a request carried its session token
// (X-Amz-Security-Token) and whether the signature covers it.
type TokenPlacement int

const (
	// NoToken: the request carried no session token.
	NoToken TokenPlacement = iota
	// HeaderSigned: an X-Amz-Security-Token header listed in SignedHeaders.
	HeaderSigned
	// HeaderUnsigned: an X-Amz-Security-Token header added after signing,
	// not listed in SignedHeaders.
	HeaderUnsigned
	// QuerySigned: an X-Amz-Security-Token query parameter that is part of
	// the canonical query string.
	QuerySigned
	// QueryUnsigned: an X-Amz-Security-Token query parameter appended after
	// signing (the AWS IoT pattern), left out of the canonical query string.
	QueryUnsigned
)

// String returns the name of the placement's constant, such as "QueryUnsigned".
func (p TokenPlacement) String() string {
	switch p {
	case NoToken:
		return "NoToken"
	case HeaderSigned:
		return "HeaderSigned"
	case HeaderUnsigned:
		return "HeaderUnsigned"
	case QuerySigned:
		return "QuerySigned"
	case QueryUnsigned:
		return "QueryUnsigned"
	}
	return "TokenPlacement(" + strconv.Itoa(int(p)) + ")"
}

// Record describes one verified (or rejected) request; it never holds secrets, tokens or signatures.
type Record struct {
	// Method, Path and RawQuery are as received: Path is the path of the
	// request target, still percent-encoded; in RawQuery the values of
	// X-Amz-Signature and X-Amz-Security-Token are replaced by "REDACTED".
	Method, Path, RawQuery string
	// Service, Region and AccessKeyID come from the credential scope; they
	// are empty when the request carried no readable scope.
	Service, Region, AccessKeyID string
	// Presigned is true for the query string (presigned URL) form.
	Presigned bool
	// Token says where the session token was and whether it was signed.
	Token TokenPlacement
	// PayloadHash is the payload hash used in the canonical request: hex, or
	// UNSIGNED-PAYLOAD. On a signature mismatch it is the first one tried.
	PayloadHash string
	// ContentSHA256 is true when an X-Amz-Content-Sha256 header was present.
	ContentSHA256 bool
	// BodyLen is the number of body bytes received.
	BodyLen int64
	// Chunked is true when the request arrived with Transfer-Encoding: chunked.
	Chunked bool
	// SignedHeaders lists the signed header names as the request gave them.
	SignedHeaders []string
	// Err is nil when the request was accepted, and an *[Error] otherwise.
	Err error
}

// Rule holds the canonicalisation and payload rules of one signing service.
// The zero Rule ([DefaultRule]) is what most AWS services use.
type Rule struct {
	// SingleEncode (S3): the canonical URI is the path URI-encoded once:
	// the wire path is percent-decoded, then every byte except the
	// unreserved characters (A-Z a-z 0-9 - _ . ~) and '/' is encoded.
	// Otherwise the canonical URI is the wire path, as received and still
	// percent-encoded, URI-encoded once more ("double encoding").
	SingleEncode bool
	// NoNormalize (S3): keep "." and ".." segments and repeated slashes.
	// Otherwise "." and ".." segments are removed and "//" collapsed before
	// encoding, keeping a trailing slash.
	NoNormalize bool
	// RequireContentSHA256 (S3, aoss): an X-Amz-Content-Sha256 header is
	// required on requests signed in the Authorization header form.
	RequireContentSHA256 bool
	// AllowUnsignedPayload (S3): UNSIGNED-PAYLOAD is accepted as the
	// X-Amz-Content-Sha256 header value.
	AllowUnsignedPayload bool
}

// DefaultRule is the rule of a signing service that has no entry in
// [Verifier.Rules]: double encoding, normalised paths, the payload hashed.
var DefaultRule Rule

// DefaultRules returns a new map holding the rules of the services that do
// not follow [DefaultRule]: "s3" (SingleEncode, NoNormalize,
// RequireContentSHA256, AllowUnsignedPayload) and "aoss"
// (RequireContentSHA256).
func DefaultRules() map[string]Rule {
	return map[string]Rule{
		"s3": {
			SingleEncode:         true,
			NoNormalize:          true,
			RequireContentSHA256: true,
			AllowUnsignedPayload: true,
		},
		"aoss": {RequireContentSHA256: true},
	}
}

// Verifier checks SigV4-signed requests. Its fields must not change while
// it is in use; Verify may be called from several goroutines at once.
type Verifier struct {
	// Secrets resolves access key IDs; nil knows no key, so every signed
	// request is rejected with InvalidClientTokenId.
	Secrets Secrets
	// Now returns the server time; default time.Now. It is used for the
	// ±15 min skew check, presigned URL expiry and credential expiry.
	Now func() time.Time
	// Rules holds service rules, keyed by signing service name; a service
	// not in the map uses DefaultRule. A nil map means DefaultRules().
	Rules map[string]Rule
	// MaxBody is the most body bytes read to hash the body; default 256 MiB.
	// A longer body is rejected with RequestEntityTooLarge.
	MaxBody int64
}

// Error describes why a request was rejected. Code is one of the AWS error
// codes:
//
//   - MissingAuthenticationToken: no Authorization header and no presigned
//     query parameters.
//   - IncompleteSignature: malformed Authorization header, presigned query
//     parameters, credential scope or date.
//   - InvalidClientTokenId: unknown access key ID.
//   - SignatureDoesNotMatch: the signature differs from the one computed
//     (also: credential scope date differs from the request date, or
//     SignedHeaders lacks host).
//   - RequestTimeTooSkewed: X-Amz-Date more than 15 min from the server time.
//   - ExpiredToken: the server time is past the credentials' Expiration.
//   - InvalidToken: the session token is missing, is not the key's token, or
//     was sent with long-term credentials.
//   - XAmzContentSHA256Mismatch: the X-Amz-Content-Sha256 value is not the
//     hash of the body received (or is UNSIGNED-PAYLOAD where the service
//     rule does not allow it).
//   - AccessDenied: an expired presigned URL ("Request has expired"), or
//     x-amz-* headers that are not signed.
//   - InvalidRequest: a required X-Amz-Content-Sha256 header is missing.
//   - RequestEntityTooLarge: the body exceeds [Verifier.MaxBody].
//
// No field ever holds a secret key, a session token or a signature.
type Error struct {
	Code    string
	Message string
	// CanonicalRequest is what this verifier computed (with the session
	// token value replaced by "REDACTED"), for debugging, as AWS returns it.
	// It is set for signature and payload errors.
	CanonicalRequest string
	// StringToSign is the string to sign computed from the canonical
	// request (with the real token, so the hash is the one that was used).
	StringToSign string
}

// Error returns "sigv4test: Code: Message". It never includes the secret
// key, the session token or a signature.
func (e *Error) Error() string {
	return "sigv4test: " + e.Code + ": " + e.Message
}

func newErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// authParams is what a request says about its own signature.
type authParams struct {
	presigned     bool
	accessKeyID   string
	scopeDate     string
	region        string
	service       string
	signedHeaders []string
	signature     string
	amzDate       string // as it enters the string to sign
	when          time.Time
	expires       int64 // presigned X-Amz-Expires in seconds, -1 if absent
}

func (a *authParams) scope() string {
	return a.scopeDate + "/" + a.region + "/" + a.service + "/" + terminator
}

// Verify checks r (as a server received it; r.Body is read fully and replaced by a re-readable copy so handlers can still read it) and returns its Record; rec.Err describes the first problem as an *Error.
//
// Verify uses r.RequestURI (set by net/http servers) for the wire path and
// query; when it is empty, as on a request built for a client, it uses
// r.URL the way net/http's client would send it. The host is r.Host, or
// r.URL.Host when r.Host is empty.
func (v *Verifier) Verify(r *http.Request) Record {
	rec := Record{
		Method:   requestMethod(r),
		Path:     wirePath(r),
		RawQuery: redactQuery(wireQuery(r)),
		Chunked:  isChunked(r),
	}
	_, rec.ContentSHA256 = headerValues(r, headerSHA256)
	body, err := v.readBody(r)
	rec.BodyLen = int64(len(body))
	if err != nil {
		rec.Err = err
		return rec
	}
	if e := v.verify(r, body, &rec); e != nil {
		rec.Err = e
	}
	return rec
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) rule(service string) Rule {
	rules := v.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	if r, ok := rules[service]; ok {
		return r
	}
	return DefaultRule
}

// readBody reads the whole body and puts back a re-readable copy.
func (v *Verifier) readBody(r *http.Request) ([]byte, *Error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := v.MaxBody
	if limit <= 0 {
		limit = defaultMaxBody
	}
	orig := r.Body
	// Size the buffer from Content-Length when it is known, so that a large
	// body is read without repeated growth.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit)+1))
	_, err := buf.ReadFrom(io.LimitReader(orig, limit+1))
	body := buf.Bytes()
	if int64(len(body)) > limit {
		body = body[:limit]
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), orig), orig}
		return body, newErr("RequestEntityTooLarge", "The request body is larger than the %d bytes this verifier reads to hash it.", limit)
	}
	orig.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	if err != nil {
		return body, newErr("IncompleteSignature", "The request body could not be read: %v", err)
	}
	return body, nil
}

func (v *Verifier) verify(r *http.Request, body []byte, rec *Record) *Error {
	q, qerr := parseQuery(wireQuery(r))
	a, e := parseAuth(r, q, qerr)
	if a != nil {
		rec.Presigned = a.presigned
		rec.Service, rec.Region, rec.AccessKeyID = a.service, a.region, a.accessKeyID
		rec.SignedHeaders = a.signedHeaders
	}
	if e != nil {
		return e
	}
	if qerr != nil {
		return newErr("SignatureDoesNotMatch", "The query string is malformed: %v", qerr)
	}
	if a.scopeDate != a.amzDate[:8] {
		return newErr("SignatureDoesNotMatch",
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.scopeDate, a.amzDate[:8], a.amzDate)
	}
	rule := v.rule(a.service)
	if p := wirePath(r); !rule.NoNormalize && ambiguousPath(p) {
		return newErr("AmbiguousPath",
			"The path %q ends in a '.' or '..' segment, which AWS services canonicalise differently (RFC 3986 and smithy-rs as a trailing slash, botocore without): send the path with its dot segments removed.", p)
	}
	signed := make(map[string]bool, len(a.signedHeaders))
	for _, h := range a.signedHeaders {
		signed[h] = true
	}
	if !signed["host"] {
		return newErr("SignatureDoesNotMatch", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	var unsigned []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && lk != headerToken && !signed[lk] && !slices.Contains(unsigned, lk) {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return newErr("AccessDenied", "There were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
	}

	// Who signed it.
	var creds Credentials
	ok := false
	if v.Secrets != nil {
		creds, ok = v.Secrets(a.accessKeyID)
	}
	if !ok {
		return newErr("InvalidClientTokenId", "The security token included in the request is invalid: access key ID %q is not known.", a.accessKeyID)
	}
	now := v.now()
	if !creds.Expiration.IsZero() && now.After(creds.Expiration) {
		return newErr("ExpiredToken", "The security token included in the request is expired.")
	}

	// The session token: where it is, and whether it is the key's.
	hdrTok, hdrTokOK := headerValues(r, headerToken)
	qTok, qTokOK := queryValues(q, queryToken)
	if hdrTokOK || qTokOK {
		if creds.SessionToken == "" {
			return newErr("InvalidToken", "A security token was presented with long-term credentials (access key ID %q has no session token).", a.accessKeyID)
		}
		for _, t := range append(hdrTok, qTok...) {
			if subtle.ConstantTimeCompare([]byte(t), []byte(creds.SessionToken)) != 1 {
				return newErr("InvalidToken", "The provided token is malformed or otherwise invalid.")
			}
		}
	} else if creds.SessionToken != "" {
		return newErr("InvalidToken", "The request is missing the session token (X-Amz-Security-Token) of temporary credentials.")
	}
	switch {
	case qTokOK:
		rec.Token = QuerySigned // refined below
	case hdrTokOK && signed[headerToken]:
		rec.Token = HeaderSigned
	case hdrTokOK:
		rec.Token = HeaderUnsigned
	}

	// Time.
	if a.presigned && a.expires >= 0 {
		if a.when.Sub(now) > maxSkew {
			return skewErr(a.amzDate, now)
		}
		if now.After(a.when.Add(time.Duration(a.expires) * time.Second)) {
			return newErr("AccessDenied", "Request has expired: X-Amz-Date %s + X-Amz-Expires %d s is before the server time %s.",
				a.amzDate, a.expires, now.UTC().Format(amzDateLayout))
		}
	} else if d := a.when.Sub(now); d > maxSkew || d < -maxSkew {
		return skewErr(a.amzDate, now)
	}

	// Payload.
	bodyHash := hexSHA256(body)
	hdrSHA, _ := headerValues(r, headerSHA256)
	var candidates []string
	var claimed []string // payload hashes the request states, checked against the body
	if len(hdrSHA) > 0 {
		claimed = append(claimed, strings.TrimSpace(hdrSHA[0]))
	}
	if a.presigned {
		if qs, ok := queryValues(q, querySHA256); ok {
			claimed = append(claimed, qs[0])
			candidates = append(candidates, qs[0])
		} else {
			if len(hdrSHA) > 0 {
				candidates = append(candidates, strings.TrimSpace(hdrSHA[0]))
			}
			candidates = append(candidates, unsignedPayload)
			if !rule.AllowUnsignedPayload {
				// Services other than S3 hash the payload in presigned
				// URLs too; IoT, Transcribe and MSK sign sha256("").
				candidates = append(candidates, bodyHash, emptySHA256)
			}
		}
	} else {
		if len(hdrSHA) > 0 {
			candidates = append(candidates, strings.TrimSpace(hdrSHA[0]))
		} else {
			if rule.RequireContentSHA256 {
				return newErr("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
			}
			candidates = append(candidates, bodyHash)
		}
	}
	candidates = dedupe(candidates)

	// Signature: try each payload hash; with a query token, first with it
	// in the canonical query, then without (the token added after signing).
	excludes := [][]string{nil}
	if qTokOK {
		excludes = append(excludes, []string{queryToken})
	}
	var shown *Error // what a rejection shows: the first attempt, or the match
	matched := false
	for i, ex := range excludes {
		for _, ph := range candidates {
			creq, err := buildCanonical(r, rule, a.signedHeaders, ph, a.presigned, false, ex)
			if err != nil {
				return newErr("SignatureDoesNotMatch", "The request could not be canonicalised: %v", err)
			}
			sts := StringToSign(a.amzDate, a.scope(), creq)
			sig := Signature(creds.SecretAccessKey, a.scopeDate, a.region, a.service, sts)
			ok := hmac.Equal([]byte(sig), []byte(a.signature))
			if shown == nil || ok {
				red, _ := buildCanonical(r, rule, a.signedHeaders, ph, a.presigned, true, ex)
				shown = &Error{CanonicalRequest: red, StringToSign: sts}
				rec.PayloadHash = ph
			}
			if ok {
				matched = true
				if i == 1 {
					rec.Token = QueryUnsigned
				}
				break
			}
		}
		if matched {
			break
		}
	}
	if !matched {
		shown.Code = "SignatureDoesNotMatch"
		shown.Message = "The request signature we calculated does not match the signature you provided. " +
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
		return shown
	}

	// The signature holds; now the body must match the hash it claims.
	for _, c := range claimed {
		switch {
		case c == bodyHash:
			continue
		case c == unsignedPayload && (a.presigned || rule.AllowUnsignedPayload):
			continue
		case c == unsignedPayload:
			shown.Message = fmt.Sprintf("UNSIGNED-PAYLOAD is not accepted for service %q; the payload must be signed.", a.service)
		case strings.HasPrefix(c, "STREAMING-"):
			shown.Message = fmt.Sprintf("The payload signing mode %q (aws-chunked) is not supported by sigv4test.", c)
		default:
			shown.Message = fmt.Sprintf("The provided 'x-amz-content-sha256' header does not match what was computed: ClientComputedContentSHA256 %s, S3ComputedContentSHA256 %s.", c, bodyHash)
		}
		shown.Code = "XAmzContentSHA256Mismatch"
		return shown
	}
	return nil
}

func skewErr(amzDate string, now time.Time) *Error {
	return newErr("RequestTimeTooSkewed",
		"The difference between the request time and the current time is too large: request time %s, server time %s, maximum skew %v.",
		amzDate, now.UTC().Format(amzDateLayout), maxSkew)
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// parseAuth reads the Authorization header or the presigned query parameters.
func parseAuth(r *http.Request, q []pair, qerr error) (*authParams, *Error) {
	authz := r.Header.Values("Authorization")
	_, hasAlg := queryValues(q, "X-Amz-Algorithm")
	_, hasQSig := queryValues(q, querySig)
	_, hasQCred := queryValues(q, "X-Amz-Credential")
	presigned := hasAlg || hasQSig || hasQCred
	switch {
	case len(authz) == 0 && !presigned:
		if qerr != nil {
			return nil, newErr("MissingAuthenticationToken", "Request is missing Authentication Token (the query string is malformed: %v).", qerr)
		}
		return nil, newErr("MissingAuthenticationToken", "Request is missing Authentication Token.")
	case len(authz) > 0 && presigned:
		return nil, newErr("IncompleteSignature", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case len(authz) > 1:
		return nil, newErr("IncompleteSignature", "The request has %d Authorization headers; it must have one.", len(authz))
	}
	a := &authParams{presigned: presigned, expires: -1}
	var credential, signedHeaders string
	if !presigned {
		alg, rest, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
		if alg != algorithm {
			return a, newErr("IncompleteSignature", "Unsupported Authorization type: the algorithm must be %s.", algorithm)
		}
		var haveCred, haveSH, haveSig bool
		for part := range strings.SplitSeq(rest, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				credential, haveCred = val, true
			case "SignedHeaders":
				signedHeaders, haveSH = val, true
			case "Signature":
				a.signature, haveSig = val, true
			}
		}
		var missing []string
		for _, m := range []struct {
			ok   bool
			name string
		}{{haveCred, "Credential"}, {haveSig, "Signature"}, {haveSH, "SignedHeaders"}} {
			if !m.ok {
				missing = append(missing, "Authorization header requires '"+m.name+"' parameter.")
			}
		}
		if len(missing) > 0 {
			return a, newErr("IncompleteSignature", "%s", strings.Join(missing, " "))
		}
		// The date: X-Amz-Date, or the Date header as a fallback.
		if d, ok := headerValues(r, "x-amz-date"); ok {
			t, err := time.Parse(amzDateLayout, strings.TrimSpace(d[0]))
			if err != nil {
				return a, newErr("IncompleteSignature", "Date must be in ISO-8601 'basic format'. Got '%s'.", d[0])
			}
			a.amzDate, a.when = strings.TrimSpace(d[0]), t
		} else if d, ok := headerValues(r, "date"); ok {
			ds := strings.TrimSpace(d[0])
			if t, err := time.Parse(amzDateLayout, ds); err == nil {
				a.amzDate, a.when = ds, t
			} else if t, err := http.ParseTime(ds); err == nil {
				a.when = t.UTC()
				a.amzDate = a.when.Format(amzDateLayout)
			} else {
				return a, newErr("IncompleteSignature", "The Date header is neither ISO-8601 'basic format' nor an HTTP date. Got '%s'.", ds)
			}
		} else {
			return a, newErr("IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
	} else {
		get := func(name string) (string, bool) {
			vs, ok := queryValues(q, name)
			if !ok {
				return "", false
			}
			return vs[0], true
		}
		alg, okAlg := get("X-Amz-Algorithm")
		var okCred, okSH, okSig, okDate bool
		credential, okCred = get("X-Amz-Credential")
		signedHeaders, okSH = get("X-Amz-SignedHeaders")
		a.signature, okSig = get(querySig)
		date, okDate := get("X-Amz-Date")
		if !okAlg || !okCred || !okSH || !okSig || !okDate {
			return a, newErr("IncompleteSignature",
				"AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.")
		}
		if alg != algorithm {
			return a, newErr("IncompleteSignature", "X-Amz-Algorithm only supports %q.", algorithm)
		}
		t, err := time.Parse(amzDateLayout, date)
		if err != nil {
			return a, newErr("IncompleteSignature", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\". Got '%s'.", date)
		}
		a.amzDate, a.when = date, t
		if exp, ok := get("X-Amz-Expires"); ok {
			n, err := strconv.ParseInt(exp, 10, 64)
			if err != nil || n < 0 {
				return a, newErr("IncompleteSignature", "X-Amz-Expires should be a number of seconds. Got '%s'.", exp)
			}
			if n > maxPresignExpires {
				return a, newErr("IncompleteSignature", "X-Amz-Expires must be less than a week (in seconds) that is %d.", maxPresignExpires)
			}
			a.expires = n
		}
	}
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return a, newErr("IncompleteSignature", "Credential must have the form <AccessKeyID>/<YYYYMMDD>/<region>/<service>/aws4_request.")
	}
	a.accessKeyID, a.scopeDate, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	if parts[4] != terminator {
		return a, newErr("IncompleteSignature", "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", parts[4])
	}
	if _, err := time.Parse(scopeDateLayout, a.scopeDate); err != nil {
		return a, newErr("IncompleteSignature", "Credential scope date must be YYYYMMDD. Got '%s'.", a.scopeDate)
	}
	if signedHeaders == "" {
		return a, newErr("IncompleteSignature", "SignedHeaders must not be empty.")
	}
	a.signedHeaders = strings.Split(signedHeaders, ";")
	return a, nil
}

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
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, terminator)
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
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
	return (last == "." || last == "..") && normalizePath(p) != "/"
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
