// Package imdstest provides an in-process emulator of the EC2 Instance
// Metadata Service (IMDS), in the style of net/http/httptest, for testing
// IMDS clients.
//
// A [Server] speaks the real protocol: IMDSv2 session tokens
// (PUT /latest/api/token), the role list and the role's credential document
// under /latest/meta-data/iam/security-credentials/ (GET and HEAD), the
// rest of the metadata tree as EC2 serves it (listings of its directories,
// a name answered with or without a trailing '/', and the items SDKs and
// the AWS CLI read: the region, the availability zone, the identity
// document, iam/info, the instance ID, the partition), and the status
// codes real IMDS answers with.
// Credential sets rotate well ahead of their expiry, as on EC2 (see
// [Config.RotateBefore]); or they come from an [aws.CredentialsProvider]
// ([Config.Credentials]), for a program that serves real credentials to
// code written for EC2. [Fault] values injected
// with [Server.Inject] make it fail: error statuses, throttling, delays,
// dropped or reset connections, malformed or expired documents.
//
// [NewServer] listens on a loopback port, for tests. [Listen] listens on a
// given address, and [Server.Serve] on a given listener, for a program that
// runs the emulator as a real server. [NewHandler] has no listener and is
// reached through [Server.ServeHTTP] or [Server.RoundTripper]; it suits
// testing/synctest bubbles, where real sockets would keep fake time from
// advancing. Under synctest, create the server and make its requests inside
// the bubble.
package imdstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	tokenPath    = "/latest/api/token"
	roleListPath = "/latest/meta-data/iam/security-credentials/"
	regionPath   = "/latest/meta-data/placement/region"
	zonePath     = "/latest/meta-data/placement/availability-zone"
	identityPath = "/latest/dynamic/instance-identity/document"
	ttlHeader    = "X-aws-ec2-metadata-token-ttl-seconds"
	tokenHeader  = "X-aws-ec2-metadata-token"
	maxTokenTTL  = 21600
	textPlain    = "text/plain"
	appJSON      = "application/json"

	defaultRole     = "kivuli-test-role"
	defaultRegion   = "us-east-1"
	defaultLifetime = 6 * time.Hour
	// rotateEvery is the default share of Lifetime after which a new set is
	// issued: every hour for 6-hour sets, as on EC2.
	rotateEvery = 6
)

var (
	// errClosed ends the requests that the server's Close released or refused.
	errClosed = errors.New("imdstest: server closed")
	// errReset ends a request that a Reset fault drops.
	errReset = errors.New("imdstest: connection reset")
)

// Mode selects which IMDS versions a [Server] accepts.
type Mode int

const (
	// TokenOptional accepts IMDSv1 (no token) and IMDSv2 requests alike.
	// It is the default.
	TokenOptional Mode = iota
	// TokenRequired accepts IMDSv2 only: a GET without a valid token is
	// answered 401.
	TokenRequired
	// TokenUnsupported emulates an old IMDS, or a proxy such as Elastic
	// Beanstalk's, that knows no tokens: PUT /latest/api/token is answered
	// with Config.TokenStatus (404 by default), and GETs need no token (a
	// token sent is ignored).
	TokenUnsupported
)

