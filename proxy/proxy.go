package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kivuli-go/kivuli"
)

// The proxy is an httputil.ReverseProxy whose Transport is a chain:
//
//	ReverseProxy: upstream fixed, hop-by-hop headers removed
//	  -> proxy.RoundTrip: headers split into signed and unsigned, Host set
//	     -> kivuli.RetryingTransport (a rewindable body), or kivuli.Transport
//	        -> kivuli.Transport: the host rules, the policy table, signing
//	           -> lastHop: the unsigned headers and Via added back
//	              -> http.Transport: the upstream's connection pool
//
// Signing is the last step that looks at the headers, so nothing can drop
// or change a header after it has been signed.

// proxyConfig is a proxy's configuration, from the flags.
type proxyConfig struct {
	upstream              *url.URL // scheme://host[:port][/path]
	serverName            string   // the name the upstream's certificate is verified for, when not its host
	signHost              string   // the host signed for, when not the upstream's
	service, region       string   // the signing scope, when the host does not tell it
	allowHosts            []string // hosts besides AWS endpoints that may be sent signed requests
	unsignedPayload       bool
	maxBody, maxBuffer    int64
	memoryBudget          int64 // the bytes all buffered bodies may hold together
	spoolDir              string
	maxSpool              int64 // the bytes all spooled bodies may hold together
	maxHeaders            int64 // the bytes of a request's line and headers
	maxConns              int   // client connections open at once
	maxRequests           int   // requests served at once
	queueTimeout          time.Duration
	bodyIdleTimeout       time.Duration // 0: none
	tls                   bool          // the listener speaks TLS
	headers               *headerRules
	maxAttempts           int // 1: no retries
	maxIdleConns          int
	idleConnTimeout       time.Duration
	responseHeaderTimeout time.Duration
	verbose               bool
	guard                 *guard // the Host and origin rules (nil: IP literals and localhost, no other origin)
}

// proxy is the signing reverse proxy: its handler, its transport chain,
// its admin endpoints and its metrics.
type proxy struct {
	upstream *url.URL
	signHost string
	// service and region are the scope the signer chose for the upstream
	// at start, for the log; s3 says that bodies must have a length and
	// may stream, stream that they may (S3, --unsigned-payload).
	service, region string
	s3, stream      bool

	maxBody, maxBuffer int64
	spoolDir           string
	mem, disk          budget // the bytes of bodies in memory, and spooled
	headers            *headerRules
	admit              *admission
	conns              atomic.Pointer[connLimit] // the listener's, once it listens
	bodyIdle           time.Duration
	// prefixed: the upstream has a path, which a client's path must not
	// climb out of.
	prefixed bool

	creds   *kivuli.Credentials
	signer  *kivuli.Transport
	retrier http.RoundTripper // nil without retries
	rp      *httputil.ReverseProxy
	guard   *guard
	via     string // this process's pseudonym in Via headers
	log     *slog.Logger
	m       *proxyMetrics

	draining atomic.Bool
	upgrades tracker // handlers of upgraded connections, which Shutdown does not wait for
	hardStop context.Context
	stopHard context.CancelFunc
	stopSubs func()
}

// newProxy makes a proxy over base, which sends the signed requests (nil:
// an http.Transport pooled as cfg says). ctx bounds the start-up check of
// the upstream. It refuses an upstream the signer would refuse, with the
// signer's error.
func newProxy(ctx context.Context, cfg proxyConfig, creds *kivuli.Credentials, base http.RoundTripper, log *slog.Logger) (*proxy, error) {
	if base == nil {
		base = newUpstreamTransport(cfg)
	}
	p := &proxy{
		upstream:  cfg.upstream,
		signHost:  cfg.signHost,
		maxBody:   cfg.maxBody,
		maxBuffer: cfg.maxBuffer,
		spoolDir:  cfg.spoolDir,
		headers:   cfg.headers,
		creds:     creds,
		via:       viaToken(),
		log:       log,
	}
	p.mem.limit = max(cfg.memoryBudget, cfg.maxBuffer)
	p.disk.limit = cfg.maxSpool
	p.admit = newAdmission(max(cfg.maxRequests, 1), cfg.queueTimeout)
	p.bodyIdle = cfg.bodyIdleTimeout
	p.prefixed = hasPrefix(cfg.upstream)
	p.hardStop, p.stopHard = context.WithCancel(context.Background())
	p.m = newProxyMetrics(p)
	p.guard = p.m.guarded(cfg.guard)
	policies := kivuli.DefaultPolicies()
	if cfg.unsignedPayload {
		for k, pol := range policies {
			pol.Payload = kivuli.PayloadUnsigned
			policies[k] = pol
		}
	}
	p.signer = &kivuli.Transport{
		Credentials:  creds,
		Service:      cfg.service,
		Region:       cfg.region,
		Base:         &lastHop{next: base, p: p},
		Policies:     policies,
		AllowedHosts: cfg.allowHosts,
		// Bodies reach the signer hashable (buffered or spooled, with
		// GetBody) or to be sent UNSIGNED-PAYLOAD: it must never buffer
		// one itself.
		MaxBufferedBody: -1,
	}
	if cfg.verbose {
		p.signer.Logger = log
	}
	if cfg.maxAttempts > 1 {
		p.retrier = newRetrier(p.signer, cfg.maxAttempts)
	}
	var err error
	if p.service, p.region, err = p.scope(ctx); err != nil {
		return nil, err
	}
	p.s3 = p.service == "s3" || p.service == "s3-object-lambda"
	p.stream = p.s3 || cfg.unsignedPayload
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: p,
		// Every write is flushed at once: server-sent events, event streams
		// (Bedrock, Lambda response streaming) and chunked answers reach
		// the client as they arrive; a download's writes are whole buffers.
		FlushInterval: -1,
		BufferPool:    responseBuffers{},
		ErrorHandler:  p.proxyError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	p.stopSubs = p.m.watchCredentials(creds)
	return p, nil
}

