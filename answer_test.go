package kivuli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const expiredTokenBody = `{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}`

// stallingHandler answers 403 at once, then holds the body until release
// is closed: the ExpiredToken code is only in the body.
func stallingHandler(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusForbidden)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, expiredTokenBody)
	})
}

// TestErrorAnswerDoesNotBlock: RoundTrip returns an error answer as soon as
// its headers arrive, whatever its body does, and acts on the code in the
// body once the caller has read it.
func TestErrorAnswerDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	r := newRig(t, stallingHandler(release))
	defer free()
	tr := r.transport("es")

	used, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	r.imds.Rotate() // new credentials wait in IMDS

	// A watchdog frees the body in case RoundTrip waits for it, so that the
	// test fails rather than hangs.
	watchdog := time.AfterFunc(10*time.Second, free)
	req, _ := http.NewRequest(http.MethodGet, r.endpoint.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	returned := watchdog.Stop()
	require.NoError(t, err)
	require.True(t, returned, "RoundTrip waited for the body of a 403")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	cur, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, used.AccessKeyID, cur.AccessKeyID, "nothing is known before the body is read")

	free()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, expiredTokenBody, string(body), "the caller reads the body unchanged")
	cur, err = r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, used.AccessKeyID, cur.AccessKeyID, "the body's ExpiredToken invalidated the credentials")
}

// TestErrorAnswerHeader: the code in X-Amzn-ErrorType is acted on before
// RoundTrip returns, without reading the body.
func TestErrorAnswerHeader(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/")
		w.WriteHeader(http.StatusForbidden)
		w.(http.Flusher).Flush()
		<-release
	}))
	used, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	r.imds.Rotate()
	watchdog := time.AfterFunc(10*time.Second, free)
	req, _ := http.NewRequest(http.MethodGet, r.endpoint.URL+"/", nil)
	resp, err := r.transport("es").RoundTrip(req)
	require.NoError(t, err)
	require.True(t, watchdog.Stop(), "RoundTrip waited for the body of a 403")
	defer resp.Body.Close()
	cur, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, used.AccessKeyID, cur.AccessKeyID)
}

// TestClockCorrection: a clock-skew answer corrects the signing clock only
// when it comes from an AWS endpoint, only within a day, and each change is
// logged once.
func TestClockCorrection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		url       string
		date      time.Time
		header    bool // the code in X-Amzn-ErrorType rather than the body
		corrected bool
		logged    string
	}{
		{"AWS endpoint, 40 minutes ahead", "https://sts.us-east-1.amazonaws.com/", time.Now().Add(40 * time.Minute), false, true, "correcting"},
		{"AWS endpoint, header", "https://sts.us-east-1.amazonaws.com/", time.Now().Add(-2 * time.Hour), true, true, "correcting"},
		{"AWS endpoint, year 2000", "https://sts.us-east-1.amazonaws.com/", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), false, false, "ignoring"},
		{"AWS endpoint, 25 hours behind", "https://sts.us-east-1.amazonaws.com/", time.Now().Add(-25 * time.Hour), true, false, "ignoring"},
		{"listed host, 40 minutes ahead", "https://search.example.com/", time.Now().Add(40 * time.Minute), false, false, ""},
		{"listed host, year 2000", "https://search.example.com/", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dates []time.Time
			skewed := true
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				d, err := time.Parse("20060102T150405Z", req.Header.Get("X-Amz-Date"))
				require.NoError(t, err)
				dates = append(dates, d)
				resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}
				if skewed {
					resp.StatusCode = http.StatusForbidden
					resp.Header.Set("Date", tc.date.UTC().Format(http.TimeFormat))
					resp.Body = io.NopCloser(strings.NewReader(`<Error><Code>RequestTimeTooSkewed</Code></Error>`))
					if tc.header {
						resp.Header.Set("X-Amzn-ErrorType", "RequestTimeTooSkewed")
					}
				}
				return resp, nil
			})
			var logs bytes.Buffer
			tr := &kivuli.Transport{Credentials: staticCreds, Service: "sts", Region: "us-east-1", Base: base,
				AllowedHosts: []string{"search.example.com"},
				Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			for range 3 {
				req, _ := http.NewRequest(http.MethodPost, tc.url, strings.NewReader("Action=GetCallerIdentity"))
				resp, err := tr.RoundTrip(req)
				require.NoError(t, err)
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			skewed = false
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := tr.RoundTrip(req)
			require.NoError(t, err)
			last := dates[len(dates)-1]
			if tc.corrected {
				assert.WithinDuration(t, tc.date, last, 5*time.Second, "signed with the corrected clock")
			} else {
				assert.WithinDuration(t, time.Now(), last, 5*time.Second, "signed with the local clock")
			}
			if tc.logged == "" {
				assert.Empty(t, logs.String())
			} else {
				assert.Equal(t, 1, strings.Count(logs.String(), tc.logged), "logged once: %s", logs.String())
			}
		})
	}
}

