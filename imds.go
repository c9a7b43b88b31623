package kivuli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/go-retryablehttp"
)

const (
	// defaultTokenTTL is the lifetime asked for an IMDSv2 session token:
	// six hours, the longest IMDS grants.
	defaultTokenTTL = 6 * time.Hour
	// defaultBudget bounds one IMDS call whose context has no deadline: all
	// its requests, retries and backoff included.
	defaultBudget = 5 * time.Second

	ipv4Endpoint = "http://169.254.169.254"
	ipv6Endpoint = "http://[fd00:ec2::254]"

	tokenPath     = "/latest/api/token"
	rolesPath     = "/latest/meta-data/iam/security-credentials/"
	ttlHeader     = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenHeader   = "X-Aws-Ec2-Metadata-Token"
	maxBody       = 64 << 10
	maxTokenLen   = 4096 // real tokens are 56 characters
	dialTimeout   = 250 * time.Millisecond
	headerTimeout = 500 * time.Millisecond
	// requestTimeout bounds each request of the default client, its body
	// included; documents are a few KiB from a link-local service.
	requestTimeout = time.Second

	defaultMaxAttempts = 4
	retryWaitMin       = 100 * time.Millisecond
	retryWaitMax       = time.Second
)

// IMDS is an [aws.CredentialsProvider] that reads the instance role's
// credentials from the EC2 Instance Metadata Service on every call to
// Retrieve, without caching them: wrap it with [New] (the default source of
// [New]) or [aws.NewCredentialsCache]. It caches only the IMDSv2 session
// token.
//
// It asks for an IMDSv2 session token first, and falls back to IMDSv1 for
// the current call only when the token request answers 403, 404 or 405 or
// times out; AWS_EC2_METADATA_V1_DISABLED=true forbids the fallback. A 401
// drops the token and the request is made once more with a new one. Requests
// that fail with a 5xx or 429 status or a broken connection are retried with
// jittered, capped backoff; requests that find nothing listening are not, so
// that off EC2 Retrieve fails with [ErrNotOnEC2] in about a second.
//
// It remembers whether IMDS has ever answered: [ErrNotOnEC2] means that
// nothing has, not that a running instance's IMDS misbehaves.
//
// An IMDS is safe for concurrent use. Call [IMDS.CloseIdleConnections] when
// done with it ([Credentials.Close] does) to release its keep-alive
// connection.
type IMDS struct {
	endpoint   string
	role       string
	noToken    bool
	v1Disabled bool
	disabled   bool
	tokenTTL   time.Duration
	hc         *http.Client // sends each attempt; each call retries with a client of its own (newOperation)
	maxRetries int
	ownsConns  bool // the http.Transport is kivuli's own (made or cloned), not the caller's

	// st is the mutable state, behind a pointer so that a copy of an IMDS
	// value (fmt.Sprintf("%v", *p)) shows an address, never the token.
	st *imdsState
}

// imdsState is the mutable state of an [IMDS].
type imdsState struct {
	answered atomic.Bool // some request of this IMDS has had an answer

	mu           sync.Mutex // guards token and tokenExpires
	token        string
	tokenExpires time.Time
}

// String keeps the session token out of any formatting of the state.
func (*imdsState) String() string { return "{session token redacted}" }

var _ aws.CredentialsProvider = (*IMDS)(nil)

// NewIMDS returns an IMDS credential provider configured by opts
// ([WithRoleName], [WithEndpoint], [WithoutAPIToken], [WithTokenTTL],
// [WithMaxAttempts], [WithHTTPClient]) and the environment variables
// AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_V1_DISABLED,
// AWS_EC2_METADATA_SERVICE_ENDPOINT and AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE,
// read once, here. It makes no request.
func NewIMDS(opts ...Option) (*IMDS, error) {
	return newIMDS(newConfig(opts))
}

func newIMDS(c config) (*IMDS, error) {
	endpoint, err := resolveEndpoint(c.endpoint)
	if err != nil {
		return nil, err
	}
	if c.tokenTTL < time.Second || c.tokenTTL > defaultTokenTTL {
		return nil, invalid(ErrInvalidConfig, "token TTL: %v is outside 1s..6h", c.tokenTTL)
	}
	if c.maxAttempts < 1 {
		return nil, invalid(ErrInvalidConfig, "max attempts: %d is less than 1", c.maxAttempts)
	}
	if c.role != "" && !validRoleName(c.role) {
		return nil, invalid(ErrInvalidConfig, "role name: %q is not an IAM role name (1 to 64 of A-Z a-z 0-9 +=,.@_-)", c.role)
	}
	p := &IMDS{
		endpoint:   endpoint,
		role:       c.role,
		noToken:    c.noToken,
		v1Disabled: envTrue("AWS_EC2_METADATA_V1_DISABLED"),
		disabled:   envTrue("AWS_EC2_METADATA_DISABLED"),
		tokenTTL:   c.tokenTTL.Truncate(time.Second),
		maxRetries: c.maxAttempts - 1,
		st:         &imdsState{},
	}
	p.hc, p.ownsConns = imdsHTTPClient(c.httpClient)
	return p, nil
}

