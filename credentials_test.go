package kivuli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newCredentials(t *testing.T, srv *imdstest.Server, opts ...kivuli.Option) *kivuli.Credentials {
	t.Helper()
	all := []kivuli.Option{inMemory(srv)}
	if srv.URL != "" {
		all = []kivuli.Option{kivuli.WithEndpoint(srv.URL)}
	}
	c, err := kivuli.New(t.Context(), append(all, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func assertCurrent(t *testing.T, srv *imdstest.Server, v aws.Credentials) {
	t.Helper()
	cur := srv.Current()
	assert.Equal(t, cur.AccessKeyID, v.AccessKeyID)
	assert.Equal(t, cur.SecretAccessKey, v.SecretAccessKey)
	assert.Equal(t, cur.SessionToken, v.SessionToken)
}

func TestNew(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	v, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	assertCurrent(t, srv, v)
	assert.Equal(t, v.AccessKeyID, c.AccessKeyID())
	assert.Equal(t, v.SecretAccessKey, c.SecretAccessKey())
	assert.Equal(t, v.SessionToken, c.Token())
	assert.True(t, c.Expires().Equal(srv.Current().Expiration))
	assert.Equal(t, 1, srv.Stats().CredentialGETs, "New fetches once; fresh reads do not fetch")

	var _ aws.CredentialsProvider = c
	cfg := aws.Config{Credentials: c}
	v2, err := cfg.Credentials.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, v, v2)
}

func TestReadPathAllocatesNothing(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	ctx := t.Context()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.Retrieve(ctx); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// TestRefreshStorm: 10,000 callers that find the credentials about to
// expire (within 10 s) share one fetch, and each waits for its result.
// (Before issue 9 they did so at the refresh deadline; there they no longer
// wait, see TestRefreshStormAtDeadline.)
func TestRefreshStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		old, _ := c.Retrieve(t.Context())
		time.Sleep(time.Until(c.Expires().Add(-5 * time.Second)))
		synctest.Wait()
		before := srv.Stats().CredentialGETs

		const callers = 10000
		var wg sync.WaitGroup
		var failed, stale atomic.Int32
		for range callers {
			wg.Go(func() {
				v, err := c.Retrieve(t.Context())
				if err != nil {
					failed.Add(1)
				} else if v.AccessKeyID == old.AccessKeyID {
					stale.Add(1)
				}
			})
		}
		wg.Wait()
		assert.Zero(t, failed.Load())
		assert.Zero(t, stale.Load(), "every caller waits for the new credentials")
		assert.Equal(t, 1, srv.Stats().CredentialGETs-before, "%d callers, one credential GET", callers)
		t.Logf("%d concurrent callers 5 s before expiry: %d credential GET(s)", callers, srv.Stats().CredentialGETs-before)
	})
}