// newRetrier is the retrying transport over the signer, making at most
// attempts attempts: the library's policy (idempotent or not, a request
// that can be sent again is retried on 5xx, throttling and broken
// connections, re-signed each time; an expired token refreshes the
// credentials once), and its waits (100 ms to 5 s, jittered).
func newRetrier(t *kivuli.Transport, attempts int) http.RoundTripper {
	return kivuli.NewRetryingTransport(t, func(o *kivuli.RetryOptions) { o.MaxAttempts = attempts })
}

// newUpstreamTransport is the upstream's connection pool, sized for a
// sidecar: many idle connections kept per host (net/http keeps 2, which
// under load means a new TLS handshake for most requests), answers passed
// through as they are (no transparent gzip), HTTP/2 where the upstream
// offers it.
func newUpstreamTransport(cfg proxyConfig) *http.Transport {
	var tlsConfig *tls.Config
	if cfg.serverName != "" {
		tlsConfig = &tls.Config{ServerName: cfg.serverName}
	}
	return &http.Transport{
		TLSClientConfig:       tlsConfig,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   cfg.maxIdleConns,
		IdleConnTimeout:       cfg.idleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: cfg.responseHeaderTimeout,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}

// scope asks the signer, without sending anything, which scope it signs
// requests to the upstream with, by presigning a request to its root: the
// same host rules and inference as every request will meet, checked at
// start. The URL, which carries a signature, is dropped at once.
func (p *proxy) scope(ctx context.Context) (service, region string, err error) {
	u := &url.URL{Scheme: p.upstream.Scheme, Host: p.upstream.Host, Path: "/"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", "", usageErrorf("--upstream: %v", err)
	}
	req.Host = p.signHost
	signed, err := p.signer.Presign(req, time.Second)
	if err != nil {
		return "", "", err
	}
	su, err := url.Parse(signed)
	if err != nil {
		return "", "", fmt.Errorf("kivuli: reading the presigned scope: %w", err)
	}
	// AKID/DATE/REGION/SERVICE/aws4_request
	parts := strings.Split(su.Query().Get("X-Amz-Credential"), "/")
	if len(parts) != 5 {
		return "", "", errors.New("kivuli: the signer gave no credential scope")
	}
	return parts[3], parts[2], nil
}

// close stops what newProxy started.
func (p *proxy) close() {
	p.stopHard()
	p.stopSubs()
}

// requestState is what the transport chain learns of one request, for
// its error status, its log line and its metrics.
type requestState struct {
	sent     atomic.Bool  // the signer passed a request on: an error is the upstream's
	attempts atomic.Int32 // requests sent upstream
	stalled  atomic.Bool  // the client's body stalled (--body-idle-timeout)
	mu       sync.Mutex
	errMsg   string
}

func (s *requestState) setErr(msg string) {
	s.mu.Lock()
	s.errMsg = msg
	s.mu.Unlock()
}

func (s *requestState) err() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errMsg
}

type stateKey struct{}

func stateOf(ctx context.Context) *requestState {
	s, _ := ctx.Value(stateKey{}).(*requestState)
	if s == nil {
		s = &requestState{}
	}
	return s
}

