package kivuli_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetryingClient(t *testing.T) {
	var fails atomic.Int32
	var mu sync.Mutex
	var bodies []string
	next := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch fails.Add(-1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 0:
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
		default:
			io.WriteString(w, "ok")
		}
	})
	r := newRig(t, next)
	tr := r.transport("es")
	rt := kivuli.NewRetryingTransport(tr, func(o *kivuli.RetryOptions) { o.MinWait, o.MaxWait = time.Millisecond, 2*time.Millisecond })
	client := &http.Client{Transport: rt}

	for _, kind := range bodyKinds() {
		if kind.name == "64MiB" {
			continue
		}
		t.Run(kind.name, func(t *testing.T) {
			fails.Store(2) // a 503, a throttling error, then success
			mu.Lock()
			bodies = nil
			mu.Unlock()
			n := len(r.endpoint.Records())
			req, size := kind.make(t, http.MethodPost, r.endpoint.URL+"/")
			resp, err := client.Do(req)
			require.NoError(t, err)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, "ok", string(got))
			recs := r.endpoint.Records()[n:]
			require.Len(t, recs, 3, "three attempts")
			for _, rec := range recs {
				require.NoError(t, rec.Err, "every attempt is signed afresh")
				assert.Equal(t, int64(size), rec.BodyLen, "from a rewound body")
			}
			mu.Lock()
			assert.Len(t, bodies, 3)
			for _, b := range bodies {
				assert.Equal(t, bodies[0], b)
			}
			mu.Unlock()
		})
	}

	t.Run("clock skew", func(t *testing.T) {
		fails.Store(-1000)
		ahead := time.Now().Add(40 * time.Minute)
		r.clock.Store(&ahead)
		defer r.clock.Store(nil)
		skewed := r.awsTransport("es") // a fresh transport, no correction yet
		client := kivuli.NewRetryingClient(skewed)
		n := len(r.endpoint.Records())
		resp, err := client.Get("http://" + awsHost + "/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		recs := r.endpoint.Records()[n:]
		require.Len(t, recs, 2)
		var se *sigv4test.Error
		require.ErrorAs(t, recs[0].Err, &se)
		assert.Equal(t, "RequestTimeTooSkewed", se.Code)
		require.NoError(t, recs[1].Err, "retried once with the corrected clock")
		// The correction stays for later requests.
		resp, err = (&http.Client{Transport: skewed}).Get("http://" + awsHost + "/")
		require.NoError(t, err)
		resp.Body.Close()
		require.NoError(t, r.lastRecord(t).Err)
	})

	t.Run("permanent errors are not retried", func(t *testing.T) {
		tr := r.transport("es")
		client := kivuli.NewRetryingClient(tr)
		_, err := client.Get("http://evil.example.com/")
		require.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
	})
}

// TestRetryingBodyErrorsTyped: the retrying transport reports body errors
// as the Transport does.
func TestRetryingBodyErrorsTyped(t *testing.T) {
	r := newRig(t, nil)
	rt := kivuli.NewRetryingTransport(r.transport("es"))
	for name, req := range map[string]func() *http.Request{
		"read fails": func() *http.Request {
			req, _ := http.NewRequest(http.MethodPut, r.endpoint.URL+"/", nil)
			req.Body = io.NopCloser(iotest.ErrReader(errors.New("disk on fire")))
			return req
		},
		"GetBody fails": func() *http.Request {
			req, _ := http.NewRequest(http.MethodPut, r.endpoint.URL+"/", strings.NewReader("x"))
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("no rewind") }
			return req
		},
	} {
		_, err := rt.RoundTrip(req())
		assert.ErrorIs(t, err, kivuli.ErrInvalidRequest, name)
		assert.ErrorContains(t, err, "kivuli: ", name)
	}
}

// TestRetryingClientReadsErrorBody: the retrying client, which reads error
// bodies anyway, finds the code there and retries with new credentials.
func TestRetryingClientReadsErrorBody(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, expiredTokenBody)
			return
		}
		io.WriteString(w, "ok")
	}))
	used, err := r.creds.Retrieve(context.Background())
	require.NoError(t, err)
	r.imds.Rotate()
	resp, err := kivuli.NewRetryingClient(r.transport("es")).Get(r.endpoint.URL + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(body))
	recs := r.endpoint.Records()
	require.Len(t, recs, 2, "one retry")
	assert.Equal(t, used.AccessKeyID, recs[0].AccessKeyID)
	assert.NotEqual(t, used.AccessKeyID, recs[1].AccessKeyID, "retried with refreshed credentials")
}

// TestRetryOptions: the attempts and waits are kivuli's own knobs.
func TestRetryOptions(t *testing.T) {
	var calls atomic.Int32
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	for _, tc := range []struct{ attempts, want int }{{0, 1}, {1, 1}, {2, 2}, {5, 5}} {
		calls.Store(0)
		client := kivuli.NewRetryingClient(r.transport("es"), func(o *kivuli.RetryOptions) {
			o.MaxAttempts, o.MinWait, o.MaxWait = tc.attempts, time.Millisecond, time.Millisecond
		})
		resp, err := client.Get(r.endpoint.URL + "/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, int32(tc.want), calls.Load(), "MaxAttempts %d", tc.attempts)
	}
}

// TestRetryingTransportLeavesRequest: RoundTrip, through retries, changes
// nothing of the caller's request (http.RoundTripper's contract): its
// header map and values, URL, Host and body fields are as they were.
func TestRetryingTransportLeavesRequest(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	rt := kivuli.NewRetryingTransport(r.transport("es"), func(o *kivuli.RetryOptions) { o.MinWait, o.MaxWait = time.Millisecond, time.Millisecond })
	req, err := http.NewRequest(http.MethodPost, r.endpoint.URL+"/idx/_doc?refresh=true", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header["X-Multi"] = []string{"a", "b"}
	header, url, host, getBody := req.Header.Clone(), req.URL.String(), req.Host, req.GetBody
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(-1), fails.Load(), "three attempts")
	assert.Equal(t, header, req.Header)
	assert.Equal(t, url, req.URL.String())
	assert.Equal(t, host, req.Host)
	assert.Equal(t, int64(7), req.ContentLength)
	assert.NotNil(t, req.GetBody)
	assert.Equal(t, fmt.Sprintf("%p", getBody), fmt.Sprintf("%p", req.GetBody))
	assert.Same(t, req, resp.Request)
}
