package kivuli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	// RefreshDeadline is how long before their expiry credentials are
	// refreshed at the latest, as the original Kivuli promised: from then
	// on, each caller that finds no refresh under way starts one. Callers
	// still get the credentials in hand, without waiting, until they are
	// within 10 seconds of their expiry.
	RefreshDeadline = time.Minute

	// expiryMargin is how close to their expiry credentials are no longer
	// handed out while a refresh is under way: a caller waits for it rather
	// than sign a request that could reach AWS after the expiry.
	expiryMargin = 10 * time.Second
	// advisoryWindow is how early, at most, before the refresh deadline the
	// background refresh starts; a quarter of the credentials' lifetime for
	// short-lived credentials.
	advisoryWindow = 15 * time.Minute
	// minRetry is the shortest pause between two background refreshes.
	minRetry = 30 * time.Second
	// minForcedInterval is how long after a refresh that returned the
	// credentials in hand no forced refresh (Invalidate) is made: IMDS had
	// nothing newer, and asking again at once only adds load (IMDS throttles
	// per instance, aws-sdk-go-v2#1995).
	minForcedInterval = 30 * time.Second
	// maxBackoff caps the pause after failed refreshes.
	maxBackoff = 5 * time.Minute
	// retryJitter spreads the retries that backoff brings forward to the
	// refresh deadline or to just before the expiry.
	retryJitter = 5 * time.Second
	// fetchTimeout bounds one refresh whatever the source does.
	fetchTimeout = time.Minute
)

// Credentials holds the credentials of a source, the instance role by
// default, and keeps them fresh. It is an [aws.CredentialsProvider], so it
// plugs into aws-sdk-go-v2 (aws.Config{Credentials: creds}) and into
// [Transport].
//
// Credentials are refreshed in the background ahead of their expiry, with
// jitter, so that in steady state no caller waits; from one minute before
// expiry ([RefreshDeadline]) at the latest, callers start the refresh
// themselves, all of them sharing one fetch. A caller waits for a refresh
// only when the credentials in hand can no longer be used: within 10 seconds
// of their expiry, or after [Credentials.Invalidate]; otherwise it gets them
// at once and the refresh goes on in the background.
//
// Static stability: when a refresh fails, the last good credentials are
// served until they expire, and the refresh is retried with backoff (never
// later than the refresh deadline, and once more shortly before the expiry).
// Credentials that the source serves already expired, or expiring within
// the refresh deadline, never replace valid ones: that refresh counts as
// failed ([ErrStaleCredentials]). Only when there is nothing better (no
// previous credentials, or they have expired too), as during an EC2 outage,
// the newest of them are served for 5 to 15 more minutes, as the AWS SDKs
// do ([RefreshEvent.Extended]).
//
// A Credentials is safe for concurrent use. Call Close to stop its
// background refresh and release its connections.
type Credentials struct {
	// src is behind a pointer, so that %v of a Credentials value does not
	// print a source that holds its secrets in its fields (a static one).
	src        *source
	imds       *IMDS // src when New made it, whose connections Close releases
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

	mu        sync.Mutex // guards the fields below
	last      *snapshot  // the newest good credentials, even past their deadline
	flight    *flight    // the refresh in progress, shared by all callers
	nextTry   time.Time  // after a failure, no refresh on demand before this
	sameUntil time.Time  // after a refresh that changed nothing, no forced refresh before this
	failures  int        // consecutive failed refreshes
	lastErr   error      // of the last failed refresh
	timer     *wallTimer
	deadline  *wallTimer
	invalid   bool             // Invalidate was called since the last good fetch
	exported  *aws.Credentials // what was last exported to the environment; a pointer, so that %v of a Credentials value prints no secret
	closed    bool
	subsMu    sync.Mutex // guards subs, nil once closed; never held with mu
	subs      map[*subscriber]struct{}
}

var _ aws.CredentialsProvider = (*Credentials)(nil)

// source is where a Credentials gets its credentials.
type source struct{ aws.CredentialsProvider }

