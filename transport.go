package kivuli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// defaultMaxBufferedBody is how much of a body that can be read only once
// is buffered to hash it, unless [Transport.MaxBufferedBody] says otherwise.
const defaultMaxBufferedBody = 16 << 20

// Transport is an [http.RoundTripper] that signs each request with AWS
// Signature Version 4, using the credentials of Credentials, before passing
// it to Base. Where the session token and the body hash go, and how the
// path is escaped, is decided per service by Policies.
//
//	client := &http.Client{Transport: &kivuli.Transport{Credentials: creds}}
//
// It never modifies the caller's request; it signs a clone, afresh on every
// attempt. A body is hashed without being held in memory when the request
// has GetBody (as [http.NewRequest] sets for bytes, strings and buffers) or
// its body is an [io.Seeker]; another body is buffered once, up to
// MaxBufferedBody, unless the service accepts UNSIGNED-PAYLOAD and the
// length is known (S3 refuses chunked uploads, so a body of unknown length
// is never sent to it chunked).
//
// A request is signed only when the host it is sent to (URL.Host) and the
// host it is signed for (Request.Host when set, else URL.Host) are both AWS
// endpoints or listed in AllowedHosts, and, when it is sent in clear
// (http:// or ws://), only to a listed or loopback host; otherwise it fails
// with [ErrHostNotAllowed] or [ErrPlaintext] and nothing is sent. So the
// credentials never follow a redirect elsewhere. Hosts that customers run
// inside AWS domains (EC2 instances' public names, load balancers,
// PrivateLink endpoint services) are not AWS endpoints, nor is any IP
// literal. A tunnel is a listed URL.Host with the AWS name in Request.Host.
//
// When a service answers that the token has expired, Transport invalidates
// the credentials (if they have an Invalidate method, as [*Credentials] and
// [aws.CredentialsCache] do) so that the next request gets new ones; when
// an AWS endpoint answers that the clock is skewed, Transport corrects its
// clock from the answer's Date header, by at most a day. It learns this from
// the X-Amzn-ErrorType header, or from the body as the caller reads it:
// RoundTrip returns as soon as the headers arrive. [NewRetryingClient] also
// retries such requests.
//
// A Transport is safe for concurrent use, and must not be copied after
// first use. Its fields, the Policies map and the AllowedHosts slice
// included, must not be changed once it is in use.
type Transport struct {
	// Credentials signs the requests. Required.
	Credentials aws.CredentialsProvider
	// Service is the signing name, e.g. "es", "s3", "execute-api". If
	// empty, it is inferred from the host, from AWS's endpoint data
	// (bedrock-runtime.us-east-1.amazonaws.com is "bedrock") and the forms
	// of customers' endpoints (search-x.eu-west-2.es.amazonaws.com is
	// "es"); a host that no rule knows is refused with [ErrUnknownScope].
	Service string
	// Region is the signing region, e.g. "eu-west-2"; when set it is used
	// for every host. If empty, it is inferred from the host, and for a
	// host that does not name one (a custom domain, a tunnel, S3 Transfer
	// Acceleration) taken from AWS_REGION, else AWS_DEFAULT_REGION, read
	// when the Transport is first used. On EC2, [Credentials.Region] tells
	// the instance's own region.
	Region string
	// Base sends the signed requests. If nil, http.DefaultTransport is used.
	Base http.RoundTripper
	// Policies overrides and extends the built-in per-service policies
	// ([DefaultPolicies]). If nil, the built-in ones are used.
	Policies Policies
	// AllowedHosts lists the hosts, besides AWS endpoints, to which signed
	// requests may go and for which they may be signed: a host name
	// ("search.example.com") or IP address ("127.0.0.1", "::1"), which
	// matches on any port; a host and port ("localhost:9200",
	// "[::1]:9200"); or a wildcard for the subdomains of a name
	// ("*.example.com"), which never matches an IP address. Names are
	// matched on their ASCII form, case-insensitively; a host name that is
	// not ASCII is refused (use its IDNA "xn--" form). A listed host may
	// also be reached in clear (http://).
	AllowedHosts []string
	// MaxBufferedBody bounds the bytes buffered to hash a body that can be
	// read only once. If zero, 16 MiB; if
	// negative, such bodies are refused unless the service accepts
	// UNSIGNED-PAYLOAD.
	MaxBufferedBody int64
	// Logger, if set and enabled at debug level, receives the canonical
	// request and the string to sign of every request, with the session
	// token redacted, as awscurl -v shows them.
	Logger *slog.Logger

	env  envRegion    // AWS_REGION, AWS_DEFAULT_REGION, read once
	skew atomic.Int64 // nanoseconds to add to the local clock
	// Warnings about clock corrections made and refused.
	correctionLog, refusedLog everyMinute
	last                      atomic.Pointer[route] // the route of the last host signed for
}

