package kivuli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	// RefreshDeadline is how long before their expiry credentials are
	// refreshed at the latest, as the original Kivuli promised: from then on,
	// callers wait for the refresh.
	RefreshDeadline = time.Minute

	// advisoryWindow is how early, at most, before the refresh deadline the
	// background refresh starts; a quarter of the credentials' lifetime for
	// short-lived credentials.
	advisoryWindow = 15 * time.Minute
	// minRetry is the shortest pause between two background refreshes.
	minRetry = 30 * time.Second
	// maxBackoff caps the pause after failed refreshes.
	maxBackoff = 5 * time.Minute
	// fetchTimeout bounds one refresh whatever the source does.
	fetchTimeout = time.Minute
)

// Credentials holds the credentials of a source, the instance role by
// default, and keeps them fresh. It is an [aws.CredentialsProvider], so it
// plugs into aws-sdk-go-v2 (aws.Config{Credentials: creds}) and into
// [Transport].
//
// Credentials are refreshed in the background ahead of their expiry, with
// jitter, so that in steady state no caller waits; one minute before expiry
// ([RefreshDeadline]) at the latest, callers wait for the refresh, all of
// them sharing one fetch. When a refresh fails, the last good credentials
// are served until they expire, and the refresh is retried with backoff.
// When IMDS serves credentials that have already expired (during an EC2
// outage), they are served for 5 to 15 more minutes, as the AWS SDKs do.
//
// A Credentials is safe for concurrent use. Call Close to stop its
// background refresh.
type Credentials struct {
	src        aws.CredentialsProvider
	refresh    bool
	background bool
	env        bool
	logger     *slog.Logger

	// fresh is the only state of the read path: the credentials to serve
	// without looking at the clock, or nil once a refresh is due.
	fresh atomic.Pointer[snapshot]

	ctx    context.Context // of background refreshes; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background refreshes running

	mu       sync.Mutex // guards the fields below
	last     *snapshot  // the newest good credentials, even past their deadline
	flight   *flight    // the refresh in progress, shared by all callers
	nextTry  time.Time  // after a failure, no refresh on demand before this
	failures int        // consecutive failed refreshes
	lastErr  error      // of the last failed refresh
	timer    *wallTimer
	deadline *wallTimer
	invalid  bool // Invalidate was called since the last good fetch
	closed   bool
	subsMu   sync.Mutex // guards subs, nil once closed; never held with mu
	subs     map[*subscriber]struct{}
}

var _ aws.CredentialsProvider = (*Credentials)(nil)

// snapshot is one set of credentials and the times that govern it.
type snapshot struct {
	creds     aws.Credentials
	fetched   time.Time
	advisory  time.Time // background refresh starts about here
	deadline  time.Time // callers wait for a refresh from here
	expires   time.Time // served (after a failed refresh) until here
	extended  bool      // IMDS served expired credentials; expires is local
	canExpire bool
}

type flight struct {
	done chan struct{}
	snap *snapshot
	err  error
}