// ServeHTTP forwards one request to the upstream, signed.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	st := &requestState{}
	p.m.inFlight.Add(1)
	var b *proxyBody
	defer func() {
		p.m.inFlight.Add(-1)
		p.finish(r, rec, st, b, start)
	}()
	refuse := func(he *httpError) { p.refuse(rec, r, st, he) }
	// net/http reads the rest of an unread body after the handler by its
	// type (none after an unanswered Expect: 100-continue): it gets back
	// the body it gave.
	defer func(body io.ReadCloser) { r.Body = body }(r.Body)
	if r.Body != nil && r.Body != http.NoBody && p.bodyIdle > 0 {
		defer p.watchBody(rec, r, st)()
	}
	if he := p.check(r); he != nil {
		refuse(he)
		return
	}
	if !p.takeTurn(rec, r, st) {
		return
	}
	defer p.admit.leave()
	var err error
	if b, err = p.prepareBody(r); err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{status: http.StatusBadRequest, msg: message(err)}
		}
		refuse(he)
		return
	}
	defer b.release()
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if upgradeType(r.Header) != "" {
		// Shutdown does not wait for a hijacked connection: the drain does,
		// and ends it when its time is up (ReverseProxy closes both sides
		// of a tunnel when the request's context ends).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(p.hardStop, cancel)()
		p.upgrades.add()
		defer p.upgrades.done()
	}
	p.rp.ServeHTTP(rec, r.WithContext(ctx))
}

// refuse answers a request that is not forwarded with he, counting the
// limit that refused it.
func (p *proxy) refuse(w http.ResponseWriter, r *http.Request, st *requestState, he *httpError) {
	st.setErr(he.msg)
	if he.limit != "" {
		p.m.limited.inc(he.limit)
	}
	if he.retryAfter != "" {
		w.Header().Set("Retry-After", he.retryAfter)
	}
	if r.ContentLength != 0 {
		// What is left of the body is not wanted: the connection is not
		// reused after it.
		w.Header().Set("Connection", "close")
	}
	http.Error(w, he.msg, he.status)
}

// watchBody makes r's body one that must keep moving (--body-idle-timeout),
// and returns what bounds the reading of its rest once the request is
// done. It comes before any refusal: after the handler, net/http reads up
// to 256 KiB of an unread body, and a stalled one would hold the
// connection for ever.
func (p *proxy) watchBody(w http.ResponseWriter, r *http.Request, st *requestState) (done func()) {
	ib := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: p.bodyIdle,
		onStall: func() { st.stalled.Store(true) }}
	r.Body = ib
	return ib.done
}

// takeTurn waits for the request's turn (--max-requests), and answers it
// when there is none.
func (p *proxy) takeTurn(rec *statusRecorder, r *http.Request, st *requestState) bool {
	if p.admit.enter(r.Context()) {
		return true
	}
	if r.Context().Err() != nil {
		rec.status = statusClientClosed
		st.setErr("the client went away while the request waited for its turn (--max-requests)")
		return false
	}
	p.refuse(rec, r, st, &httpError{status: http.StatusServiceUnavailable, limit: "max_requests", retryAfter: "1",
		msg: fmt.Sprintf("kivuli proxy: too many requests at once (--max-requests %d), none finished within --queue-timeout: try again shortly", cap(p.admit.slots))})
	return false
}

// check refuses a request that is not forwarded at all, before it takes a
// turn or its body is read.
func (p *proxy) check(r *http.Request) *httpError {
	if rf := p.guard.check(r); rf != nil {
		return &httpError{status: rf.status, msg: rf.msg}
	}
	switch {
	case seenBefore(r.Header, p.via):
		return &httpError{status: http.StatusLoopDetected, msg: "kivuli proxy: this request has come through this proxy before: --upstream leads back to it"}
	case r.Method == http.MethodConnect:
		return &httpError{status: http.StatusMethodNotAllowed, msg: "kivuli proxy: CONNECT is not forwarded: this is a reverse proxy to " + p.upstream.Host}
	case r.RequestURI == "*":
		return &httpError{status: http.StatusBadRequest, msg: "kivuli proxy: a request for * is not forwarded"}
	case p.prefixed && climbs(r.URL.EscapedPath()):
		return &httpError{status: http.StatusBadRequest, msg: "kivuli proxy: the path climbs out of the --upstream's path " + p.upstream.EscapedPath() + " (a '..' segment, or one encoded, above it): the client never chooses where a request goes"}
	case awsChunked(r.Header):
		// The client signed its chunks itself (aws-chunked framing):
		// forwarded as a plain body, the framing would be stored as the
		// object's content (aws-sigv4-proxy#87).
		return &httpError{status: http.StatusBadRequest, msg: "kivuli proxy: the body is aws-chunked (X-Amz-Content-Sha256: STREAMING-..., signed chunk by chunk by the client): configure the client to send a plain body, which the proxy signs"}
	}
	return nil
}