// route is what a Transport decides from a request's hosts and scheme
// alone: that it may be signed, its signing scope and its policy. The
// fields it comes from are fixed once the Transport is in use, so it is
// kept for the last hosts, and a run of requests to one host (the common
// case) decides it once rather than parsing the hosts, checking the
// allow-list, inferring the scope and looking up the policy on every
// request.
type route struct {
	// The key: URL.Host, Request.Host and URL.Scheme, as given.
	dial, host, scheme string

	service, region string
	policy          Policy
	// fromAWS reports that the dialled host is an AWS endpoint that runs
	// no customer's code, so that its answers may correct the clock.
	fromAWS bool
	// tunnelInClear reports a request in clear whose signed host is not
	// the dialled one: through an HTTP proxy, it would go to the signed
	// host, in clear.
	tunnelInClear bool
}

// RoundTrip signs a clone of req and sends it with Base.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, creds, route, err := t.prepare(req, false, 0)
	if err != nil {
		return nil, err
	}
	resp, err := t.base().RoundTrip(out)
	if err == nil {
		// The signed request carries the token and the signature: never
		// hand it to the caller, whose logging may print resp.Request.
		resp.Request = req
		t.watch(req.Context(), resp, creds, route)
	}
	return resp, err
}

// Presign returns req's URL signed in its query, as WebSocket handshakes
// (IoT Core, Transcribe streaming, Neptune) and shared links need. The
// token goes where the service's policy says (a header placement means the
// query). expires is how long the URL stays valid, between one second and
// seven days (AWS refuses longer), rounded up to whole seconds; zero means
// the policy's Expires, else five minutes. Another value is
// refused with an [ErrInvalidRequest] error. Presign does not send anything and
// does not close req.Body.
func (t *Transport) Presign(req *http.Request, expires time.Duration) (string, error) {
	r := req.Clone(req.Context())
	r.Body, r.GetBody, r.ContentLength = nil, nil, 0
	out, _, _, err := t.prepare(r, true, expires)
	if err != nil {
		return "", err
	}
	// Made from the parts checked and signed, never from an Opaque.
	u := out.URL
	return u.Scheme + "://" + u.Host + uriPath(u) + "?" + u.RawQuery, nil
}

// prepare returns the signed clone of req. On error it has closed req.Body.
func (t *Transport) prepare(req *http.Request, forcePresign bool, expires time.Duration) (out *http.Request, creds aws.Credentials, rt route, err error) {
	bodyOwned := true // req.Body is still ours to close on error
	defer func() {
		if err != nil && bodyOwned && req.Body != nil {
			req.Body.Close()
		}
	}()
	if req.URL == nil {
		return nil, creds, rt, invalidRequest("nil URL", nil)
	}
	if t == nil || t.Credentials == nil {
		return nil, creds, rt, ErrNoCredentials
	}
	if err = checkURL(req.URL); err != nil {
		return nil, creds, rt, err
	}
	rt, err = t.route(req)
	if err != nil {
		return nil, creds, rt, err
	}
	if rt.tunnelInClear && t.viaProxy(req) {
		return nil, creds, rt, invalid(ErrPlaintext, "through the HTTP proxy Base would use, %s:// to %q would go to %q, in clear: use https://, or a Base without a proxy", req.URL.Scheme, req.URL.Host, req.Host)
	}
	pol := rt.policy
	presign := forcePresign || pol.Sign == SignQuery || pol.Sign == SignQueryWebSocket && isWebSocket(req)
	var expirySeconds int64
	if presign {
		if expirySeconds, err = presignExpiry(expires, pol); err != nil {
			return nil, creds, rt, err
		}
	}

	creds, err = t.Credentials.Retrieve(req.Context())
	if err != nil {
		return nil, creds, rt, wrap("retrieving credentials", err)
	}

	out = cloneRequest(req)
	hash, consumed, err := t.payload(out, pol, presign)
	bodyOwned = !consumed
	if err != nil {
		return nil, creds, rt, err
	}
	err = sign(req.Context(), out, &signing{
		creds:       creds,
		service:     rt.service,
		region:      rt.region,
		policy:      pol,
		payloadHash: hash,
		time:        t.now(),
		presign:     presign,
		expires:     expirySeconds,
		logger:      t.Logger,
	})
	if err != nil {
		return nil, creds, rt, err
	}
	return out, creds, rt, nil
}

