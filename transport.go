package kivuli

import (
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Transport is an [http.RoundTripper] that signs each request with AWS
// Signature Version 4, using the credentials of Credentials, before passing
// it to Base. Where the session token and the body hash go, and how the
// path is escaped, is decided per service by Policies. The hosts that AWS's
// endpoint rules sign with SigV4a only (S3 Multi-Region Access Points,
// CloudFront KeyValueStore, EventBridge global endpoints) are signed with
// SigV4a, for the region set the rules give; [Policy].Algorithm changes
// that per service.
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
// (http:// or ws://), only to a listed or loopback host that no HTTP proxy
// sees on the way ([ProxyReporter]); otherwise it fails with
// [ErrHostNotAllowed] or [ErrPlaintext] and nothing is sent. A redirected
// request is signed only for the host the redirecting one was signed for,
// but for S3's region redirects of one bucket ([CheckRedirect]), so the
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
	// for every host but those that take SigV4a only, which are signed for
	// the region set their endpoint rules give ("*"). For a service whose
	// policy forces SigV4a it is the region set, which may be "*" or a
	// comma-separated list. If empty, it is inferred from the host, and for a
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
	// also be reached in clear (http://), when no HTTP proxy is on the way
	// ([ProxyReporter]).
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
	forced                    atomic.Int64          // unix nanoseconds of the last refresh forced by an answer
	last                      atomic.Pointer[route] // the route of the last host signed for
	ecdsa                     ecdsaKeys             // the SigV4a key of the newest credentials
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
// does not close req.Body. A SigV4a presignature (X-Amz-Algorithm
// AWS4-ECDSA-P256-SHA256, X-Amz-Region-Set) signs the request's X-Amz-*
// headers as headers, where SigV4's moves most of them into the query as
// the SDK's signer does.
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

// checkedRoute returns the route of req after the checks of where it may
// go: its URL's form, the host rules, the redirect rule (redirect.go), and
// no plaintext through a proxy (plaintext.go).
func (t *Transport) checkedRoute(req *http.Request) (route, error) {
	if err := checkURL(req.URL); err != nil {
		return route{}, err
	}
	if req.Response != nil {
		if err := checkRedirect(req.Response.Request, req); err != nil {
			return route{}, err
		}
	}
	rt, err := t.route(req)
	if err != nil {
		return rt, err
	}
	if rt.plaintext {
		if err := t.checkNoProxy(req); err != nil {
			return rt, err
		}
	}
	return rt, nil
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
	if rt, err = t.checkedRoute(req); err != nil {
		return nil, creds, rt, err
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

	o := cloneRequest(req)
	out = &o.req
	pp, err := t.payload(out, &rt, presign)
	bodyOwned = !pp.consumed
	if err != nil {
		return nil, creds, rt, err
	}
	s := &signing{
		creds:       creds,
		service:     rt.service,
		region:      rt.region,
		policy:      pol,
		payloadHash: pp.hash,
		time:        t.now(),
		presign:     presign,
		expires:     expirySeconds,
		logger:      t.Logger,
		values:      &o.values,
		sigv4a:      rt.sigv4a,
		keys:        &t.ecdsa,
	}
	if err = sign(req.Context(), out, s); err != nil {
		return nil, creds, rt, err
	}
	if pp.chunked != nil {
		if err = attachChunked(req.Context(), out, pp.chunked, s); err != nil {
			return nil, creds, rt, err
		}
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
// X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256 and, for
// SigV4a, X-Amz-Region-Set.
const signingHeaders = 5

// outgoing is a request's signed clone, its URL, and the values of the
// headers signing adds itself, allocated together.
type outgoing struct {
	req    http.Request
	url    url.URL
	values headerValues
}

// cloneRequest is req.Clone(req.Context()) made for signing, in two
// allocations fewer: the clone and its URL are one, and the header map
// has room for the headers signing adds, so that adding them does not
// grow it. Like Clone it copies the header values, the trailer and
// TransferEncoding, which signing or the base transport may change; the
// server-side form fields are shared, as nothing on the client writes
// them.
func cloneRequest(req *http.Request) *outgoing {
	o := &outgoing{req: *req, url: *req.URL}
	if u := req.URL.User; u != nil {
		user := *u
		o.url.User = &user
	}
	o.req.URL = &o.url
	o.req.Header = cloneHeader(req.Header, signingHeaders)
	o.req.Trailer = req.Trailer.Clone()
	o.req.TransferEncoding = slices.Clone(req.TransferEncoding)
	return o
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

func isWebSocket(r *http.Request) bool {
	return r.URL.Scheme == "ws" || r.URL.Scheme == "wss" || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