// TestRefreshStormAtDeadline: 10,000 callers at the refresh deadline, when
// the credentials are valid for one more minute, share one fetch and none
// of them waits for it (issue 9, defect 6).
func TestRefreshStormAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		old, _ := c.Retrieve(t.Context())
		time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
		synctest.Wait()
		before := srv.Stats().CredentialGETs
		// The fetch takes 10 ms: a caller that waited for it would see time pass.
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Delay: 10 * time.Millisecond, Times: 1})

		const callers = 10000
		start := time.Now()
		var wg sync.WaitGroup
		var failed, waited, renewed atomic.Int32
		for range callers {
			wg.Go(func() {
				v, err := c.Retrieve(t.Context())
				switch {
				case err != nil:
					failed.Add(1)
				case time.Since(start) > 0:
					waited.Add(1)
				case v.AccessKeyID != old.AccessKeyID:
					renewed.Add(1)
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		assert.Zero(t, failed.Load())
		assert.Zero(t, waited.Load(), "no caller waits while the credentials are valid")
		assert.Zero(t, renewed.Load(), "every caller got the credentials in hand")
		assert.Equal(t, 1, srv.Stats().CredentialGETs-before, "%d callers, one credential GET", callers)
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assertCurrent(t, srv, v)
		assert.NotEqual(t, old.AccessKeyID, v.AccessKeyID, "the refresh went on in the background")
	})
}

// TestInvalidateStorm does the same over real sockets, after Invalidate.
func TestInvalidateStorm(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	srv.Rotate()
	c.Invalidate()
	before := srv.Stats().CredentialGETs
	var wg sync.WaitGroup
	for range 10000 {
		wg.Go(func() {
			v, err := c.Retrieve(context.Background())
			assert.NoError(t, err)
			assert.Equal(t, srv.Current().AccessKeyID, v.AccessKeyID)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, srv.Stats().CredentialGETs-before)
}

func TestBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour, RotateBefore: 15 * time.Minute})
		defer srv.Close()
		c := newCredentials(t, srv)
		events, cancel := c.Subscribe()
		defer cancel()
		first, _ := c.Retrieve(t.Context())
		deadline := c.Expires().Add(-kivuli.RefreshDeadline)

		time.Sleep(time.Until(deadline) - time.Second)
		synctest.Wait()
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assertCurrent(t, srv, v)
		assert.NotEqual(t, first.AccessKeyID, v.AccessKeyID, "renewed before the deadline, in the background")

		var got []kivuli.RefreshEvent
		for len(events) > 0 {
			got = append(got, <-events)
		}
		require.NotEmpty(t, got)
		lifetime := deadline.Sub(first.Expires.Add(-time.Hour))
		window := min(15*time.Minute, lifetime/4)
		assert.False(t, got[0].Start.Before(deadline.Add(-window)), "not before the advisory window")
		assert.False(t, got[0].Start.After(deadline.Add(-window/2)), "jittered within the first half of the window")
		for _, ev := range got {
			assert.Equal(t, kivuli.TriggerBackground, ev.Trigger, "no caller had to wait")
			assert.NoError(t, ev.Err)
		}
		assert.True(t, got[len(got)-1].Changed)
		t.Logf("background refreshes: %d, first at deadline-%v", len(got), deadline.Sub(got[0].Start))
	})
}

// TestRefreshDeadline: the seed's promise, refresh no later than one minute
// before expiry, holds without the background refresh.
func TestRefreshDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		first, _ := c.Retrieve(t.Context())
		deadline := c.Expires().Add(-kivuli.RefreshDeadline)

		time.Sleep(time.Until(deadline) - time.Millisecond)
		v, _ := c.Retrieve(t.Context())
		assert.Equal(t, first.AccessKeyID, v.AccessKeyID)
		assert.Equal(t, 1, srv.Stats().CredentialGETs)

		time.Sleep(time.Millisecond)
		synctest.Wait() // the deadline's timer has fired
		// The first caller past the deadline starts the refresh, and gets
		// the credentials in hand, valid one more minute, without waiting
		// (issue 9, defect 6); the refresh goes on in the background.
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, first.AccessKeyID, v.AccessKeyID)
		synctest.Wait()
		v, err = c.Retrieve(t.Context())
		require.NoError(t, err)
		assert.NotEqual(t, first.AccessKeyID, v.AccessKeyID)
		assertCurrent(t, srv, v)
		assert.Equal(t, 2, srv.Stats().CredentialGETs)
	})
}