// maxPresignExpiry is the longest lifetime AWS accepts for a presigned
// request.
const maxPresignExpiry = 7 * 24 * time.Hour

// presignExpiry returns the X-Amz-Expires of a presigned request: expires,
// else the policy's, else the default, in whole seconds rounded up, so that
// a URL asked to live 1 ms is not expired at birth.
func presignExpiry(expires time.Duration, pol Policy) (int64, error) {
	d := expires
	if d == 0 {
		d = pol.Expires
	}
	if d == 0 {
		d = defaultPresignExpiry
	}
	if d < 0 || d > maxPresignExpiry {
		return 0, invalid(ErrInvalidRequest, "a presigned request's lifetime of %v is outside 1s..%v, which AWS accepts", d, maxPresignExpiry)
	}
	return int64((d + time.Second - 1) / time.Second), nil
}

// signingHeaders is how many headers signing may add: Authorization,
// X-Amz-Date, X-Amz-Security-Token and X-Amz-Content-Sha256.
const signingHeaders = 4

// outgoing is a request's signed clone and its URL, allocated together.
type outgoing struct {
	req http.Request
	url url.URL
}

// cloneRequest is req.Clone(req.Context()) made for signing, in two
// allocations fewer: the clone and its URL are one, and the header map
// has room for the headers signing adds, so that adding them does not
// grow it. Like Clone it copies the header values, the trailer and
// TransferEncoding, which signing or the base transport may change; the
// server-side form fields are shared, as nothing on the client writes
// them.
func cloneRequest(req *http.Request) *http.Request {
	o := &outgoing{req: *req, url: *req.URL}
	if u := req.URL.User; u != nil {
		user := *u
		o.url.User = &user
	}
	o.req.URL = &o.url
	o.req.Header = cloneHeader(req.Header, signingHeaders)
	o.req.Trailer = req.Trailer.Clone()
	o.req.TransferEncoding = slices.Clone(req.TransferEncoding)
	return &o.req
}

// cloneHeader is h.Clone with room for extra more keys; it never returns
// nil, so that signing can add to it.
func cloneHeader(h http.Header, extra int) http.Header {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	values := make([]string, n) // one backing array for all, as Header.Clone does
	c := make(http.Header, len(h)+extra)
	for k, vv := range h {
		if vv == nil {
			c[k] = nil
			continue
		}
		n := copy(values, vv)
		c[k] = values[:n:n]
		values = values[n:]
	}
	return c
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) now() time.Time {
	return time.Now().Add(time.Duration(t.skew.Load()))
}

// route returns the route of req, the last one's when its hosts and
// scheme are the same. It returns a copy, so that a route not kept costs
// no allocation.
func (t *Transport) route(req *http.Request) (route, error) {
	u := req.URL
	if rt := t.last.Load(); rt != nil && rt.dial == u.Host && rt.host == req.Host && rt.scheme == u.Scheme {
		return *rt, nil
	}
	rt, byPath, err := t.decide(req)
	if err != nil {
		return route{}, err
	}
	if !byPath {
		kept := rt
		t.last.Store(&kept)
	}
	return rt, nil
}

