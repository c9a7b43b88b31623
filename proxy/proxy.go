package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/bytesize"
	"github.com/kivuli-go/kivuli/internal/guard"
)

// The proxy is an httputil.ReverseProxy whose Transport is a chain:
//
//	ReverseProxy: upstream fixed, hop-by-hop headers removed
//	  -> Proxy.roundTrip: headers split into signed and unsigned, Host set
//	     -> kivuli.RetryingTransport (a rewindable body), or kivuli.Transport
//	        -> kivuli.Transport: the host rules, the policy table, signing
//	           -> lastHop: the unsigned headers and Via added back
//	              -> http.Transport: the upstream's connection pool
//
// Signing is the last step that looks at the headers, so nothing can drop
// or change a header after it has been signed.

// Proxy is the signing reverse proxy, an [http.Handler]. Make one with
// [New]; it is safe for concurrent use.
type Proxy struct {
	upstream *url.URL
	signHost string
	// service and region are the scope the signer chose for the upstream
	// at start; s3 says that bodies must have a length and may stream,
	// stream that they may (S3, UnsignedPayload).
	service, region string
	s3, stream      bool

	maxBody, maxBuffer int64
	spoolDir           string
	mem, disk          *budget // the bytes of bodies in memory, and spooled
	headers            *headerRules
	admit              *admission
	bodyIdle           time.Duration
	// prefixed: the upstream has a path, which a client's path must not
	// climb out of.
	prefixed bool
	// route is the name of the Router's route this proxy serves, and strip
	// the path prefix removed before the path is joined to the upstream's
	// (without its last '/'): both "" for a proxy of its own.
	route, strip string

	signer   *kivuli.Transport
	retrier  http.RoundTripper // nil without retries
	rp       *httputil.ReverseProxy
	guard    *guard.Guard
	via      string // this process's pseudonym in Via headers
	viaEntry string // "1.1 " + via: what lastHop adds to Via
	obs      Observer
	onError  func(http.ResponseWriter, *http.Request, *RequestError)
	inFlight atomic.Int64

	upgrades tracker // handlers of upgraded connections, which http.Server.Shutdown does not wait for
	hardStop context.Context
	stopHard context.CancelFunc
}

// New makes a proxy as cfg says. ctx bounds its one look at the upstream:
// it asks the signer, sending nothing, which scope requests to it are
// signed with (which needs the credentials), so that an upstream the
// signer refuses is refused here, with the signer's error.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return newProxy(ctx, cfg, s, newBudgets(s.maxRequests, s.queueTimeout, s.memory, s.maxSpool))
}

// newProxy makes the proxy of cfg, checked as s, whose requests take
// their turns and body bytes from b: its own, or a Router's.
func newProxy(ctx context.Context, cfg Config, s *settings, b *budgets) (*Proxy, error) {
	var err error
	if cfg.Credentials == nil {
		return nil, invalid("Config.Credentials is required: the credentials that sign")
	}
	p := &Proxy{
		upstream:  s.upstream,
		signHost:  cfg.SignHost,
		maxBody:   s.maxBody,
		maxBuffer: s.maxBuffer,
		spoolDir:  s.spoolDir,
		headers:   s.headers,
		admit:     b.admit,
		mem:       b.mem,
		disk:      b.disk,
		bodyIdle:  s.bodyIdle,
		prefixed:  hasPrefix(s.upstream),
		guard:     s.guard,
		obs:       cfg.Observer,
		onError:   cfg.ErrorHandler,
	}
	p.setVia(viaToken())
	p.hardStop, p.stopHard = context.WithCancel(context.Background())
	p.signer = newSigner(cfg, s, p)
	if s.maxAttempts > 1 {
		p.retrier = newRetrier(p.signer, s.maxAttempts)
	}
	if p.service, p.region, err = p.scope(ctx); err != nil {
		return nil, err
	}
	p.s3 = p.service == "s3" || p.service == "s3-object-lambda"
	p.stream = p.s3 || cfg.UnsignedPayload
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: splitter{p},
		// No flushing of our own: ReverseProxy already flushes every write
		// of an answer of unknown length (event streams of Bedrock, Lambda
		// response streaming, S3 Select, anything chunked) and of
		// text/event-stream. An answer of known length goes out as
		// net/http buffers it: headers and a small body in one write,
		// where flushing each (-1) cost a timer, a goroutine and two more
		// writes per request, a quarter of the proxy's CPU on small GETs.
		FlushInterval: 0,
		BufferPool:    responseBuffers{},
		ErrorHandler:  p.proxyError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// ServeHTTP forwards one request to the upstream, signed.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	st := &requestState{req: r}
	p.inFlight.Add(1)
	var b *proxyBody
	noBody := r.Body == nil || r.Body == http.NoBody
	defer func() {
		p.inFlight.Add(-1)
		if noBody {
			p.sendNow(rec)
		}
		p.finish(r, rec, st, b, start)
	}()
	// net/http reads the rest of an unread body after the handler by its
	// type (none after an unanswered Expect: 100-continue): it gets back
	// the body it gave.
	defer func(body io.ReadCloser) { r.Body = body }(r.Body)
	if r.Body != nil && r.Body != http.NoBody && p.bodyIdle > 0 {
		defer p.watchBody(rec, r, st)()
	}
	if re := p.check(r); re != nil {
		p.refuse(rec, r, st, re)
		return
	}
	if !p.takeTurn(rec, r, st) {
		return
	}
	defer p.admit.leave()
	var err error
	if b, err = p.prepareBody(r); err != nil {
		var re *RequestError
		if !errors.As(err, &re) {
			re = &RequestError{Status: http.StatusBadRequest, Msg: message(err)}
		}
		p.refuse(rec, r, st, re)
		return
	}
	defer b.release()
	st.preEncoded = b.preEncoded
	p.forward(rec, r, st)
}