func TestStaticStability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		events, cancel := c.Subscribe()
		defer cancel()
		good, _ := c.Retrieve(t.Context())
		expires := c.Expires()

		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusInternalServerError})
		time.Sleep(time.Until(expires.Add(-kivuli.RefreshDeadline)))
		synctest.Wait()
		// Callers keep getting the last good credentials while IMDS fails,
		// and do not each hit IMDS.
		before := srv.Stats().CredentialGETs
		for range 100 {
			v, err := c.Retrieve(t.Context())
			require.NoError(t, err)
			assert.Equal(t, good.AccessKeyID, v.AccessKeyID)
			time.Sleep(500 * time.Millisecond)
		}
		calls := srv.Stats().CredentialGETs - before
		// Refreshes at the deadline, after backoffs of 5-10 s and 10-20 s,
		// then at most twice more before the 15 s before expiry: at most
		// 5 refreshes of 4 attempts each in these 50 s.
		assert.LessOrEqual(t, calls, 5*4, "at most a few refreshes (of 4 attempts each) in 50 s, with backoff")
		ev := <-events
		var ie *kivuli.IMDSError
		assert.ErrorAs(t, ev.Err, &ie)
		assert.True(t, ev.Expires.Equal(expires), "the event says until when the old credentials serve")

		time.Sleep(time.Until(expires) + time.Millisecond)
		synctest.Wait()
		_, err := c.Retrieve(t.Context())
		require.ErrorAs(t, err, &ie, "after the real expiry, the failure shows")

		srv.ClearFaults()
		time.Sleep(5 * time.Minute)
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assertCurrent(t, srv, v)
	})
}

func TestExpiredCredentialsFromIMDS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Expired: true, Times: 2})
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		events, cancel := c.Subscribe()
		defer cancel()
		now := time.Now()
		assert.GreaterOrEqual(t, c.Expires().Sub(now), 5*time.Minute)
		assert.LessOrEqual(t, c.Expires().Sub(now), 15*time.Minute)
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err, "expired credentials from IMDS are served a while, as the SDKs do")
		assert.True(t, v.Expires.Equal(c.Expires()))

		c.Invalidate()
		_, err = c.Retrieve(t.Context())
		require.NoError(t, err)
		ev := <-events
		assert.True(t, ev.Extended)
		time.Sleep(time.Until(c.Expires()))
		synctest.Wait()
		v, err = c.Retrieve(t.Context())
		require.NoError(t, err)
		assert.True(t, v.Expires.Equal(srv.Current().Expiration), "then fresh ones once IMDS has them")
	})
}

// TestCallerStopsWaiting: a caller's context ends its wait, not the shared
// refresh. (The caller waits because the credentials have expired; at the
// refresh deadline it no longer would, since issue 9.)
func TestCallerStopsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		time.Sleep(time.Until(c.Expires()))
		synctest.Wait()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Delay: 3 * time.Second, Times: 1})

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := c.Retrieve(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assertCurrent(t, srv, v)
		assert.Equal(t, 2, srv.Stats().CredentialGETs, "the first caller's refresh went on and was shared")
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv)
		first, _ := c.Retrieve(t.Context())
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "twice is fine")
		time.Sleep(time.Until(first.Expires) - 2*time.Minute)
		synctest.Wait()
		assert.Equal(t, 1, srv.Stats().CredentialGETs, "no refresh after Close")
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err, "the last credentials serve until they expire")
		assert.Equal(t, first.AccessKeyID, v.AccessKeyID)
		time.Sleep(3 * time.Minute)
		_, err = c.Retrieve(t.Context())
		require.ErrorIs(t, err, kivuli.ErrClosed)
	})
}

// TestConcurrentUse runs readers, invalidations and background refreshes
// together under the race detector.
func TestConcurrentUse(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{Lifetime: 3 * time.Minute, RotateBefore: 2*time.Minute + 50*time.Second})
	defer srv.Close()
	c := newCredentials(t, srv)
	events, cancel := c.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := c.Retrieve(context.Background())
				if !assert.NoError(t, err) || !assert.NotEmpty(t, v.SessionToken) {
					return
				}
				if i%10 == 0 {
					c.Invalidate()
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.NoError(t, c.Close())
	for range events {
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	cur := srv.Current()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "creds", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "creds", c)
	events, cancel := c.Subscribe()
	defer cancel()
	c.Invalidate()
	_, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	ev := <-events
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c),
		buf.String(), fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev),
	} {
		assert.NotContains(t, s, cur.SecretAccessKey)
		assert.NotContains(t, s, cur.SessionToken)
	}
	assert.Contains(t, fmt.Sprint(c), cur.AccessKeyID)
}