// decide makes the route of req: both its hosts must be AWS endpoints or
// listed in AllowedHosts, and a request in clear must go to a listed or
// loopback host. byPath reports that the scope depended on the path too.
func (t *Transport) decide(req *http.Request) (rt route, byPath bool, err error) {
	u := req.URL
	if u.Host == "" {
		return rt, false, invalidRequest("the URL has no host", nil)
	}
	for _, a := range t.AllowedHosts {
		if err := checkAllowed(a); err != nil {
			return rt, false, err
		}
	}
	scheme := asciiLower(u.Scheme)
	var plaintext bool
	switch scheme {
	case "https", "wss":
	case "http", "ws":
		plaintext = true
	default:
		return rt, false, invalid(ErrInvalidRequest, "the URL's scheme %q is none of https, wss, http and ws", u.Scheme)
	}
	dial, err := parseHost(u.Host)
	if err != nil {
		return rt, false, invalid(ErrHostNotAllowed, "%v", err)
	}
	dialListed, dialAWS := dial.listed(t.AllowedHosts), dial.isAWSEndpoint()
	if !dialListed && !dialAWS {
		return rt, false, invalid(ErrHostNotAllowed, "%q is not an AWS endpoint (add it to Transport.AllowedHosts if it is yours)", u.Host)
	}
	signed := dial
	if req.Host != "" && req.Host != u.Host {
		if signed, err = parseHost(req.Host); err != nil {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host: %v", err)
		}
		if !signed.listed(t.AllowedHosts) && !signed.isAWSEndpoint() {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host %q, the host the request would be signed for, is not an AWS endpoint (add it to Transport.AllowedHosts if it is yours)", req.Host)
		}
		// Only a listed host, a tunnel, is dialled for another one: an AWS
		// host that runs customers' code (a function URL, an API) must not
		// receive a request signed for STS.
		if !dialListed && signed.name != dial.name {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host %q is not URL.Host %q, which is not listed in Transport.AllowedHosts: only a listed host (a tunnel) may be sent a request signed for another", req.Host, u.Host)
		}
	}
	if plaintext && !dialListed && !dial.isLoopback() {
		return rt, false, invalid(ErrPlaintext, "%s://%s would carry the signature and the session token readable by the network and any HTTP proxy: use %ss://, or list the host in Transport.AllowedHosts to allow it", scheme, u.Host, scheme)
	}
	service, region, byPath, err := t.resolveScope(signed.name, u.Path)
	if err != nil {
		return rt, false, err
	}
	return route{
		dial: u.Host, host: req.Host, scheme: u.Scheme,
		service: service, region: region, policy: t.Policies.lookup(service),
		fromAWS:       dialAWS && !dial.runsCustomerCode(),
		tunnelInClear: plaintext && signed.name != dial.name,
	}, byPath, nil
}

// checkURL refuses the forms of a URL that net/http would send elsewhere
// than URL.Host: an Opaque naming another host, or a path without its
// leading '/' (through an HTTP proxy, the absolute form
// "http://search.example.com" + "@evil.example/" names another host).
func checkURL(u *url.URL) error {
	switch {
	case strings.HasPrefix(u.Opaque, "//"):
		authority := u.Opaque[2:]
		if i := strings.IndexAny(authority, "/?"); i >= 0 {
			authority = authority[:i]
		}
		if !strings.EqualFold(authority, u.Host) {
			return invalid(ErrHostNotAllowed, "URL.Opaque names the host %q, not URL.Host %q", authority, u.Host)
		}
	case u.Opaque != "" && u.Opaque[0] != '/':
		return invalidRequest("URL.Opaque is neither a path nor //host/path", nil)
	case u.Opaque == "" && (u.Path != "" && u.Path[0] != '/' || u.RawPath != "" && u.RawPath[0] != '/'):
		return invalidRequest("the URL's path does not start with '/'", nil)
	}
	return nil
}

// viaProxy reports whether Base would send req through an HTTP proxy, as
// far as it can tell (an *http.Transport, http.DefaultTransport included).
func (t *Transport) viaProxy(req *http.Request) bool {
	ht, ok := t.base().(*http.Transport)
	if !ok || ht.Proxy == nil {
		return false
	}
	u, err := ht.Proxy(req)
	return err != nil || u != nil
}

// resolveScope returns the signing service and region: the fields when
// set, else inferred from the host (scope.go); a region that neither gives
// comes from AWS_REGION, else AWS_DEFAULT_REGION (read once per
// Transport). byPath reports that the inference depended on the path too
// (AWS IoT's data endpoints), so that the route of the host is not one for
// all its requests.
func (t *Transport) resolveScope(hn, path string) (service, region string, byPath bool, err error) {
	service, region = t.Service, t.Region
	if service != "" && region != "" {
		return service, region, false, nil
	}
	isvc, iregion, byPath := inferScope(hn, path)
	if service == "" {
		service = isvc
	} else {
		byPath = false
	}
	if region == "" {
		region = iregion
	}
	if region == "" {
		if region, err = t.envRegion(); err != nil {
			return "", "", false, err
		}
	}
	switch {
	case service == "":
		return "", "", false, invalid(ErrUnknownScope, "no rule knows the service of host %q: set Transport.Service", hn)
	case region == "":
		return "", "", false, invalid(ErrUnknownScope, "host %q does not name the region: set Transport.Region or AWS_REGION", hn)
	}
	return service, region, byPath, nil
}