func envTrue(name string) bool { return strings.EqualFold(os.Getenv(name), "true") }

func resolveEndpoint(explicit string) (string, error) {
	setting, endpoint := "endpoint", explicit
	if endpoint == "" {
		setting, endpoint = "AWS_EC2_METADATA_SERVICE_ENDPOINT", os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	if endpoint == "" {
		switch mode := os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); {
		case mode == "" || strings.EqualFold(mode, "IPv4"):
			return ipv4Endpoint, nil
		case strings.EqualFold(mode, "IPv6"):
			return ipv6Endpoint, nil
		default:
			return "", invalid(ErrInvalidConfig, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: %q is neither IPv4 nor IPv6", mode)
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return "", invalid(ErrInvalidConfig, setting+": %q is not an http(s)://host[:port] URL", endpoint)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// imdsHTTPClient returns the client for IMDS requests: never through a proxy,
// never following a redirect (which would carry the session token along).
// owned reports that its transport is kivuli's own, made here or cloned from
// the caller's, so that kivuli may close its idle connections.
func imdsHTTPClient(hc *http.Client) (_ *http.Client, owned bool) {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	switch t := c.Transport.(type) {
	case nil:
		owned = true
		if hc != nil {
			c.Transport = noProxy(http.DefaultTransport.(*http.Transport))
			break
		}
		c.Transport = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: headerTimeout,
			MaxIdleConns:          2,
			IdleConnTimeout:       90 * time.Second,
		}
		// The whole request, body included: an IMDS (or a proxy in front
		// of it) that sends headers and then stalls must not hold a
		// refresh, and the callers waiting for it, for long.
		c.Timeout = requestTimeout
	case *http.Transport:
		owned = true
		c.Transport = noProxy(t)
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c, owned
}

// CloseIdleConnections closes the idle keep-alive connections to IMDS, and
// with them their goroutines, when the HTTP transport is kivuli's own: the
// default one, or the copy made of the [*http.Transport] of a client given
// with [WithHTTPClient]. A transport of another type is the caller's, used
// as it is, and left alone. A later Retrieve opens a new connection.
// [Credentials.Close] calls it.
func (p *IMDS) CloseIdleConnections() {
	if p.ownsConns {
		p.hc.CloseIdleConnections()
	}
}

func noProxy(t *http.Transport) *http.Transport {
	t = t.Clone()
	t.Proxy = nil
	return t
}

// String describes the provider without its session token.
func (p *IMDS) String() string {
	role := p.role
	if role == "" {
		role = "(discovered)"
	}
	return fmt.Sprintf("kivuli.IMDS{endpoint: %s, role: %s, IMDSv2: %t}", p.endpoint, role, !p.noToken)
}

// GoString is like String, so that %#v prints no session token.
func (p *IMDS) GoString() string { return p.String() }

// operation is the state of one call of an IMDS (Retrieve, Region), made
// of several requests, which its retry policy reads (retrypolicy.go).
type operation struct {
	answered bool // some response arrived, now or before: something is listening
	v1       bool // this call fell back to IMDSv1
	put      bool // the request in flight is the token PUT

	onRetry func()                // called when an attempt has failed and is retried; may be nil
	client  *retryablehttp.Client // retries this call's requests, with this operation's policy
}

// newOperation returns the state of one call, which starts from what p
// already knows (that IMDS has answered before), and the client that sends
// its requests, whose retry policy reads that state.
func (p *IMDS) newOperation(ctx context.Context) *operation {
	op := &operation{answered: p.st.answered.Load()}
	op.onRetry, _ = ctx.Value(retryHookKey{}).(func())
	op.client = &retryablehttp.Client{
		HTTPClient:   p.hc,
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     p.maxRetries,
		CheckRetry:   op.checkRetry,
		Backoff:      jitteredBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return op
}

// imdsCall makes fn, one call of p (Retrieve's, Region's), which may make
// several requests, after the preamble every call shares: refused when IMDS
// is disabled, bounded by defaultBudget when ctx has no deadline. fn's
// requests share one operation.
func imdsCall[T any](ctx context.Context, p *IMDS, fn func(context.Context, *operation) (T, error)) (T, error) {
	if p.disabled {
		var zero T
		return zero, ErrIMDSDisabled
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultBudget)
		defer cancel()
	}
	return fn(ctx, p.newOperation(ctx))
}

// Retrieve fetches the role's credentials: a session token (cached), the role
// name (unless given with [WithRoleName]), then the credential document. The
// context bounds everything; without a deadline, 5 seconds do.
func (p *IMDS) Retrieve(ctx context.Context) (aws.Credentials, error) {
	return imdsCall(ctx, p, p.credentials)
}

// credentials is Retrieve's call.
func (p *IMDS) credentials(ctx context.Context, op *operation) (aws.Credentials, error) {
	role := p.role
	if role == "" {
		body, err := p.get(ctx, op, "role", rolesPath)
		if err != nil {
			return aws.Credentials{}, err
		}
		role, _, _ = strings.Cut(string(body), "\n")
		if role = strings.TrimSpace(role); role == "" {
			return aws.Credentials{}, chain(ErrNoRole, "the role list is empty", nil)
		}
		if !validRoleName(role) {
			// Never quoted: a proxy answering with the credential
			// document would put the secret in every error.
			return aws.Credentials{}, invalidDoc(fmt.Sprintf("the role list's first line (%d bytes, not shown) is not an IAM role name", len(role)))
		}
	}
	body, err := p.get(ctx, op, "credentials", rolesPath+url.PathEscape(role))
	if err != nil {
		return aws.Credentials{}, err
	}
	return parseDocument(role, body)
}

// validRoleName reports whether name is an IAM role name: 1 to 64 letters,
// digits and the characters +=,.@_-.
func validRoleName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+=,.@_-", c) >= 0) {
			return false
		}
	}
	return true
}

// get makes one GET request (with the retries of the client) and returns the
// body of a 200 answer. A 401 drops the session token and the request is
// made once more with a new one; so does a request that could not be sent.
// what names the request in errors ("role", "credentials", "region"); ctx
// and op are imdsCall's.
func (p *IMDS) get(ctx context.Context, op *operation, what, path string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		token, err := p.sessionToken(ctx, op)
		if err != nil {
			return nil, err
		}
		resp, err := p.do(ctx, op, http.MethodGet, path, tokenHeader, token)
		if err != nil {
			// Whatever failed, the token may be why (net/http refuses a
			// header value it cannot send): never keep using it.
			p.dropToken(token)
			return nil, p.transportError(ctx, op, what, err)
		}
		body, err := readBody(resp)
		switch {
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			p.dropToken(token)
			op.v1 = false // IMDSv2 is required after all: ask for a token again
			continue
		case resp.StatusCode == http.StatusOK && err != nil:
			return nil, p.transportError(ctx, op, what, err)
		case resp.StatusCode == http.StatusOK:
			return body, nil
		}
		ierr := newIMDSError(what, path, resp.StatusCode, body)
		if resp.StatusCode == http.StatusNotFound && (what == "role" || what == "credentials") {
			return nil, chain(ErrNoRole, "", ierr)
		}
		return nil, ierr
	}
}