// TestStaleDocumentKeepsValidCredentials (issue 9, defect 1): with the
// credentials in hand valid for 20 more minutes, a refresh that gets a
// document already expired fails: the credentials in hand keep serving,
// the event says why, and the refresh is retried.
func TestStaleDocumentKeepsValidCredentials(t *testing.T) {
	for _, forced := range []bool{false, true} {
		t.Run(map[bool]string{false: "background refresh", true: "forced refresh"}[forced], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
				defer srv.Close()
				c := newCredentials(t, srv)
				events, cancel := c.Subscribe()
				defer cancel()
				good, _ := c.Retrieve(t.Context())
				expires := c.Expires()

				time.Sleep(time.Until(expires.Add(-20 * time.Minute)))
				srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Expired: true})
				if forced {
					c.Invalidate()
				} else {
					time.Sleep(12 * time.Minute) // past the background refresh, 8.4 to 15.75 minutes before expiry
				}
				synctest.Wait()
				for range 100 {
					v, err := c.Retrieve(t.Context())
					require.NoError(t, err)
					require.Equal(t, good.AccessKeyID, v.AccessKeyID, "the credentials in hand keep serving")
					require.True(t, v.Expires.Equal(expires))
				}
				require.NotEmpty(t, events)
				ev := <-events
				assert.ErrorIs(t, ev.Err, kivuli.ErrStaleCredentials)
				assert.False(t, ev.Extended)
				assert.False(t, ev.Changed)
				assert.True(t, ev.Expires.Equal(expires), "the event says until when the credentials in hand serve")
				assert.Regexp(t, `expired 1m[01]s ago`, ev.Err.Error()) // IMDS's times are whole seconds

				srv.ClearFaults()
				time.Sleep(time.Until(expires.Add(-kivuli.RefreshDeadline).Add(6 * time.Second)))
				synctest.Wait()
				v, err := c.Retrieve(t.Context())
				require.NoError(t, err)
				assert.NotEqual(t, good.AccessKeyID, v.AccessKeyID, "renewed by the refresh deadline once IMDS has valid ones")
				assertCurrent(t, srv, v)
			})
		})
	}
}

// TestStaleDocumentExtendsOnlyWhenNothingBetter (issue 9, defect 1): once
// the credentials in hand have expired too, the newest of the two sets is
// served 5 to 15 more minutes.
func TestStaleDocumentExtendsOnlyWhenNothingBetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv)
		events, cancel := c.Subscribe()
		defer cancel()
		good, _ := c.Retrieve(t.Context())
		expires := c.Expires()
		srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Expired: true})
		time.Sleep(time.Until(expires))
		synctest.Wait()
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err, "nothing better: served longer")
		now := time.Now()
		assert.Equal(t, good.AccessKeyID, v.AccessKeyID, "the set in hand expired a minute after the one IMDS serves: it is the newest")
		assert.GreaterOrEqual(t, v.Expires.Sub(now), 5*time.Minute-time.Second)
		assert.LessOrEqual(t, v.Expires.Sub(now), 15*time.Minute)
		var extended bool
		for len(events) > 0 {
			ev := <-events
			extended = extended || ev.Extended && ev.Err == nil
		}
		assert.True(t, extended, "an event says the credentials were extended")
	})
}

// expiredTokenService answers every request as AWS does a request signed
// with an expired token.
var expiredTokenService = serviceFunc(func(req *http.Request) (*http.Response, error) {
	const body = `{"__type":"ExpiredToken","message":"The security token included in the request is expired"}`
	h := http.Header{"X-Amzn-Errortype": {"ExpiredToken"}, "Content-Type": {"application/x-amz-json-1.1"}}
	return &http.Response{StatusCode: http.StatusForbidden, Header: h, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}, nil
})