func isWebSocket(r *http.Request) bool {
	return r.URL.Scheme == "ws" || r.URL.Scheme == "wss" || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// payload returns the payload hash of r (a clone the caller owns) and, when
// the body had to be buffered, replaces r's body with the buffer; consumed
// reports that it then closed the original body.
//
// A body sent with UNSIGNED-PAYLOAD (S3) is never sent chunked, as S3
// refuses chunked uploads: when its length is unknown, it is measured (an
// io.Seeker) or read (GetBody, or buffered up to MaxBufferedBody) and then
// signed with its hash, which costs nothing more once it has been read.
func (t *Transport) payload(r *http.Request, pol Policy, presign bool) (hash string, consumed bool, err error) {
	unsignedOK := pol.Payload == PayloadUnsigned || pol.UnsignedStreaming
	unsigned := pol.Payload == PayloadUnsigned || presign && unsignedOK
	if r.Body == nil || r.Body == http.NoBody {
		if r.ContentLength > 0 {
			return "", false, invalid(ErrInvalidRequest, "ContentLength is %d but Body is nil", r.ContentLength)
		}
		if unsigned {
			return unsignedPayload, false, nil
		}
		return emptyPayloadHash, false, nil
	}
	if unsignedOK {
		r.TransferEncoding = nil // the length is known below, or the request refused
	}
	known := r.ContentLength > 0
	if unsigned && (known || seekLength(r)) {
		return unsignedPayload, false, nil
	}
	if r.GetBody != nil {
		return hashGetBody(r)
	}
	if hash, ok, consumed, err := hashSeeker(r); ok {
		return hash, consumed, err
	}
	if pol.UnsignedStreaming && known {
		return unsignedPayload, false, nil
	}
	return t.buffer(r, unsignedOK)
}

// hashGetBody hashes the body that r.GetBody returns.
func hashGetBody(r *http.Request) (string, bool, error) {
	body, err := r.GetBody()
	if err != nil {
		return "", false, invalidRequest("GetBody failed", err)
	}
	if body == nil {
		return "", false, invalidRequest("GetBody returned a nil body", nil)
	}
	var n int64
	var hash string
	closed, err := whileReading(r.Context(), body, func() (err error) {
		n, hash, err = hashReader(body)
		return err
	})
	if !closed {
		body.Close()
	}
	if err != nil {
		return "", false, invalidRequest("reading the body from GetBody", err)
	}
	return hash, false, checkLength(r, n)
}

// hashSeeker hashes a body that is an io.Seeker from where it stands, and
// seeks back; ok is false when it is not one, or cannot tell where it
// stands. consumed reports that it closed the body.
func hashSeeker(r *http.Request) (hash string, ok, consumed bool, err error) {
	s, isSeeker := r.Body.(io.Seeker)
	if !isSeeker {
		return "", false, false, nil
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", false, false, nil
	}
	var n int64
	consumed, err = whileReading(r.Context(), r.Body, func() (err error) {
		n, hash, err = hashReader(r.Body)
		return err
	})
	if err == nil {
		_, err = s.Seek(start, io.SeekStart)
	}
	if err != nil {
		return "", true, consumed, invalidRequest("hashing a seekable body", err)
	}
	return hash, true, false, checkLength(r, n)
}

// seekLength sets the ContentLength of a body that is an io.Seeker from
// what is left of it, reporting whether it could.
func seekLength(r *http.Request) bool {
	s, ok := r.Body.(io.Seeker)
	if !ok {
		return false
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return false
	}
	end, err := s.Seek(0, io.SeekEnd)
	if _, err2 := s.Seek(start, io.SeekStart); err != nil || err2 != nil {
		return false
	}
	return checkLength(r, end-start) == nil
}

// bufferLimit is MaxBufferedBody, or its default; negative means none.
func (t *Transport) bufferLimit() int64 {
	if t.MaxBufferedBody == 0 {
		return defaultMaxBufferedBody
	}
	return t.MaxBufferedBody
}

// readLimited reads up to limit+1 bytes of body, the rest of it or an
// error ending it, within ctx; closed reports that ctx ended first and
// the body was closed, so that a Read blocked on a stalled body returned.
func readLimited(ctx context.Context, body io.ReadCloser, limit int64) (buf []byte, closed bool, err error) {
	closed, err = whileReading(ctx, body, func() (err error) {
		buf, err = io.ReadAll(io.LimitReader(body, limit+1))
		return err
	})
	return buf, closed, err
}

// whileReading calls read, which reads body, and closes body if ctx ends
// first, so that a Read blocked on a body that stalls returns, as net/http
// itself gives up on a request whose context ends; closed reports that it
// did, and err is then the context's error.
func whileReading(ctx context.Context, body io.Closer, read func() error) (closed bool, err error) {
	if ctx.Done() == nil {
		return false, read()
	}
	stop := context.AfterFunc(ctx, func() { body.Close() })
	err = read()
	if !stop() {
		return true, ctx.Err()
	}
	return false, err
}

// buffer reads a body that can be read only once into memory, up to
// MaxBufferedBody, to hash it, and makes the buffer the body.
func (t *Transport) buffer(r *http.Request, s3 bool) (string, bool, error) {
	limit := t.bufferLimit()
	tooLarge := func(limit int64) error {
		if s3 && r.ContentLength <= 0 {
			return invalid(ErrBodyTooLarge, "its length is unknown, it can be read only once (no GetBody, not an io.Seeker), and it is over the limit of %d bytes (Transport.MaxBufferedBody); S3 refuses chunked uploads: set Request.ContentLength, or use a multipart upload", limit)
		}
		return invalid(ErrBodyTooLarge, "it can be read only once (no GetBody, not an io.Seeker) and is over the limit of %d bytes (Transport.MaxBufferedBody)", limit)
	}
	if limit < 0 || r.ContentLength > limit {
		return "", false, tooLarge(max(limit, 0))
	}
	orig := r.Body
	buf, closed, err := readLimited(r.Context(), orig, limit)
	if !closed {
		orig.Close()
	}
	if err != nil {
		return "", true, invalidRequest("reading the body", err)
	}
	if int64(len(buf)) > limit {
		return "", true, tooLarge(limit)
	}
	if r.ContentLength > 0 && int64(len(buf)) != r.ContentLength {
		return "", true, invalid(ErrInvalidRequest, "ContentLength is %d but the body has %d bytes", r.ContentLength, len(buf))
	}
	// The buffer becomes the body and is never reused: net/http may read it
	// after RoundTrip returns (golang/go#51907).
	r.ContentLength = int64(len(buf))
	r.Body = http.NoBody
	r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	if len(buf) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	return sha256Hex(buf), true, nil
}

// checkLength reconciles ContentLength with the n bytes hashed: a known
// length must match, an unknown one becomes n, so that a body of known
// length is never sent chunked.
func checkLength(r *http.Request, n int64) error {
	switch {
	case r.ContentLength > 0 && r.ContentLength != n:
		return invalid(ErrInvalidRequest, "ContentLength is %d but the body has %d bytes", r.ContentLength, n)
	case r.ContentLength <= 0 && n > 0:
		r.ContentLength = n
	case n == 0:
		r.ContentLength = 0
	}
	return nil
}

// hashing is the scratch space of hashReader: a copy buffer and a SHA-256
// state. Neither leaves the function, so they are pooled; body buffers
// never are.
type hashing struct {
	buf [64 << 10]byte
	h   hash.Hash
}

var hashings = sync.Pool{New: func() any { return &hashing{h: sha256.New()} }}

// hashReader returns the length and hex SHA-256 of what r yields.
func hashReader(r io.Reader) (int64, string, error) {
	hs := hashings.Get().(*hashing)
	defer hashings.Put(hs)
	hs.h.Reset()
	n, err := io.CopyBuffer(hs.h, r, hs.buf[:])
	if err != nil {
		return n, "", err
	}
	var sum [sha256.Size]byte
	return n, hexString(hs.h.Sum(sum[:0])), nil
}

// hexString is hex.EncodeToString in one allocation instead of two.
func hexString(sum []byte) string {
	var dst [2 * sha256.Size]byte
	return string(dst[:hex.Encode(dst[:], sum)])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hexString(sum[:])
}
