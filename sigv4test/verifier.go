package sigv4test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kivuli-go/kivuli"
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
// the emulator's credentials convert: see [Lookup].
type Credentials struct {
	AccessKeyID     string    // the access key ID, which requests name
	SecretAccessKey string    // the secret that signs
	SessionToken    string    // the session token of temporary credentials
	Expiration      time.Time // when they expire
}

// Secrets resolves an access key ID to its credentials; ok=false means unknown key.
// A Secrets function may be called from several goroutines at once.
type Secrets func(accessKeyID string) (creds Credentials, ok bool)

// Lookup returns a [Secrets] that resolves keys with lookup, a function
// that returns credentials of any type with the fields of [Credentials],
// such as the Lookup method of an imdstest.Server: to check requests
// signed with the emulator's credentials,
//
//	v := &sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}
func Lookup[C ~struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}](lookup func(accessKeyID string) (C, bool)) Secrets {
	return func(id string) (Credentials, bool) {
		c, ok := lookup(id)
		return Credentials(c), ok
	}
}

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
	// are empty when the request carried no readable scope. For SigV4a,
	// Region is the region set (X-Amz-Region-Set), such as "*".
	Service, Region, AccessKeyID string
	// Algorithm is the signature's: "AWS4-HMAC-SHA256" (SigV4) or
	// "AWS4-ECDSA-P256-SHA256" (SigV4a); empty when unreadable.
	Algorithm string
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
	// Chunks is the number of aws-chunked chunks verified, the final empty
	// one included; 0 for a plain body. BodyLen stays the length received.
	Chunks int
	// Checksum is the flexible checksum algorithm (CRC32, SHA256, ...)
	// whose value, in a header or an aws-chunked trailer, was checked
	// against the body; "" when none was sent.
	Checksum string
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
	// AWSChunked (S3): an aws-chunked body (X-Amz-Content-Sha256
	// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, its -TRAILER form, or
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER) is decoded as S3 decodes it,
	// every chunk's signature, the trailer's and its checksum checked, and
	// the handler gets the decoded body.
	AWSChunked bool
	// Checksums (S3): x-amz-checksum-* headers are checked against the
	// body (BadDigest), and x-amz-sdk-checksum-algorithm must name one sent.
	Checksums bool
}

// DefaultRule is the rule of a signing service that has no entry in
// [Verifier.Rules]: double encoding, normalised paths, the payload hashed.
var DefaultRule Rule

// DefaultRules returns a new map holding the rules of the services that do
// not follow [DefaultRule]: "s3" (SingleEncode, NoNormalize,
// RequireContentSHA256, AllowUnsignedPayload, AWSChunked, Checksums) and
// "aoss" (RequireContentSHA256).
func DefaultRules() map[string]Rule {
	return map[string]Rule{
		"s3": {
			SingleEncode:         true,
			NoNormalize:          true,
			RequireContentSHA256: true,
			AllowUnsignedPayload: true,
			AWSChunked:           true,
			Checksums:            true,
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
	// MaxBody is the most body bytes Verify reads to hash the body, and the
	// largest signed aws-chunked chunk VerifyStream holds to check its
	// signature; default 256 MiB. A longer body, or chunk, is rejected
	// with RequestEntityTooLarge. VerifyStream holds no more of a plain
	// body, or of an unsigned chunk, than a Read asks for, and so sets no
	// limit on their length.
	MaxBody int64
	// Stream makes a [Server] check each request with VerifyStream rather
	// than Verify: its handler reads the data as it arrives, checked as
	// it is read, instead of a copy of the whole body checked before.
	Stream bool
	// Scope returns the signing service and region of the endpoint that
	// host (the request's Host, with its port) and path name, as an AWS
	// endpoint knows its own: a request whose credential scope names
	// another service or region is rejected with SignatureDoesNotMatch,
	// naming both. An empty service or region is not checked. A SigV4a
	// request's region set must cover the region ("*", the region, or a
	// pattern such as "us-*" that matches it); the region "*" is an
	// endpoint of all regions, which only SigV4a signed for "*" reaches
	// (an S3 Multi-Region Access Point). If nil,
	// [HostScope]: AWS's endpoint data for AWS's hosts
	// (sts.eu-west-2.amazonaws.com is sts in eu-west-2), nothing for any
	// other host, such as the server's own address.
	Scope func(host, path string) (service, region string)
}

// HostScope is the default [Verifier.Scope]: the scope that AWS's endpoint
// data and the forms of customers' endpoints give host, as the kivuli
// signer infers it (kivuli.InferScope); "" for a host that is not an AWS
// endpoint.
func HostScope(host, path string) (service, region string) {
	return kivuli.InferScope(host, path)
}

// AnyScope is a [Verifier.Scope] that checks no scope: for a test that
// signs for a service or region its hosts do not name on purpose.
func AnyScope(host, path string) (service, region string) { return "", "" }

// Verify checks r (as a server received it; r.Body is read fully and replaced by a re-readable copy so handlers can still read it) and returns its Record; rec.Err describes the first problem as an *Error.
// To check a large body without holding it, use [Verifier.VerifyStream].
//
// Verify uses r.RequestURI (set by net/http servers) for the wire path and
// query; when it is empty, as on a request built for a client, it uses
// r.URL the way net/http's client would send it. The host is r.Host, or
// r.URL.Host when r.Host is empty.
func (v *Verifier) Verify(r *http.Request) Record {
	raw, err := v.readBody(r)
	if err != nil {
		rec := wireRecord(r)
		rec.BodyLen, rec.Err = int64(len(raw)), err
		return rec
	}
	// The checks are the Stream's, over the body held.
	s := v.newStream(r, io.NopCloser(bytes.NewReader(raw)), noChunkLimit)
	var data bytes.Buffer
	if s.err == nil && s.dec != nil {
		data.Grow(int(min(s.c.decodedLen, int64(len(raw)))))
		data.ReadFrom(s)
	} else if s.err == nil {
		io.Copy(io.Discard, s)
	}
	rec := s.Record()
	rec.BodyLen = int64(len(raw))
	if rec.Err == nil && s.dec != nil {
		b := data.Bytes()
		decodedHead(r, int64(len(b)))
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
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
	limit := v.maxBody()
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