// TestForcedRefreshRateLimited (issue 9, defect 2): ExpiredToken answers
// make the Transport invalidate the credentials; when IMDS hands back the
// same set, the forced refreshes are shared and spaced 30 s apart, so that
// the IMDS credential GETs stay bounded however many requests are refused.
func TestForcedRefreshRateLimited(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests int
		over     time.Duration
	}{
		{"100 requests one after another", 100, 0},
		{"1,480 requests in 2 s", 1480, 2 * time.Second},
		{"1,480 requests in 2 min", 1480, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := imdstest.NewHandler(imdstest.Config{})
				defer srv.Close()
				c := newCredentials(t, srv)
				client := &http.Client{Transport: &kivuli.Transport{Credentials: c, Base: expiredTokenService}}
				send := func() {
					resp, err := client.Get("https://sts.us-east-1.amazonaws.com/")
					if assert.NoError(t, err) {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						assert.Equal(t, http.StatusForbidden, resp.StatusCode)
					}
				}
				before := srv.Stats().CredentialGETs
				start := time.Now()
				if tc.over == 0 {
					for range tc.requests {
						send()
					}
				} else {
					var wg sync.WaitGroup
					for i := range tc.requests {
						wg.Go(func() {
							time.Sleep(tc.over * time.Duration(i) / time.Duration(tc.requests))
							send()
						})
					}
					wg.Wait()
				}
				synctest.Wait()
				gets := srv.Stats().CredentialGETs - before
				bound := 1 + int(time.Since(start)/(30*time.Second))
				t.Logf("%d requests answered ExpiredToken over %v: %d IMDS credential GETs (bound %d)", tc.requests, time.Since(start), gets, bound)
				assert.LessOrEqual(t, gets, bound, "one forced refresh per 30 s while IMDS has nothing newer")
				assert.GreaterOrEqual(t, gets, 1, "the first ExpiredToken does force a refresh")
			})
		})
	}
}

// TestNoWaitWhileValid (issue 9, defect 6): a caller waits for a refresh
// only when the credentials in hand can no longer be used. At the refresh
// deadline, against a failing or hung IMDS, it gets them at once; a forced
// refresh holds it only until IMDS fails an attempt, and not at all once a
// refresh has failed.
func TestNoWaitWhileValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault imdstest.Fault
		// forcedWait is the longest a forced refresh may hold a caller: one
		// attempt, 500 ms for a hung IMDS (the client's timeout).
		forcedWait time.Duration
	}{
		{"503 with Retry-After", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 503, RetryAfter: 1}, 0},
		{"429 with Retry-After", imdstest.Fault{Target: imdstest.CredentialsPath, Status: 429, RetryAfter: 1}, 0},
		{"hung", imdstest.Fault{Target: imdstest.CredentialsPath, Hang: true}, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
				defer srv.Close()
				hc := &http.Client{Transport: srv.RoundTripper(), Timeout: 500 * time.Millisecond}
				c := newCredentials(t, srv, kivuli.WithHTTPClient(hc), kivuli.WithoutBackground())
				good, _ := c.Retrieve(t.Context())
				timed := func() time.Duration {
					t.Helper()
					start := time.Now()
					v, err := c.Retrieve(t.Context())
					require.NoError(t, err)
					require.Equal(t, good.AccessKeyID, v.AccessKeyID)
					return time.Since(start)
				}
				srv.Inject(tc.fault)

				// A forced refresh, the one before it having succeeded.
				c.Invalidate()
				assert.LessOrEqual(t, timed(), tc.forcedWait, "held only until IMDS failed an attempt")
				for range 10 {
					assert.Zero(t, timed(), "the refresh goes on in the background")
				}
				// Forced again after the backoff: the refresh before failed.
				time.Sleep(5 * time.Minute)
				c.Invalidate()
				assert.Zero(t, timed(), "IMDS is failing: no caller waits for a forced refresh")

				// The refresh deadline, valid for one more minute.
				time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
				for range 50 {
					assert.Zero(t, timed(), "valid for one more minute: no wait")
					time.Sleep(time.Second)
				}
			})
		})
	}
}