// String returns the name of the mode's constant, such as "TokenRequired".
func (m Mode) String() string {
	switch m {
	case TokenOptional:
		return "TokenOptional"
	case TokenRequired:
		return "TokenRequired"
	case TokenUnsupported:
		return "TokenUnsupported"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Config configures a [Server]. The zero value is a working IMDS that
// accepts IMDSv1 and IMDSv2 and lists the role "kivuli-test-role".
type Config struct {
	// Role is the IAM role listed and served. Default "kivuli-test-role".
	Role string
	// NoRole emulates an instance without a role: the role list and every
	// credential path answer 404.
	NoRole bool
	// Mode selects the IMDS versions accepted. Default TokenOptional.
	Mode Mode
	// TokenStatus is the status of a token PUT in TokenUnsupported mode,
	// such as 403 or 405. Default 404.
	TokenStatus int
	// Lifetime is the lifetime of each credential set issued. Default 6h,
	// as on EC2.
	Lifetime time.Duration
	// RotateBefore makes a credential GET issue a new set first when the
	// current one has less than this left. Default five sixths of Lifetime:
	// a new set once the current one is a sixth of its lifetime old, that is
	// every hour for the default 6 h, as EC2 is seen to do. (EC2 documents
	// only that new credentials are available "at least five minutes before
	// the expiration of the old credentials".) Keep it below Lifetime, or
	// every credential GET issues a new set.
	//
	// The default keeps new sets available long before a client refreshes:
	// kivuli refreshes in the background 8 to 16 minutes before expiry (for
	// short lifetimes, in the last quarter of the lifetime), and gets a new
	// set at once. A RotateBefore shorter than that window, such as EC2's
	// documented five minutes, models the worst case: kivuli's early
	// refresh gets the same set back, and kivuli tries again later (a
	// quarter of the time left, jittered, at least 30 s later, by its
	// refresh deadline one minute before expiry at the latest); a test that
	// expects a new set by a fixed time must then allow for that.
	RotateBefore time.Duration
	// Region is the instance's region, served at
	// /latest/meta-data/placement/region, and in the availability zone
	// (the region and "a") and the instance identity document. Default
	// "us-east-1".
	Region string
	// Credentials, if set, is where the credentials served come from: each
	// credential GET (or HEAD) serves what its Retrieve returns then, in
	// place of a set the server issues; an error is answered 500 with its
	// text. Credentials that never expire are served as expiring one
	// Lifetime later, since the document always states an expiry. Faults
	// apply as to the server's own sets (an Expired fault puts the
	// Expiration in the past). Rotate, Current and Lookup concern the
	// server's own sets, which are then never served.
	Credentials aws.CredentialsProvider
	// Clock tells the time for token expiry and credential sets. Default
	// time.Now, which follows the fake clock of a testing/synctest bubble
	// when called in one.
	Clock func() time.Time
}

// Server is an emulated IMDS. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the loopback listener, such as
	// "http://127.0.0.1:43127", without a trailing slash. It is empty for a
	// server made by NewHandler.
	URL string

	st *state
}

// Credentials is a credential set issued by a [Server]. Like real ones,
// AccessKeyID is "ASIA" and 16 characters of [A-Z2-7], SecretAccessKey 40
// characters of [A-Za-z0-9/+], and SessionToken 400 characters of
// [A-Za-z0-9/+] that always hold '/' and '+' and end in "==", so that a
// signer must encode them right. Expiration is in UTC, in whole seconds.
type Credentials struct {
	AccessKeyID     string    // the access key ID, which requests name
	SecretAccessKey string    // the secret that signs
	SessionToken    string    // the session token of temporary credentials
	Expiration      time.Time // when they expire
}

// String describes c by its AccessKeyID and Expiration only: the secret
// access key and the session token are never printed.
func (c Credentials) String() string {
	return fmt.Sprintf("imdstest.Credentials{AccessKeyID: %q, Expiration: %s}",
		c.AccessKeyID, c.Expiration.UTC().Format(time.RFC3339))
}

// GoString is String, so that the %#v verb prints no secret either.
func (c Credentials) GoString() string { return c.String() }

// Format makes every fmt verb print String (quoted for %q), so that no verb
// prints a secret.
func (c Credentials) Format(f fmt.State, verb rune) { format(f, verb, c.String()) }

// format writes s to f, quoted for the %q verb.
func format(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	io.WriteString(f, s)
}

// Stats counts the requests a [Server] has received.
type Stats struct {
	TokenPUTs      int // PUT requests on /latest/api/token, faulted or not
	RoleLists      int // GET requests on the role list, faulted or not
	CredentialGETs int // GET requests on a credential path, faulted or not
	HEADs          int // HEAD requests, on any path
	Unauthorized   int // 401 answers sent, faults included
	V1Requests     int // GET and HEAD requests, on any path, without a token header, whatever the answer
	Total          int // every request, on any path, with any method
}

// state is the Server's mutable state.
type state struct {
	cfg     Config // defaults applied
	clock   func() time.Time
	started time.Time        // the instance's launch, in its identity document
	ts      *httptest.Server // nil for NewHandler
	served  chan struct{}    // closed when the Serve started by Listen returns
	servers []*http.Server   // started by Serve, stopped by Close

	mu      sync.Mutex
	closed  bool
	waiters map[chan struct{}]struct{} // one per request waiting on a Delay or Hang
	tokens  map[string]time.Time       // IMDSv2 token -> expiry
	sets    []credSet                  // every set issued, the current one last
	byKey   map[string]int             // AccessKeyID -> index in sets
	faults  []Fault
	stats   Stats
	onWait  func(start bool) // test hook: a request starts (true) or stops (false) waiting
}

// credSet is an issued credential set.
type credSet struct {
	Credentials
	lastUpdated time.Time
}

// NewServer starts a Server listening on a loopback port (an
// httptest.Server on 127.0.0.1). Call Close when done. It panics if
// cfg.Mode is not one of the Mode constants.
func NewServer(cfg Config) *Server {
	s := NewHandler(cfg)
	s.st.ts = httptest.NewServer(s)
	s.URL = s.st.ts.URL
	return s
}

// NewHandler returns a Server without a listener, reached through ServeHTTP
// or RoundTripper; its URL is empty. Without sockets it suits
// testing/synctest bubbles. It panics if cfg.Mode is not one of the Mode
// constants.
func NewHandler(cfg Config) *Server {
	switch cfg.Mode {
	case TokenOptional, TokenRequired, TokenUnsupported:
	default:
		panic("imdstest: invalid " + cfg.Mode.String())
	}
	if cfg.Role == "" {
		cfg.Role = defaultRole
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	if cfg.TokenStatus == 0 {
		cfg.TokenStatus = http.StatusNotFound
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = defaultLifetime
	}
	if cfg.RotateBefore <= 0 {
		cfg.RotateBefore = cfg.Lifetime - cfg.Lifetime/rotateEvery
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Server{st: &state{
		cfg:     cfg,
		clock:   clock,
		started: clock(),
		waiters: make(map[chan struct{}]struct{}),
		tokens:  make(map[string]time.Time),
		byKey:   make(map[string]int),
	}}
}

// Listen returns a Server listening on addr, such as "127.0.0.1:1338" (or
// ":0" for any free port), serving in its own goroutine until Close: the
// emulator as a real server, for a program rather than a test. URL is set
// from the address listened on. It panics if cfg.Mode is not one of the
// Mode constants.
func Listen(addr string, cfg Config) (*Server, error) {
	s := NewHandler(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imdstest: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.st.served = make(chan struct{})
	go func() {
		defer close(s.st.served)
		s.Serve(ln)
	}()
	return s, nil
}

// Serve answers the connections accepted on ln, as IMDS would, until Close;
// it closes ln. It returns http.ErrServerClosed after Close (at once if
// Close came first), or the error that stopped it accepting. It may be
// called on any Server, several times with different listeners; it does not
// set URL.
func (s *Server) Serve(ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	st := s.st
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	st.servers = append(st.servers, hs)
	st.mu.Unlock()
	return hs.Serve(ln)
}

// Close stops the listeners, if any, and at once releases every request
// waiting on a Delay or Hang fault: their connections are dropped without
// an answer. Later requests are refused the same way. Close returns when
// the listeners have stopped (for NewServer, when its requests have ended).
// It may be called more than once.
func (s *Server) Close() {
	st := s.st
	st.mu.Lock()
	st.closed = true
	for ch := range st.waiters {
		close(ch)
		delete(st.waiters, ch)
	}
	servers := st.servers
	st.servers = nil
	st.mu.Unlock()
	for _, hs := range servers {
		hs.Close()
	}
	if st.served != nil {
		<-st.served
	}
	if st.ts != nil {
		st.ts.Close()
	}
}

// ServeHTTP answers r as IMDS would, after any fault Inject queued for it.
// When the request is abandoned (its context ends) or the server is closed
// while it waits on a fault, or the request is abandoned while
// Config.Credentials fetches, or when it arrives after Close, ServeHTTP
// panics with http.ErrAbortHandler, as net/http expects, so that the client
// sees a dropped connection rather than an answer. For a Reset fault it
// resets the TCP connection (when w can be hijacked), or else panics so.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := s.st.serve(w, r)
	if err == nil {
		return
	}
	if errors.Is(err, errReset) {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0) // close with RST, not FIN
				}
				conn.Close()
				return
			}
		}
	}
	panic(http.ErrAbortHandler)
}