// awsChunked reports a body in aws-chunked framing.
func awsChunked(h http.Header) bool {
	return strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") ||
		h.Get("X-Amz-Decoded-Content-Length") != "" ||
		slices.ContainsFunc(h.Values("Content-Encoding"), func(v string) bool { return strings.Contains(strings.ToLower(v), "aws-chunked") })
}

// upgradeType is the protocol a request asks to switch to, or "".
func upgradeType(h http.Header) string {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// rewrite points the outgoing request at the upstream, whatever the
// client's Host, absolute-form URI or X-Forwarded-Host said (ReverseProxy
// has removed the forwarding headers), and keeps the client's query as it
// was sent: ReverseProxy re-encodes one it cannot parse, and the signer
// refuses such a query with a clear error instead.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.URL.ForceQuery = false
	pr.Out.Host = p.signHost
}

// hop is what the signer must not see but the upstream must get: the
// unsigned headers, and for a WebSocket handshake the real scheme.
type hop struct {
	unsigned http.Header
	scheme   string // the URL's scheme, when it was made ws or wss for the signer
	state    *requestState
}

type hopKey struct{}

// RoundTrip is the ReverseProxy's transport: it gives the signer the
// request with the headers to sign only, the others kept for lastHop, and
// picks the retrying transport for a request that can be sent again.
func (p *proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	signed, unsigned := p.headers.split(req.Header)
	h := &hop{unsigned: unsigned, state: stateOf(req.Context())}
	out := req.WithContext(context.WithValue(req.Context(), hopKey{}, h))
	out.Header = signed
	out.RequestURI = "" // a client request has none
	up := upgradeType(req.Header)
	if strings.EqualFold(up, "websocket") {
		// The policy table signs a WebSocket handshake as the service
		// wants it (Transcribe and IoT presign it), and the signer knows
		// one by its scheme: the Upgrade header is not signed.
		u := *req.URL
		h.scheme = u.Scheme
		u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
		out.URL = &u
	}
	oneShot := out.Body != nil && out.Body != http.NoBody && out.GetBody == nil
	if up != "" || oneShot || p.retrier == nil {
		return p.signer.RoundTrip(out)
	}
	return p.retrier.RoundTrip(out)
}

// lastHop is the signer's Base: it adds the unsigned headers back and this
// proxy's Via entry, then sends the request upstream.
type lastHop struct {
	next http.RoundTripper
	p    *proxy
}

// ProxyURL tells the signer whether the request goes through a proxy,
// which a request in clear must not: as next says.
func (l *lastHop) ProxyURL(req *http.Request) (*url.URL, error) {
	return kivuli.ProxyURLOf(l.next, req)
}

func (l *lastHop) RoundTrip(req *http.Request) (*http.Response, error) {
	h, _ := req.Context().Value(hopKey{}).(*hop)
	out := *req // the signer's own clone, shallow-copied: its header map is not changed
	out.Header = make(http.Header, len(req.Header)+8)
	for k, vv := range req.Header {
		out.Header[k] = vv
	}
	if h != nil {
		for k, vv := range h.unsigned {
			if _, ok := out.Header[k]; !ok {
				out.Header[k] = vv
			}
		}
		if h.scheme != "" {
			u := *req.URL
			u.Scheme = h.scheme
			out.URL = &u
		}
		h.state.sent.Store(true)
		h.state.attempts.Add(1)
	}
	out.Header["Via"] = append(slices.Clip(out.Header["Via"]), "1.1 "+l.p.via)
	start := time.Now()
	resp, err := l.next.RoundTrip(&out)
	l.p.m.upstreamSeconds.observe(time.Since(start).Seconds())
	if err != nil {
		l.p.m.upstreamRequests.inc("error")
		return nil, err
	}
	l.p.m.upstreamRequests.inc(statusClass(resp.StatusCode))
	return resp, nil
}

// statusClass is a status as a metric label: the code.
func statusClass(code int) string { return strconv.Itoa(code) }