// New returns credentials fetched at once from the instance metadata
// service (or from the source given with [WithProvider]), and kept fresh
// unless [WithoutRefresh] is given. It returns an error when the first fetch
// fails: errors.Is(err, [ErrNotOnEC2]) off EC2, errors.Is(err, [ErrNoRole])
// without an instance role. ctx bounds the first fetch only.
func New(ctx context.Context, opts ...Option) (*Credentials, error) {
	cfg := newConfig(opts)
	src := cfg.provider
	if src == nil {
		p, err := newIMDS(cfg)
		if err != nil {
			return nil, err
		}
		src = p
	}
	c := &Credentials{
		src:        src,
		refresh:    !cfg.noRefresh,
		background: !cfg.noRefresh && !cfg.noBackground,
		env:        cfg.env,
		logger:     cfg.logger,
		subs:       make(map[*subscriber]struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if _, err := c.fetch(ctx, TriggerInitial); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Retrieve returns the current credentials as one consistent snapshot. When
// they are fresh it takes no lock and allocates nothing; when a refresh is
// due it waits for it, or until ctx is done. It implements
// [aws.CredentialsProvider].
func (c *Credentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if s := c.fresh.Load(); s != nil {
		return s.creds, nil
	}
	return c.retrieveSlow(ctx)
}

func (c *Credentials) retrieveSlow(ctx context.Context) (aws.Credentials, error) {
	c.mu.Lock()
	if s := c.fresh.Load(); s != nil {
		// A refresh ended while this caller waited for the lock.
		c.mu.Unlock()
		return s.creds, nil
	}
	now := time.Now()
	s := c.last
	if s != nil && !c.refresh && !c.invalid && !c.closed {
		c.mu.Unlock()
		return s.creds, nil // invalidated without refresh: nothing better to serve
	}
	f := c.flight
	if f == nil && !c.closed && !now.Before(c.nextTry) {
		f = c.startLocked(TriggerOnDemand)
	}
	c.mu.Unlock()
	if f == nil {
		return c.lastGood(now, nil)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return aws.Credentials{}, fmt.Errorf("kivuli: waiting for a credential refresh: %w", ctx.Err())
	}
	if f.err == nil {
		return f.snap.creds, nil
	}
	return c.lastGood(time.Now(), f.err)
}

// lastGood serves the last good credentials while they are valid, after a
// failed or postponed refresh.
func (c *Credentials) lastGood(now time.Time, err error) (aws.Credentials, error) {
	c.mu.Lock()
	s, closed := c.last, c.closed
	if err == nil {
		err = c.lastErr
	}
	c.mu.Unlock()
	if s != nil && now.Before(s.expires) {
		return s.creds, nil
	}
	if closed {
		return aws.Credentials{}, ErrClosed
	}
	if err == nil {
		err = errors.New("no credentials")
	}
	return aws.Credentials{}, fmt.Errorf("kivuli: credentials expired and refresh failed: %w", err)
}

// Invalidate marks the credentials as due for a refresh: the next Retrieve
// fetches new ones (sharing one fetch with concurrent callers). [Transport]
// calls it when a service answers that the token has expired. It has the
// same name as [aws.CredentialsCache.Invalidate].
func (c *Credentials) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.fresh.Store(nil)
	c.nextTry = time.Time{}
	c.invalid = true
}

// Close stops the background refresh, waits for a refresh in progress to
// end, and closes the channels returned by Subscribe. Retrieve keeps serving
// the last credentials until they expire. Close is safe to call twice.
func (c *Credentials) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.timer.Stop()
	c.deadline.Stop()
	c.fresh.Store(nil) // with no timer left, readers look at the clock
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	c.subsMu.Lock()
	for s := range c.subs {
		close(s.ch)
	}
	c.subs = nil // Subscribe after Close gets a closed channel
	c.subsMu.Unlock()
	return nil
}

// startLocked starts a refresh in the background. c.mu is held.
func (c *Credentials) startLocked(trigger Trigger) *flight {
	f := &flight{done: make(chan struct{})}
	c.flight = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, fetchTimeout)
		defer cancel()
		f.snap, f.err = c.fetch(ctx, trigger)
		close(f.done)
	}()
	return f
}

// fetch gets new credentials from the source and installs them, or records
// the failure; either way it tells the subscribers.
func (c *Credentials) fetch(ctx context.Context, trigger Trigger) (*snapshot, error) {
	start := time.Now()
	v, err := c.src.Retrieve(ctx)
	now := time.Now()
	var s *snapshot
	if err == nil {
		s, err = newSnapshot(v, now)
	}
	ev := RefreshEvent{Trigger: trigger, Start: start, End: now, Err: err}

	c.mu.Lock()
	if trigger != TriggerInitial {
		c.flight = nil
	}
	prev := c.last
	if err == nil {
		c.last, c.failures, c.nextTry, c.lastErr, c.invalid = s, 0, time.Time{}, nil, false
		if c.env {
			exportEnv(s.creds)
		}
		if !c.closed { // after Close, readers must keep looking at the clock
			c.fresh.Store(s)
		}
		c.scheduleLocked(s, now)
		ev.Expires, ev.Extended = s.expires, s.extended
		ev.Changed = prev == nil || prev.creds.AccessKeyID != s.creds.AccessKeyID || prev.creds.SessionToken != s.creds.SessionToken
		if s.extended {
			c.logger.Warn("kivuli: the credential source served expired credentials; serving them longer and retrying later",
				"retry_in", s.deadline.Sub(now).Round(time.Second))
		}
	} else {
		c.failures++
		c.lastErr = err
		c.nextTry = now.Add(backoff(c.failures))
		if c.background && !c.closed && prev != nil {
			c.timer = c.afterLocked(c.timer, c.nextTry, c.backgroundRefresh)
		}
		if prev != nil {
			ev.Expires = prev.expires
			c.logger.Warn("kivuli: credential refresh failed; serving the last good credentials until they expire",
				"error", err, "expires", prev.expires, "retry_in", c.nextTry.Sub(now).Round(time.Second))
		}
	}
	c.mu.Unlock()
	c.publish(ev)
	return s, err
}