// RoundTripper returns an in-memory http.RoundTripper that hands every
// request, whatever its host, straight to ServeHTTP: no sockets, no
// goroutines. It honours the request's context: a request abandoned while
// a fault delays or hangs it, or while Config.Credentials fetches, fails
// with the context's error, and one released by Close fails with an error
// of its own. A Reset fault fails the request with a *net.OpError wrapping
// ECONNRESET, as a reset connection does.
func (s *Server) RoundTripper() http.RoundTripper { return roundTripper{s.st} }

// Inject queues f. Each request is answered according to the first queued
// fault that matches it, in the order injected, or normally when none
// does. Inject panics if f.Target is not one of the Target constants, if
// f.Times is negative, or if f.Status is neither 0 nor in 100..599.
func (s *Server) Inject(f Fault) {
	switch f.Target {
	case AnyPath, TokenPath, RoleListPath, CredentialsPath:
	default:
		panic("imdstest: invalid " + f.Target.String())
	}
	if f.Times < 0 {
		panic("imdstest: negative Fault.Times")
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		panic("imdstest: invalid Fault.Status " + strconv.Itoa(f.Status))
	}
	s.st.mu.Lock()
	s.st.faults = append(s.st.faults, f)
	s.st.mu.Unlock()
}

// ClearFaults removes every queued fault. Requests already waiting on a
// fault keep waiting.
func (s *Server) ClearFaults() {
	s.st.mu.Lock()
	s.st.faults = nil
	s.st.mu.Unlock()
}