// setVia sets the pseudonym p gives itself in Via headers.
func (p *Proxy) setVia(via string) { p.via, p.viaEntry = via, "1.1 "+via }

// forward hands r to the ReverseProxy, with its state in its context.
func (p *Proxy) forward(rec *statusRecorder, r *http.Request, st *requestState) {
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if upgradeType(r.Header) != "" {
		// http.Server.Shutdown does not wait for a hijacked connection:
		// Shutdown does, and ends it when its time is up (ReverseProxy
		// closes both sides of a tunnel when the request's context ends).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(p.hardStop, cancel)()
		p.upgrades.add()
		defer p.upgrades.done()
	}
	p.rp.ServeHTTP(rec, r.WithContext(ctx))
}

// watchBody makes r's body one that must keep moving (BodyIdleTimeout),
// and returns what bounds the reading of its rest once the request is
// done. It comes before any refusal: after the handler, net/http reads up
// to 256 KiB of an unread body, and a stalled one would hold the
// connection for ever.
func (p *Proxy) watchBody(w http.ResponseWriter, r *http.Request, st *requestState) (done func()) {
	ib := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: p.bodyIdle,
		onStall: func() { st.stalled.Store(true) }}
	r.Body = ib
	return ib.done
}

// takeTurn waits for the request's turn (MaxRequests), and answers it
// when there is none.
func (p *Proxy) takeTurn(rec *statusRecorder, r *http.Request, st *requestState) bool {
	if p.admit.enter(r.Context()) {
		return true
	}
	if r.Context().Err() != nil {
		rec.status = statusClientClosed
		st.setErr(&RequestError{Status: statusClientClosed, Msg: "the client went away while the request waited for its turn (Config.MaxRequests)"})
		return false
	}
	p.refuse(rec, r, st, &RequestError{Status: http.StatusServiceUnavailable, Stage: "limit", Reason: "max_requests", retryAfter: "1",
		Msg: fmt.Sprintf("kivuli proxy: too many requests at once (Config.MaxRequests %d), none finished within Config.QueueTimeout: try again shortly", cap(p.admit.slots))})
	return false
}

// sendNow flushes an answer that the ReverseProxy has written, so that it
// leaves before the observer's work (the metrics, the access log) rather
// than when the handler returns: that work then overlaps the client's next
// request instead of delaying this answer. Only for a request without a
// body (net/http may yet have to drain a body's rest, or close the
// connection on it, which headers already sent could not say), and never
// for a connection that was upgraded.
func (p *Proxy) sendNow(rec *statusRecorder) {
	if p.obs == nil || rec.status == 0 || rec.status == http.StatusSwitchingProtocols {
		return
	}
	http.NewResponseController(rec.ResponseWriter).Flush()
}

// finish tells the observer what happened to the request.
func (p *Proxy) finish(r *http.Request, rec *statusRecorder, st *requestState, b *proxyBody, start time.Time) {
	if p.obs == nil {
		return
	}
	x := Exchange{Status: rec.status, Body: bodyNone, BytesOut: rec.written, Attempts: int(st.attempts.Load()),
		Duration: time.Since(start), Err: st.err(), Route: p.route}
	if x.Status == 0 {
		x.Status = http.StatusOK
	}
	if b != nil {
		x.Body, x.BytesIn = b.mode, b.bytesIn()
	}
	p.obs.Done(r, x)
}

// Stats reads the proxy's gauges.
func (p *Proxy) Stats() Stats {
	return Stats{
		InFlight:       p.inFlight.Load(),
		Queued:         p.admit.queued.Load(),
		BodyMemory:     p.mem.inUse.Load(),
		BodyMemoryPeak: p.mem.peak.Load(),
		Spool:          p.disk.inUse.Load(),
		SpoolPeak:      p.disk.peak.Load(),
	}
}

// LogValue is what the proxy forwards where, for a start-up log line: the
// upstream (without user information), the host signed for, the scope the
// signer chose, the header rules and the body limits. Logged with an
// empty key, its attributes stand at the top level.
func (p *Proxy) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("upstream", p.upstream.Redacted()),
		slog.String("sign_host", cmp.Or(p.signHost, p.upstream.Host)),
		slog.String("service", p.service), slog.String("region", p.region),
		slog.String("headers", p.headers.String()),
		slog.String("max_buffer", bytesize.Format(p.maxBuffer)), slog.String("max_body", bytesize.Format(p.maxBody)),
	)
}

// message is err as a client reads it: "kivuli: " once.
func message(err error) string {
	s := err.Error()
	if !strings.HasPrefix(s, "kivuli: ") {
		s = "kivuli: " + s
	}
	return s
}