// proxyError answers a request that could not be forwarded, with a status
// that says whose fault it was: 400 for a request the signer cannot sign
// as it is, 413 for a body too large, 503 for missing credentials, 502 for
// a refusal by the signer or a failed upstream, 504 for an upstream that
// timed out. A client that went away gets nothing.
func (p *proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the retrying client's http.Client wraps the transport's errors
	}
	status, reason := http.StatusBadGateway, ""
	sent := st.sent.Load()
	switch {
	case st.stalled.Load():
		// A streamed body the client stopped sending: its fault, not the
		// upstream's
		// (net/http has ended the request's context: it cannot read it).
		p.m.limited.inc("body_idle_timeout")
		msg := "kivuli proxy: reading the request body: " + errBodyStalled.Error() + ": the upload stalled"
		st.setErr(msg)
		w.Header().Set("Connection", "close") // nothing more is read of it
		http.Error(w, msg, http.StatusRequestTimeout)
		return
	case r.Context().Err() != nil:
		if rec, ok := w.(*statusRecorder); ok {
			rec.status = statusClientClosed
		}
		st.setErr("the client went away: " + err.Error())
		return
	case !sent && errors.Is(err, kivuli.ErrBodyTooLarge):
		status, reason = http.StatusRequestEntityTooLarge, "body_too_large"
	case !sent && errors.Is(err, kivuli.ErrHostNotAllowed):
		reason = "host_not_allowed"
	case !sent && errors.Is(err, kivuli.ErrPlaintext):
		reason = "plaintext"
	case !sent && errors.Is(err, kivuli.ErrUnknownScope):
		reason = "unknown_scope"
	case !sent && badRequest(err):
		status, reason = http.StatusBadRequest, "bad_request"
	case !sent:
		status, reason = http.StatusServiceUnavailable, "credentials"
	case isTimeout(err):
		status = http.StatusGatewayTimeout
	}
	msg := message(err)
	if reason != "" {
		p.m.signingErrors.inc(reason)
	} else {
		msg = "kivuli proxy: the upstream " + p.upstream.Host + " failed: " + strings.TrimPrefix(msg, "kivuli: ")
	}
	st.setErr(msg)
	http.Error(w, msg, status)
}

// statusClientClosed is the status logged for a client that went away
// before the answer (nginx's 499); it is never sent.
const statusClientClosed = 499

// badRequest reports a request the signer refused as it is (a query or
// path it cannot sign as the service reads it, a control character): the
// client's to fix.
func badRequest(err error) bool {
	return errors.Is(err, kivuli.ErrInvalidRequest)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// ready reports why the proxy cannot sign requests now, or nil: it is
// draining, or the credentials cannot be had or have expired.
func (p *proxy) ready(ctx context.Context) error {
	if p.draining.Load() {
		return errors.New("draining: shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := p.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("no credentials: %s", strings.TrimPrefix(err.Error(), "kivuli: "))
	}
	if v.CanExpire && !time.Now().Before(v.Expires) {
		return fmt.Errorf("the credentials expired at %s", v.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// finish logs the request and counts it.
func (p *proxy) finish(r *http.Request, rec *statusRecorder, st *requestState, b *proxyBody, start time.Time) {
	d := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	mode, in := bodyNone, int64(0)
	if b != nil {
		mode, in = b.mode, b.bytesIn()
	}
	p.m.requests.inc(strconv.Itoa(status), methodLabel(r.Method))
	p.m.duration.observe(d.Seconds())
	p.m.bodies.inc(mode)
	p.m.bodyBytes.add(uint64(in), mode)
	p.m.responseBytes.Add(uint64(rec.written))
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("query", logQuery(r.URL.RawQuery)),
		slog.Int("status", status),
		slog.String("body", mode),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", rec.written),
		slog.Int("attempts", int(st.attempts.Load())),
		slog.Duration("duration", d),
		slog.String("remote", r.RemoteAddr),
	}
	if e := st.err(); e != "" {
		attrs = append(attrs, slog.String("error", e))
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	p.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT":
		return m
	}
	return "other"
}

// logQuery is a query as logged: the values of the parameters that carry
// a signature or a session token, and the access key ID of a credential,
// replaced by REDACTED, as the library does.
func logQuery(raw string) string { return kivuli.RedactQuery(raw) }

// statusRecorder records the status and the bytes of an answer; it keeps
// the ResponseWriter's Flush and Hijack reachable (through Unwrap, as
// http.ResponseController finds them).
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// responseBuffers are ReverseProxy's copy buffers, pooled: 64 KiB, so that
// a large download is copied in few writes.
type responseBuffers struct{}

var responsePool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (responseBuffers) Get() []byte  { return *responsePool.Get().(*[]byte) }
func (responseBuffers) Put(b []byte) { responsePool.Put(&b) }

// tracker counts running handlers, for a drain to wait on.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n--; t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
}

// idle returns a channel closed when no handler runs.
func (t *tracker) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	return t.zero
}