// TestExpiredTokenNeverWaitsForAProvider: acting on an ExpiredToken answer
// never waits for the credentials' refresh: a provider other than
// *Credentials is invalidated without being asked for its credentials,
// which could mean waiting for a slow fetch with no deadline.
func TestExpiredTokenNeverWaitsForAProvider(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	calls := 0
	var mu sync.Mutex
	cache := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n > 1 {
			<-release // a refresh that takes its time
		}
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	}))
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		cache.Invalidate() // the credentials change while the request is in flight
		h := http.Header{"X-Amzn-Errortype": {"ExpiredTokenException"}}
		return &http.Response{StatusCode: http.StatusForbidden, Header: h, Body: http.NoBody, Request: req}, nil
	})
	tr := &kivuli.Transport{Credentials: cache, Service: "sts", Region: "us-east-1", Base: base}
	watchdog := time.AfterFunc(10*time.Second, free)
	req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
	_, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.True(t, watchdog.Stop(), "RoundTrip waited for the provider's refresh")
}

// TestErrorTextIsNotACode: a code is taken only where codes stand; an
// error body that merely mentions one (echoing the caller's input) does
// not invalidate the credentials, which would cost IMDS calls each time.
func TestErrorTextIsNotACode(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid index name [ExpiredToken]","status":400}`)
	}))
	before := r.imds.Stats().CredentialGETs
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, r.endpoint.URL+"/", nil)
		resp, err := r.transport("es").RoundTrip(req)
		require.NoError(t, err)
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	_, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, before, r.imds.Stats().CredentialGETs)
}

// TestClockWarningsBounded: answers that keep changing the offset are
// logged at most once a minute.
func TestClockWarningsBounded(t *testing.T) {
	n := 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n++
		offset := 20 * time.Hour
		if n%2 == 0 {
			offset = -offset
		}
		h := http.Header{"X-Amzn-Errortype": {"RequestTimeTooSkewed"}, "Date": {time.Now().Add(offset).UTC().Format(http.TimeFormat)}}
		return &http.Response{StatusCode: http.StatusForbidden, Header: h, Body: http.NoBody, Request: req}, nil
	})
	var logs bytes.Buffer
	tr := &kivuli.Transport{Credentials: staticCreds, Service: "sts", Region: "us-east-1", Base: base,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for range 20 {
		req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
		_, err := tr.RoundTrip(req)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "correcting"), logs.String())
}

// TestExpiredTokenAnswersBounded: answers that keep saying ExpiredToken
// force at most one refresh every 30 seconds, even from a source that
// hands out new credentials on every call, behind kivuli's cache or the
// SDK's.
func TestExpiredTokenAnswersBounded(t *testing.T) {
	var fetches atomic.Int32
	minting := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n := fetches.Add(1)
		return aws.Credentials{AccessKeyID: fmt.Sprintf("ASIAMINTED%06d", n), SecretAccessKey: "SECRET", SessionToken: "TOKEN",
			CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	})
	expired := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := http.Header{"X-Amzn-Errortype": {"ExpiredTokenException"}}
		return &http.Response{StatusCode: http.StatusForbidden, Header: h, Body: http.NoBody, Request: req}, nil
	})
	kc, err := kivuli.New(context.Background(), kivuli.WithProvider(minting))
	require.NoError(t, err)
	defer kc.Close()
	for name, provider := range map[string]aws.CredentialsProvider{
		"kivuli.Credentials":   kc,
		"aws.CredentialsCache": aws.NewCredentialsCache(minting),
	} {
		tr := &kivuli.Transport{Credentials: provider, Service: "sts", Region: "us-east-1", Base: expired}
		if _, err := provider.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
		before := fetches.Load()
		for range 100 {
			req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
			_, err := tr.RoundTrip(req)
			require.NoError(t, err)
		}
		assert.LessOrEqual(t, fetches.Load()-before, int32(1), name)
	}
}