// Rotate issues a new credential set now; the next credential GET returns
// it.
func (s *Server) Rotate() {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	st.issue(st.clock())
}

// Current returns the credential set issued last, issuing the first one if
// none has been yet. It never rotates: when the set is within RotateBefore
// of its expiry, the next credential GET returns a newer one.
func (s *Server) Current() Credentials {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.sets) == 0 {
		st.issue(st.clock())
	}
	return st.sets[len(st.sets)-1].Credentials
}

// Lookup returns the credential set with the given access key ID, among
// every set this server has issued, for example to check a request
// signature.
func (s *Server) Lookup(accessKeyID string) (Credentials, bool) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	i, ok := st.byKey[accessKeyID]
	if !ok {
		return Credentials{}, false
	}
	return st.sets[i].Credentials, true
}

// Stats returns the counts of requests received so far.
func (s *Server) Stats() Stats {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.stats
}

// String describes the server without any secret: no secret access key,
// session token or IMDSv2 token.
func (s Server) String() string {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	where := s.URL
	if where == "" {
		where = "no listener"
	}
	role := strconv.Quote(st.cfg.Role)
	if st.cfg.NoRole {
		role = "none"
	}
	closed := ""
	if st.closed {
		closed = ", closed"
	}
	return fmt.Sprintf("imdstest.Server(%s, %v, role %s, %d credential sets issued, %d faults queued%s)",
		where, st.cfg.Mode, role, len(st.sets), len(st.faults), closed)
}