// snapshot is one set of credentials and the times that govern it.
type snapshot struct {
	creds      aws.Credentials
	fetched    time.Time
	advisory   time.Time // background refresh starts about here
	deadline   time.Time // callers start a refresh from here
	expires    time.Time // served (after a failed refresh) until here
	docExpires time.Time // the expiry the source gave
	stale      bool      // the source gave an expiry within the refresh deadline
	extended   bool      // served past docExpires, for lack of anything better
	canExpire  bool
}

// flight is a refresh in progress. Its result fields are written before
// done is closed; blocking is guarded by Credentials.mu.
type flight struct {
	done chan struct{}
	snap *snapshot
	err  error

	// blocking makes callers wait for this refresh even while the
	// credentials in hand are valid: it was forced by Invalidate, and the
	// refresh before it succeeded.
	blocking bool
	// struggling is closed when the source has failed an attempt and is
	// retrying: callers that hold valid credentials stop waiting.
	struggling chan struct{}
	once       sync.Once
}

func (f *flight) struggle() { f.once.Do(func() { close(f.struggling) }) }

// validAt reports whether the credentials can be used at t: they never
// expire, or not before t.
func (s *snapshot) validAt(t time.Time) bool { return !s.canExpire || t.Before(s.expires) }

// New returns credentials fetched at once from the instance metadata
// service (or from the source given with [WithProvider]), and kept fresh
// unless [WithoutRefresh] is given. It returns an error when the first fetch
// fails: errors.Is(err, [ErrNotOnEC2]) off EC2, errors.Is(err, [ErrNoRole])
// without an instance role. ctx bounds the first fetch only.
func New(ctx context.Context, opts ...Option) (*Credentials, error) {
	cfg := newConfig(opts)
	c := &Credentials{
		src:        &source{cfg.provider},
		refresh:    !cfg.noRefresh,
		background: !cfg.noRefresh && !cfg.noBackground,
		env:        cfg.env,
		logger:     cfg.logger,
		subs:       make(map[*subscriber]struct{}),
	}
	if cfg.provider == nil {
		p, err := newIMDS(cfg)
		if err != nil {
			return nil, err
		}
		c.src.CredentialsProvider, c.imds = p, p
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if _, err := c.fetch(ctx, TriggerInitial, nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Retrieve returns the current credentials as one consistent snapshot. When
// they are fresh it takes no lock and allocates nothing. Past the refresh
// deadline it starts a refresh unless one is under way, and waits for it
// only when the credentials in hand are within 10 seconds of their expiry
// or invalidated (or until ctx is done). It implements
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
		f = c.startLocked(TriggerOnDemand, c.invalid && c.failures == 0)
	}
	// Wait only for credentials better than those in hand: when these are
	// about to expire, or were invalidated while refreshes succeed.
	wait := f != nil && (s == nil || f.blocking || !s.validAt(now.Add(expiryMargin)))
	if !wait {
		v, err := c.lastGoodLocked(now, nil)
		c.mu.Unlock()
		return v, err
	}
	c.mu.Unlock()
	var struggling <-chan struct{}
	if s != nil && s.validAt(now) {
		struggling = f.struggling // valid credentials are better than a wait on a failing IMDS
	}
	select {
	case <-f.done:
	case <-struggling:
		return c.lastGood(time.Now(), nil)
	case <-ctx.Done():
		return aws.Credentials{}, wrap("waiting for a credential refresh", ctx.Err())
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
	defer c.mu.Unlock()
	return c.lastGoodLocked(now, err)
}

func (c *Credentials) lastGoodLocked(now time.Time, err error) (aws.Credentials, error) {
	s := c.last
	if err == nil {
		err = c.lastErr
	}
	if s != nil && s.validAt(now) {
		return s.creds, nil
	}
	if c.closed {
		return aws.Credentials{}, ErrClosed
	}
	if err == nil {
		err = errors.New("no credentials")
	}
	return aws.Credentials{}, wrap("credentials expired and refresh failed", err)
}

// Invalidate marks the credentials as due for a refresh, as [Transport]
// does when a service answers that the token has expired: the next
// Retrieve fetches new ones and waits for them, sharing one fetch with
// concurrent callers. It has the same name as
// [aws.CredentialsCache.Invalidate].
//
// Forced refreshes are rate-limited, so that a burst of such answers cannot
// turn into a burst of IMDS requests: calls made while a refresh is under
// way share it; within 30 seconds after a refresh that returned the
// credentials in hand (IMDS had nothing newer), and during the backoff that
// follows a failed refresh, Invalidate does nothing. A refresh that
// returned new credentials can be forced again at once. When the refresh
// before it failed, callers do not wait for a forced refresh; and they stop
// waiting as soon as IMDS fails an attempt of it, keeping the credentials in
// hand, since IMDS is misbehaving.
func (c *Credentials) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if f := c.flight; f != nil {
		f.blocking = f.blocking || c.failures == 0
	} else if now := time.Now(); now.Before(c.sameUntil) || now.Before(c.nextTry) {
		return
	}
	c.fresh.Store(nil)
	c.invalid = true
}

// Close stops the background refresh, waits for a refresh in progress to
// end, releases the IMDS client's idle connections (when New made the
// client), unsets the variables exported by [WithEnvironment] if they still
// hold this Credentials' values, and closes the channels returned by
// Subscribe. Retrieve keeps serving the last credentials until they expire.
// Close is safe to call twice.
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
	if c.imds != nil {
		c.imds.CloseIdleConnections()
	}
	if c.env {
		c.mu.Lock()
		exported := c.exported
		c.mu.Unlock()
		if exported != nil {
			unexportEnv(*exported)
		}
	}
	c.subsMu.Lock()
	for s := range c.subs {
		close(s.ch)
	}
	c.subs = nil // Subscribe after Close gets a closed channel
	c.subsMu.Unlock()
	return nil
}