// sessionToken returns the IMDSv2 token to send, or "" to make an IMDSv1
// request.
func (p *IMDS) sessionToken(ctx context.Context, op *operation) (string, error) {
	if p.noToken || op.v1 {
		return "", nil
	}
	st := p.st
	st.mu.Lock()
	token, valid := st.token, time.Now().Before(st.tokenExpires)
	st.mu.Unlock()
	if token != "" && valid {
		return token, nil
	}

	start := time.Now()
	op.put = true
	resp, err := p.do(ctx, op, http.MethodPut, tokenPath, ttlHeader, strconv.Itoa(int(p.tokenTTL/time.Second)))
	op.put = false
	if err != nil {
		if ctx.Err() == nil && isTimeout(err) {
			// A container with hop limit 1 drops the answer to the PUT.
			return p.fallback(op, err)
		}
		return "", p.transportError(ctx, op, "token", err)
	}
	body, err := readBody(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		if err != nil {
			return "", p.transportError(ctx, op, "token", err)
		}
		token = strings.TrimSpace(string(body))
		if note := checkToken(token); note != "" {
			// Never cached: the next call asks again.
			return "", &IMDSError{Op: "token", Path: tokenPath, StatusCode: resp.StatusCode, Body: note, BodyLen: len(body)}
		}
		// Keep a margin so that a token is never sent in its last moments.
		margin := min(p.tokenTTL/10, time.Minute)
		st.mu.Lock()
		st.token, st.tokenExpires = token, start.Add(p.tokenTTL-margin)
		st.mu.Unlock()
		return token, nil
	case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return p.fallback(op, newIMDSError("token", tokenPath, resp.StatusCode, body))
	}
	return "", newIMDSError("token", tokenPath, resp.StatusCode, body)
}