// GoString is String, so that the %#v verb prints no secret either.
func (s Server) GoString() string { return s.String() }

// Format makes every fmt verb print String (quoted for %q), so that no verb
// prints a secret.
func (s Server) Format(f fmt.State, verb rune) { format(f, verb, s.String()) }

// serve answers r. It returns an error, having written nothing, when the
// request is refused or abandoned: the server is closed, or the request's
// context ended while a fault held it.
func (st *state) serve(w http.ResponseWriter, r *http.Request) error {
	target := classify(r.URL.Path)
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return errClosed
	}
	st.count(r, target)
	f, faulted := st.match(target)
	st.mu.Unlock()

	if faulted && f.Hang {
		return st.wait(r.Context(), -1)
	}
	if faulted && f.Reset {
		return errReset
	}
	if faulted && f.Delay > 0 {
		if err := st.wait(r.Context(), f.Delay); err != nil {
			return err
		}
	}

	st.mu.Lock()
	var resp response
	if faulted && f.replaces() {
		resp = st.faultResponse(f)
	} else {
		resp = st.answer(r, target, faulted && f.Expired)
	}
	if resp.status == http.StatusUnauthorized {
		st.stats.Unauthorized++
	}
	st.mu.Unlock()
	if resp.fromSource {
		var err error
		if resp, err = st.sourceDocument(r.Context(), faulted && f.Expired); err != nil {
			return err
		}
	}
	if faulted && f.StallBody {
		return st.stall(r.Context(), w, resp)
	}
	resp.write(w)
	return nil
}

// stall writes resp's headers and half its body, then waits as Hang does.
func (st *state) stall(ctx context.Context, w http.ResponseWriter, resp response) error {
	if _, ok := w.(*recorder); ok {
		return st.wait(ctx, -1) // in memory, nothing arrives before all
	}
	full := resp.body
	resp.body = full[:len(full)/2]
	resp.writeHeader(w, len(full))
	io.WriteString(w, resp.body)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	if err := st.wait(ctx, -1); err != nil {
		return err
	}
	return errReset
}

// count updates the stats for a request arriving. st.mu is held.
func (st *state) count(r *http.Request, target Target) {
	st.stats.Total++
	switch {
	case target == TokenPath && r.Method == http.MethodPut:
		st.stats.TokenPUTs++
	case target == RoleListPath && r.Method == http.MethodGet:
		st.stats.RoleLists++
	case target == CredentialsPath && r.Method == http.MethodGet:
		st.stats.CredentialGETs++
	}
	if r.Method == http.MethodHead {
		st.stats.HEADs++
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get(tokenHeader) == "" {
		st.stats.V1Requests++
	}
}

// wait blocks for d (forever if d < 0), or until ctx ends or the server is
// closed, which it reports as an error. It never holds st.mu while blocked.
func (st *state) wait(ctx context.Context, d time.Duration) error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return errClosed
	}
	// The channel is made by the waiting goroutine, so that in a synctest
	// bubble it belongs to the bubble and the wait is durably blocking.
	released := make(chan struct{})
	st.waiters[released] = struct{}{}
	hook := st.onWait
	st.mu.Unlock()
	if hook != nil {
		hook(true)
	}
	defer func() {
		st.mu.Lock()
		delete(st.waiters, released)
		st.mu.Unlock()
		if hook != nil {
			hook(false)
		}
	}()

	var expired <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-released:
		return errClosed
	}
}

// classify returns the Target a request path belongs to, or otherPath.
// As on EC2, a '/' after a name of the metadata tree does not change it:
// the role list is .../security-credentials with or without one, a
// role's credentials .../security-credentials/ROLE likewise.
func classify(path string) Target {
	switch p := strings.TrimSuffix(path, "/"); {
	case path == tokenPath:
		return TokenPath
	case p+"/" == roleListPath:
		return RoleListPath
	case strings.HasPrefix(p, roleListPath) && !strings.Contains(p[len(roleListPath):], "/"):
		return CredentialsPath
	}
	return otherPath
}