// startLocked starts a refresh in the background. c.mu is held.
func (c *Credentials) startLocked(trigger Trigger, blocking bool) *flight {
	f := &flight{done: make(chan struct{}), struggling: make(chan struct{}), blocking: blocking}
	c.flight = f
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, fetchTimeout)
		defer cancel()
		f.snap, f.err = c.fetch(ctx, trigger, f)
		close(f.done)
	}()
	return f
}

// fetch gets new credentials from the source and installs them, or records
// the failure; either way it tells the subscribers. f is the flight it
// serves, nil for the initial fetch.
func (c *Credentials) fetch(ctx context.Context, trigger Trigger, f *flight) (*snapshot, error) {
	start := time.Now()
	if f != nil {
		ctx = context.WithValue(ctx, retryHookKey{}, f.struggle)
	}
	v, err := c.src.Retrieve(ctx)
	now := time.Now()
	var s *snapshot
	if err == nil {
		s, err = newSnapshot(v, now)
	}
	ev := RefreshEvent{Trigger: trigger, Start: start, End: now}

	c.mu.Lock()
	if trigger != TriggerInitial {
		c.flight = nil
	}
	prev := c.last
	if err == nil && s.stale {
		s, err = staleSnapshot(prev, s, now)
	}
	ev.Err = err
	if err == nil {
		c.installLocked(s, prev, now, &ev)
	} else {
		c.failedLocked(err, prev, now, &ev)
	}
	c.mu.Unlock()
	c.publish(ev)
	return s, err
}

// installLocked makes s, fetched at now, the credentials served, and
// says so in ev. c.mu is held.
func (c *Credentials) installLocked(s, prev *snapshot, now time.Time, ev *RefreshEvent) {
	changed := prev == nil || prev.creds.AccessKeyID != s.creds.AccessKeyID || prev.creds.SessionToken != s.creds.SessionToken
	c.last, c.failures, c.nextTry, c.lastErr, c.invalid = s, 0, time.Time{}, nil, false
	c.sameUntil = time.Time{}
	if !changed {
		c.sameUntil = now.Add(minForcedInterval)
	}
	if c.env && !c.closed {
		if err := exportEnv(s.creds); err != nil {
			c.logger.Warn("kivuli: could not export the new credentials to the environment; it holds the previous ones", "error", err)
		} else {
			c.exported = &s.creds
		}
	}
	if !c.closed { // after Close, readers must keep looking at the clock
		c.fresh.Store(s)
	}
	c.scheduleLocked(s, now)
	ev.Expires, ev.Extended, ev.Changed = s.expires, s.extended, changed
	if s.extended {
		c.logger.Warn("kivuli: the credential source served expired credentials and had nothing better; serving the newest ones longer and retrying later",
			"expires", s.expires, "retry_in", s.deadline.Sub(now).Round(time.Second))
	}
}