// checkToken returns why a session token cannot be used, or "": it must be
// 1 to 4096 visible ASCII characters, so that it can be sent as a header
// value (net/http refuses control characters) and is never a body of
// unbounded size repeated on every request.
func checkToken(token string) string {
	switch {
	case token == "":
		return "(empty token)"
	case len(token) > maxTokenLen:
		return fmt.Sprintf("(token of %d bytes, over %d)", len(token), maxTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c < 0x21 || c > 0x7e {
			return "(token holds a character that cannot be sent in a header)"
		}
	}
	return ""
}

// fallback switches this call, and only this call, to IMDSv1.
func (p *IMDS) fallback(op *operation, cause error) (string, error) {
	if p.v1Disabled {
		return "", chain(ErrIMDSv1Disabled, "", cause)
	}
	op.v1 = true
	return "", nil
}

func (p *IMDS) dropToken(token string) {
	if token == "" {
		return
	}
	st := p.st
	st.mu.Lock()
	if st.token == token {
		st.token = ""
	}
	st.mu.Unlock()
}

func (p *IMDS) do(ctx context.Context, op *operation, method, path, header, value string) (*http.Response, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, method, p.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	if value != "" {
		req.Header.Set(header, value)
	}
	resp, err := op.client.Do(req)
	if resp != nil {
		op.answered = true
		p.st.answered.Store(true)
	}
	return resp, err
}

// transportError wraps a failed request: ErrNotOnEC2 when nothing has ever
// answered, during this call or before.
func (p *IMDS) transportError(ctx context.Context, op *operation, what string, err error) error {
	if !op.answered && !p.st.answered.Load() {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return chain(ErrNotOnEC2, what+" at "+p.endpoint, err)
	}
	return wrap("IMDS "+what+" request", err)
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return b, err
	}
	if len(b) > maxBody {
		return b[:maxBody], invalidDoc("response larger than 64 KiB")
	}
	return b, nil
}

// document is the JSON credential document served by IMDS.
type document struct {
	Code            string
	Message         string
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	Token           string
	Expiration      string
}

// parseDocument validates a credential document: complete, and made of
// the characters AWS issues (see issuedKeyID), so that no consumer, such
// as a shell evaluating kivuli creds, gets a value that means more than
// its text. Its errors never quote the document.
func parseDocument(role string, body []byte) (aws.Credentials, error) {
	var d document
	if err := json.Unmarshal(body, &d); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return aws.Credentials{}, invalid(ErrInvalidDocument, "not JSON (syntax error at offset %d)", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return aws.Credentials{}, invalid(ErrInvalidDocument, "field %s is a JSON %s, not a %s", te.Field, te.Value, te.Type)
		}
		return aws.Credentials{}, invalidDoc("not a JSON object")
	}
	if d.Code != "Success" {
		if d.Code == "" {
			return aws.Credentials{}, invalidDoc("missing Code")
		}
		secrets := []string{d.AccessKeyID, d.SecretAccessKey, d.Token}
		return aws.Credentials{}, &CredentialsError{Role: role, Code: redactSecrets(d.Code, secrets...), Message: redactSecrets(d.Message, secrets...)}
	}
	for _, f := range [...]struct{ name, value string }{
		{"AccessKeyId", d.AccessKeyID}, {"SecretAccessKey", d.SecretAccessKey}, {"Token", d.Token}, {"Expiration", d.Expiration},
	} {
		if f.value == "" {
			return aws.Credentials{}, invalidDoc("missing " + f.name)
		}
	}
	if !issuedKeyID(d.AccessKeyID) {
		return aws.Credentials{}, invalidDoc("AccessKeyId holds characters AWS never issues (a key ID is letters, digits and _)")
	}
	for _, f := range [...]struct{ name, value string }{{"SecretAccessKey", d.SecretAccessKey}, {"Token", d.Token}} {
		if !issuedBase64(f.value) {
			return aws.Credentials{}, invalidDoc(f.name + " holds characters AWS never issues (it is base64: letters, digits, +, / and =)")
		}
	}
	exp, err := time.Parse(time.RFC3339, d.Expiration)
	if err != nil {
		return aws.Credentials{}, invalidDoc("Expiration is not an RFC 3339 time")
	}
	return aws.Credentials{
		AccessKeyID:     d.AccessKeyID,
		SecretAccessKey: d.SecretAccessKey,
		SessionToken:    d.Token,
		Source:          "kivuli.IMDS",
		CanExpire:       true,
		Expires:         exp,
	}, nil
}

// printable reports whether s holds only visible ASCII characters, as
// access keys, secret keys and session tokens do.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