// roleOf is the role a credentials path names.
func roleOf(path string) string { return strings.TrimSuffix(path, "/")[len(roleListPath):] }

// answer is the normal answer to r, with the credential Expiration in the
// past if expired. A HEAD is answered as a GET, without the body (net/http
// and the RoundTripper drop it). st.mu is held.
func (st *state) answer(r *http.Request, target Target, expired bool) response {
	if target == TokenPath {
		return st.tokenPUT(r)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if target == otherPath {
			return plain(http.StatusNotFound)
		}
		return plain(http.StatusMethodNotAllowed)
	}
	now := st.clock()
	if st.cfg.Mode != TokenUnsupported {
		tok := r.Header.Get(tokenHeader)
		if tok == "" && st.cfg.Mode == TokenRequired || tok != "" && !st.validToken(tok, now) {
			return plain(http.StatusUnauthorized)
		}
	}
	switch target {
	case RoleListPath:
		if st.cfg.NoRole {
			return plain(http.StatusNotFound)
		}
		return response{status: http.StatusOK, ctype: textPlain, body: st.cfg.Role}
	case CredentialsPath:
		if st.cfg.NoRole || roleOf(r.URL.Path) != st.cfg.Role {
			return plain(http.StatusNotFound)
		}
		if st.cfg.Credentials != nil {
			return response{fromSource: true} // Retrieve is called without st.mu
		}
		set := st.forGET(now)
		exp := set.Expiration
		if expired {
			exp = now.Add(-time.Minute)
		}
		return jsonResponse(http.StatusOK, credentialDoc{
			Code:            "Success",
			LastUpdated:     timestamp(set.lastUpdated),
			Type:            "AWS-HMAC",
			AccessKeyID:     set.AccessKeyID,
			SecretAccessKey: set.SecretAccessKey,
			Token:           set.SessionToken,
			Expiration:      timestamp(exp),
		})
	}
	if resp, ok := st.metadata(r.URL.Path); ok {
		return resp
	}
	return plain(http.StatusNotFound)
}

// tokenPUT answers a request on the token path. st.mu is held.
func (st *state) tokenPUT(r *http.Request) response {
	if st.cfg.Mode == TokenUnsupported {
		return plain(st.cfg.TokenStatus)
	}
	if r.Method != http.MethodPut {
		return plain(http.StatusMethodNotAllowed)
	}
	if len(r.Header.Values("X-Forwarded-For")) > 0 {
		return plain(http.StatusForbidden)
	}
	ttl, ok := parseTTL(r.Header.Values(ttlHeader))
	if !ok {
		return plain(http.StatusBadRequest)
	}
	now := st.clock()
	for tok, exp := range st.tokens {
		if !now.Before(exp) {
			delete(st.tokens, tok)
		}
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	st.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	return response{status: http.StatusOK, ctype: textPlain, body: tok, ttl: strconv.Itoa(ttl)}
}

// parseTTL parses the token TTL header: exactly one decimal integer in
// 1..21600.
func parseTTL(vals []string) (int, bool) {
	if len(vals) != 1 || len(vals[0]) == 0 || len(vals[0]) > 5 {
		return 0, false
	}
	for _, c := range vals[0] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 1 || n > maxTokenTTL {
		return 0, false
	}
	return n, true
}

// validToken reports whether tok was issued and has not expired. st.mu is
// held.
func (st *state) validToken(tok string, now time.Time) bool {
	exp, ok := st.tokens[tok]
	if ok && !now.Before(exp) {
		delete(st.tokens, tok)
		return false
	}
	return ok
}

// forGET returns the set a credential GET serves at now, first issuing a
// new one if there is none or the current one is due for rotation. st.mu is
// held.
func (st *state) forGET(now time.Time) credSet {
	n := len(st.sets)
	if n == 0 || !now.Before(st.sets[n-1].Expiration.Add(-st.cfg.RotateBefore)) {
		return st.issue(now)
	}
	return st.sets[n-1]
}

// issue issues a new credential set at now. st.mu is held.
func (st *state) issue(now time.Time) credSet {
	// The session token holds '/' and '+' at fixed places, and ends in
	// "==", so that signers must encode them.
	tok := randomBase64(398)
	tok[99], tok[199] = '/', '+'
	set := credSet{
		Credentials: Credentials{
			AccessKeyID:     "ASIA" + rand.Text()[:16],
			SecretAccessKey: string(randomBase64(40)),
			SessionToken:    string(tok) + "==",
			Expiration:      now.Add(st.cfg.Lifetime).UTC().Truncate(time.Second),
		},
		lastUpdated: now.UTC().Truncate(time.Second),
	}
	st.byKey[set.AccessKeyID] = len(st.sets)
	st.sets = append(st.sets, set)
	return set
}

const base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// randomBase64 returns n random characters from [A-Za-z0-9+/].
func randomBase64(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = base64Chars[b[i]&63]
	}
	return b
}