// failedLocked records a failed refresh, keeping prev, and schedules the
// next try. c.mu is held.
func (c *Credentials) failedLocked(err error, prev *snapshot, now time.Time, ev *RefreshEvent) {
	c.failures++
	c.lastErr = err
	c.nextTry = retryAt(prev, c.failures, now)
	if c.background && !c.closed && prev != nil {
		c.timer = c.afterLocked(c.timer, c.nextTry, c.backgroundRefresh)
	}
	if prev != nil {
		ev.Expires = prev.expires
		c.logger.Warn("kivuli: credential refresh failed; serving the last good credentials until they expire",
			"error", err, "expires", prev.expires, "retry_in", c.nextTry.Sub(now).Round(time.Second))
	}
}

// staleSnapshot decides what to serve when the source gave credentials
// that have expired, or expire within the refresh deadline: nothing new
// while the previous ones are valid (the refresh failed, as ec2rolecreds
// treats it by keeping the previous set); otherwise the newest of the two,
// extended by 5 to 15 minutes.
func staleSnapshot(prev, s *snapshot, now time.Time) (*snapshot, error) {
	if prev != nil && !prev.extended && now.Before(prev.expires) {
		when := "expired " + now.Sub(s.docExpires).Round(time.Second).String() + " ago"
		if s.docExpires.After(now) {
			when = "expire in " + s.docExpires.Sub(now).Round(time.Second).String()
		}
		return nil, chain(ErrStaleCredentials, "they "+when+"; the ones in hand serve until they expire", nil)
	}
	if prev != nil && prev.docExpires.After(s.docExpires) {
		p := *prev
		s = &p
	}
	extend(s, now)
	return s, nil
}

// extend serves s for 5 to 15 more minutes from now, and tries again a
// minute before that.
func extend(s *snapshot, now time.Time) {
	s.extended = true
	s.expires = now.Add(5*time.Minute + rand.N(10*time.Minute))
	s.creds.Expires = s.expires
	s.deadline = s.expires.Add(-RefreshDeadline)
	s.advisory = s.deadline
}

// retryAt is when to try again after n consecutive failed refreshes: after
// the backoff, but while the credentials in hand still serve, never later
// than (about) their refresh deadline, then never later than shortly before
// their expiry, then at their expiry, so that a recovered IMDS is found
// before they expire.
func retryAt(prev *snapshot, n int, now time.Time) time.Time {
	next := now.Add(backoff(n))
	if prev == nil || !prev.canExpire || !now.Before(prev.expires) {
		return next
	}
	limit := prev.expires
	switch last := prev.expires.Add(-expiryMargin - retryJitter); {
	case now.Before(prev.deadline):
		limit = prev.deadline.Add(rand.N(retryJitter))
	case now.Before(last):
		limit = last.Add(rand.N(retryJitter))
	}
	if next.After(limit) {
		return limit
	}
	return next
}

// newSnapshot derives the refresh times of fresh credentials. Credentials
// that expire within the refresh deadline are marked stale, for fetch to
// decide.
func newSnapshot(v aws.Credentials, now time.Time) (*snapshot, error) {
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, errors.New("kivuli: the credential source returned an empty access key")
	}
	if !printable(v.AccessKeyID) || !printable(v.SecretAccessKey) || !printable(v.SessionToken) {
		// They could not be sent in a header, nor exported.
		return nil, errors.New("kivuli: the credential source returned credentials holding characters other than visible ASCII")
	}
	s := &snapshot{creds: v, fetched: now, canExpire: v.CanExpire, docExpires: v.Expires}
	if !v.CanExpire {
		return s, nil
	}
	if !v.Expires.After(now.Add(RefreshDeadline)) {
		s.stale = true
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
	c.startLocked(TriggerBackground, false)
}

// backoff is the pause after n consecutive failures: 10s doubling up to
// 5 minutes, jittered between half and all of it.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 6 {
		d = min(maxBackoff, 10*time.Second<<(n-1))
	}
	return halfJitter(d)
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