// newSnapshot derives the refresh times of fresh credentials.
func newSnapshot(v aws.Credentials, now time.Time) (*snapshot, error) {
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, errors.New("kivuli: the credential source returned an empty access key")
	}
	s := &snapshot{creds: v, fetched: now, canExpire: v.CanExpire}
	if !v.CanExpire {
		return s, nil
	}
	if !v.Expires.After(now.Add(RefreshDeadline)) {
		// Expired already, or about to: IMDS has nothing newer (an EC2
		// outage). Serve them a while, and try again later, as the SDKs do.
		s.extended = true
		s.expires = now.Add(5*time.Minute + rand.N(10*time.Minute))
		s.creds.Expires = s.expires
		s.advisory, s.deadline = s.expires, s.expires
		return s, nil
	}
	s.expires = v.Expires
	s.deadline = v.Expires.Add(-RefreshDeadline)
	window := min(advisoryWindow, s.deadline.Sub(now)/4)
	s.advisory = s.deadline.Add(-window + rand.N(window/2+1))
	return s, nil
}

// scheduleLocked arms the timers of a new snapshot: the refresh deadline,
// after which readers take the slow path, and the background refresh.
// c.mu is held.
func (c *Credentials) scheduleLocked(s *snapshot, now time.Time) {
	c.deadline.Stop()
	c.timer.Stop()
	if !c.refresh || !s.canExpire || c.closed {
		return
	}
	c.deadline = afterWall(s.deadline, func() { c.fresh.CompareAndSwap(s, nil) })
	if !c.background {
		return
	}
	// When the source handed back the same credentials (IMDS had not rotated
	// them yet), try again a little later, but before the deadline.
	at := s.advisory
	if at.Before(now.Add(minRetry)) {
		at = now.Add(minRetry + rand.N(minRetry))
	}
	if at.After(s.deadline) {
		at = s.deadline
	}
	c.timer = c.afterLocked(c.timer, at, c.backgroundRefresh)
}

func (c *Credentials) afterLocked(t *wallTimer, at time.Time, f func()) *wallTimer {
	t.Stop()
	return afterWall(at, f)
}

// backgroundRefresh starts a refresh unless one is running.
func (c *Credentials) backgroundRefresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.flight != nil {
		return
	}
	c.startLocked(TriggerBackground)
}

// backoff is the pause after n consecutive failures: 10s doubling up to
// 5 minutes, jittered between half and all of it.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 6 {
		d = min(maxBackoff, 10*time.Second<<(n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// AccessKeyID returns the current access key ID, refreshing first if due.
// Separate accessors may straddle a refresh: use [Credentials.Retrieve] for
// a consistent set. On failure it returns "".
func (c *Credentials) AccessKeyID() string { return c.value().AccessKeyID }

// SecretAccessKey returns the current secret access key, refreshing first
// if due. See [Credentials.AccessKeyID].
func (c *Credentials) SecretAccessKey() string { return c.value().SecretAccessKey }

// Token returns the current session token, refreshing first if due. See
// [Credentials.AccessKeyID].
func (c *Credentials) Token() string { return c.value().SessionToken }

func (c *Credentials) value() aws.Credentials {
	v, _ := c.Retrieve(context.Background())
	return v
}

// Expires returns when the current credentials expire.
func (c *Credentials) Expires() time.Time {
	if s := c.current(); s != nil {
		return s.expires
	}
	return time.Time{}
}

func (c *Credentials) current() *snapshot {
	if s := c.fresh.Load(); s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// String describes the credentials without their secrets.
func (c *Credentials) String() string {
	s := c.current()
	if s == nil {
		return "kivuli.Credentials{}"
	}
	return fmt.Sprintf("kivuli.Credentials{AccessKeyID: %s, Expires: %s, Source: %s}",
		s.creds.AccessKeyID, s.expires.UTC().Format(time.RFC3339), s.creds.Source)
}

// GoString is like String, so that %#v prints no secret.
func (c *Credentials) GoString() string { return c.String() }

// LogValue makes slog log the credentials without their secrets.
func (c *Credentials) LogValue() slog.Value {
	s := c.current()
	if s == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(
		slog.String("access_key_id", s.creds.AccessKeyID),
		slog.Time("expires", s.expires),
		slog.String("source", s.creds.Source))
}

var envMu sync.Mutex // serialises exports, so that the three variables are set together

func exportEnv(v aws.Credentials) {
	envMu.Lock()
	defer envMu.Unlock()
	os.Setenv("AWS_ACCESS_KEY_ID", v.AccessKeyID)
	os.Setenv("AWS_SECRET_ACCESS_KEY", v.SecretAccessKey)
	if v.SessionToken != "" {
		os.Setenv("AWS_SESSION_TOKEN", v.SessionToken)
	} else {
		os.Unsetenv("AWS_SESSION_TOKEN")
	}
}