// timestamp formats t as IMDS does: UTC, RFC 3339, whole seconds.
func timestamp(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// credentialDoc is the JSON document of a credential GET, in IMDS's field
// order.
type credentialDoc struct {
	Code            string
	Message         string `json:",omitempty"`
	LastUpdated     string
	Type            string `json:",omitempty"`
	AccessKeyID     string `json:"AccessKeyId,omitempty"`
	SecretAccessKey string `json:",omitempty"`
	Token           string `json:",omitempty"`
	Expiration      string `json:",omitempty"`
}

// response is an answer, computed under st.mu and written after.
type response struct {
	status     int
	ctype      string
	body       string
	ttl        string // echoed token TTL header, if not empty
	retryAfter int    // Retry-After header, if > 0
	fromSource bool   // the answer is Config.Credentials' document, still to fetch
}

// plain is a short text/plain answer with the given status.
func plain(status int) response {
	body := http.StatusText(status)
	if body == "" {
		body = "Status " + strconv.Itoa(status)
	}
	return response{status: status, ctype: textPlain, body: body}
}

// jsonResponse is an application/json answer with doc indented as IMDS
// does.
func jsonResponse(status int, doc credentialDoc) response {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // cannot happen: credentialDoc holds strings only
	}
	return response{status: status, ctype: appJSON, body: string(b)}
}

func (r response) write(w http.ResponseWriter) {
	r.writeHeader(w, len(r.body))
	io.WriteString(w, r.body)
}

// writeHeader writes the status and headers of an answer whose body has
// length bytes.
func (r response) writeHeader(w http.ResponseWriter, length int) {
	h := w.Header()
	h.Set("Server", "EC2ws")
	h.Set("Content-Type", r.ctype)
	h.Set("Content-Length", strconv.Itoa(length))
	if r.ttl != "" {
		h.Set(ttlHeader, r.ttl)
	}
	if r.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(r.retryAfter))
	}
	w.WriteHeader(r.status)
}

// roundTripper is the in-memory transport of Server.RoundTripper.
type roundTripper struct{ st *state }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.URL == nil {
		return nil, errors.New("imdstest: nil Request.URL")
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Give the handler a request as a server would see it, leaving req
	// untouched.
	sr := req.Clone(ctx)
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:49152"
	rec := &recorder{header: make(http.Header)}
	if err := rt.st.serve(rec, sr); err != nil {
		if errors.Is(err, errReset) {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		}
		return nil, err
	}
	return rec.response(req), nil
}

// recorder is the http.ResponseWriter of roundTripper.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *recorder) response(req *http.Request) *http.Response {
	w.WriteHeader(http.StatusOK)
	body := w.body.Bytes()
	res := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
	if req.Method == http.MethodHead {
		res.Body = http.NoBody
	}
	return res
}
