package kivuli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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

// TestRefreshStorm: 10,000 callers at the refresh deadline share one fetch.
func TestRefreshStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		old, _ := c.Retrieve(t.Context())
		time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
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
		t.Logf("%d concurrent callers at the refresh deadline: %d credential GET(s)", callers, srv.Stats().CredentialGETs-before)
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
		v, err := c.Retrieve(t.Context())
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
		assert.LessOrEqual(t, calls, 4*4, "at most a few refreshes (of 4 attempts each) in 50 s, with backoff")
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

func TestSubscribers(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	slow, cancelSlow := c.Subscribe()
	_, cancelAbsent := c.Subscribe()
	defer cancelAbsent()

	const refreshes = 20
	for range refreshes {
		c.Invalidate()
		_, err := c.Retrieve(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, refreshes+1, srv.Stats().CredentialGETs, "full channels never hold a refresh back")
	for range 16 {
		ev := <-slow
		assert.Equal(t, kivuli.TriggerOnDemand, ev.Trigger)
		assert.Zero(t, ev.Missed)
	}
	c.Invalidate()
	_, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	ev := <-slow
	assert.Equal(t, refreshes-16, ev.Missed, "dropped events are counted")
	cancelSlow()
	_, open := <-slow
	assert.False(t, open, "cancel closes the channel")

	late, _ := c.Subscribe()
	require.NoError(t, c.Close())
	_, open = <-late
	assert.False(t, open, "Close closes the channels")
	_, open = <-func() <-chan kivuli.RefreshEvent { ch, _ := c.Subscribe(); return ch }()
	assert.False(t, open, "Subscribe after Close gets a closed channel")
}

func TestEnvironment(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithEnvironment())
		check := func() {
			t.Helper()
			cur := srv.Current()
			assert.Equal(t, cur.AccessKeyID, os.Getenv("AWS_ACCESS_KEY_ID"))
			assert.Equal(t, cur.SecretAccessKey, os.Getenv("AWS_SECRET_ACCESS_KEY"))
			assert.Equal(t, cur.SessionToken, os.Getenv("AWS_SESSION_TOKEN"))
		}
		check()
		first := os.Getenv("AWS_ACCESS_KEY_ID")
		// No Retrieve: the refresh, and the export, happen on their own.
		time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
		synctest.Wait()
		assert.NotEqual(t, first, os.Getenv("AWS_ACCESS_KEY_ID"))
		check()
	})
}

func TestWithoutRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutRefresh())
		first, _ := c.Retrieve(t.Context())
		time.Sleep(2 * time.Hour)
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, first, v)
		assert.Equal(t, 1, srv.Stats().CredentialGETs)
	})
}

func TestWithProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var fail atomic.Bool
		p := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
			n := calls.Add(1)
			if fail.Load() {
				return aws.Credentials{}, errors.New("source down")
			}
			return aws.Credentials{
				AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: "secret",
				CanExpire: true, Expires: time.Now().Add(30 * time.Minute),
			}, nil
		})
		c, err := kivuli.New(t.Context(), kivuli.WithProvider(p))
		require.NoError(t, err)
		defer c.Close()
		for range 1000 {
			_, err := c.Retrieve(t.Context())
			require.NoError(t, err)
		}
		assert.Equal(t, int32(1), calls.Load(), "cached")
		time.Sleep(29 * time.Minute)
		synctest.Wait()
		assert.Equal(t, "AKID2", c.AccessKeyID(), "refreshed in the background")

		fail.Store(true)
		c.Invalidate()
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err, "the last good credentials keep serving")
		assert.Equal(t, "AKID2", v.AccessKeyID)
	})
	t.Run("first fetch fails", func(t *testing.T) {
		_, err := kivuli.New(t.Context(), kivuli.WithProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("source down")
		})))
		require.ErrorContains(t, err, "source down")
	})
	t.Run("empty credentials", func(t *testing.T) {
		_, err := kivuli.New(t.Context(), kivuli.WithProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, nil
		})))
		require.Error(t, err)
	})
}

// TestCallerStopsWaiting: a caller's context ends its wait, not the shared
// refresh.
func TestCallerStopsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutBackground())
		time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
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