// TestEmulatorRotatesBeforeKivuliLooks (issue 9, point 7): with the
// emulator's defaults, new credentials are available long before kivuli's
// background refresh looks for them, so that a test expecting "rotated by
// 55 minutes" of a 1-hour set holds in every run, not 7 in 8.
func TestEmulatorRotatesBeforeKivuliLooks(t *testing.T) {
	const runs = 200
	late := 0
	for range runs {
		synctest.Test(t, func(t *testing.T) {
			srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
			defer srv.Close()
			c := newCredentials(t, srv)
			first, _ := c.Retrieve(t.Context())
			time.Sleep(55 * time.Minute)
			synctest.Wait()
			if v, _ := c.Retrieve(t.Context()); v.AccessKeyID == first.AccessKeyID {
				late++
			}
			c.Close()
		})
	}
	assert.Zero(t, late, "runs of %d not rotated by 55 minutes", runs)
}

// TestCredentialsThatNeverExpire: a source's credentials without an expiry
// keep serving after a failed forced refresh, and after Close.
func TestCredentialsThatNeverExpire(t *testing.T) {
	var fail atomic.Bool
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		if fail.Load() {
			return aws.Credentials{}, errors.New("source down")
		}
		return aws.Credentials{AccessKeyID: "AKIDSTATIC", SecretAccessKey: "secret"}, nil
	})
	c, err := kivuli.New(t.Context(), kivuli.WithProvider(p))
	require.NoError(t, err)
	fail.Store(true)
	c.Invalidate()
	v, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "AKIDSTATIC", v.AccessKeyID)
	require.NoError(t, c.Close())
	v, err = c.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "AKIDSTATIC", v.AccessKeyID)
}

// TestCredentialsValueFormatting: %v of a Credentials value (which vet
// flags, but a user can write) prints no secret, whatever the source and
// options.
func TestCredentialsValueFormatting(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	static := staticSource{aws.Credentials{AccessKeyID: "AKIDSTATIC", SecretAccessKey: "STATICSECRETVALUE", SessionToken: "STATICTOKENVALUE"}}
	for name, opts := range map[string][]kivuli.Option{
		"IMDS":              {kivuli.WithEndpoint(srv.URL)},
		"IMDS, environment": {kivuli.WithEndpoint(srv.URL), kivuli.WithEnvironment()},
		"static source":     {kivuli.WithProvider(static)},
	} {
		c, err := kivuli.New(t.Context(), opts...)
		require.NoError(t, err)
		cur := srv.Current()
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			s := fmt.Sprintf(verb, reflect.ValueOf(c).Elem().Interface()) // *c, which vet flags, but a user can write
			for _, secret := range []string{cur.SecretAccessKey, cur.SessionToken, "STATICSECRETVALUE", "STATICTOKENVALUE"} {
				assert.NotContains(t, s, secret, "%s, %s", name, verb)
			}
		}
		c.Close()
	}
}

// staticSource holds its credentials in a field, as the SDK's static
// provider does.
type staticSource struct{ v aws.Credentials }

func (s staticSource) Retrieve(context.Context) (aws.Credentials, error) { return s.v, nil }

// TestForcedRefreshBodyStall: an IMDS that sends a document's headers and
// then stalls its body does not hold callers during a forced refresh: the
// default client bounds each request, body included, so the refresh fails
// soon and callers get the credentials in hand, still valid.
func TestForcedRefreshBodyStall(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c, err := kivuli.New(t.Context(), kivuli.WithEndpoint(srv.URL)) // the default IMDS client
	require.NoError(t, err)
	defer c.Close()
	first, err := c.Retrieve(t.Context())
	require.NoError(t, err)

	srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, StallBody: true})
	c.Invalidate()                                                  // as an ExpiredToken answer does
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang detector: a second is expected
	defer cancel()
	v, err := c.Retrieve(ctx)
	require.NoError(t, err, "the caller got the credentials in hand, not the stalled refresh")
	assert.Equal(t, first.AccessKeyID, v.AccessKeyID)
}
