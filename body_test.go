package kivuli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLargeBodyStreamed: a 64 MiB body with GetBody is hashed as a stream:
// the transport allocates well under 1 MiB to sign it, however large it is.
func TestLargeBodyStreamed(t *testing.T) {
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
	})
	var sent int64
	tr := &kivuli.Transport{Credentials: creds, Service: "es", Region: "eu-west-2",
		Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n, err := io.Copy(io.Discard, req.Body)
			req.Body.Close()
			sent = n
			return &http.Response{StatusCode: 200, Body: http.NoBody}, err
		})}
	body := bigBody()
	for _, kind := range []string{"GetBody", "io.Seeker"} {
		t.Run(kind, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, "https://search-x.eu-west-2.es.amazonaws.com/idx/_doc/1", bytes.NewReader(body))
			require.NoError(t, err)
			if kind == "io.Seeker" {
				req.GetBody = nil
				req.Body = struct {
					io.ReadSeeker
					io.Closer
				}{bytes.NewReader(body), io.NopCloser(nil)}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = tr.RoundTrip(req)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			assert.Equal(t, int64(len(body)), sent)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d bytes allocated to sign and send a %d MiB body", kind, allocated, len(body)>>20)
			assert.Less(t, allocated, uint64(1<<20))
		})
	}
}

// TestS3NeverChunked: S3 refuses chunked uploads (501 NotImplemented), so a
// body of unknown length going to S3 is measured or buffered to learn its
// length; past MaxBufferedBody the request is refused with an error that
// says what to do (TestRoundTripperContract checks that case).
func TestS3NeverChunked(t *testing.T) {
	r := newRig(t, nil)
	small := []byte("a small object of unknown length")
	file := func(t *testing.T) io.ReadCloser {
		path := filepath.Join(t.TempDir(), "body")
		require.NoError(t, os.WriteFile(path, small, 0o600))
		f, err := os.Open(path)
		require.NoError(t, err)
		return f
	}
	unsigned := kivuli.DefaultPolicies()
	unsigned["s3"] = kivuli.Policy{Payload: kivuli.PayloadUnsigned, EscapePathOnce: true, KeepDotSegments: true}
	for _, tc := range []struct {
		name     string
		policies kivuli.Policies
		body     func(t *testing.T) io.ReadCloser
		te       []string
		hash     string // "" for the body's hash
	}{
		{"one-shot", nil, func(*testing.T) io.ReadCloser { return oneShot(small) }, nil, ""},
		{"one-shot, chunked asked", nil, func(*testing.T) io.ReadCloser { return oneShot(small) }, []string{"chunked"}, ""},
		{"file", nil, file, nil, ""},
		{"one-shot, unsigned payload", unsigned, func(*testing.T) io.ReadCloser { return oneShot(small) }, nil, ""},
		{"file, unsigned payload", unsigned, file, nil, "UNSIGNED-PAYLOAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := r.transport("s3")
			tr.Policies = tc.policies
			req, err := http.NewRequest(http.MethodPut, r.endpoint.URL+"/bucket/key", nil)
			require.NoError(t, err)
			req.Body, req.ContentLength, req.TransferEncoding = tc.body(t), 0, tc.te
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			rec := r.lastRecord(t)
			require.NoError(t, rec.Err)
			assert.False(t, rec.Chunked, "never chunked to S3")
			assert.Equal(t, int64(len(small)), rec.BodyLen)
			if tc.hash == "" {
				assert.Equal(t, fmt.Sprintf("%x", sha256.Sum256(small)), rec.PayloadHash)
			} else {
				assert.Equal(t, tc.hash, rec.PayloadHash)
			}
		})
	}
}

// stallingBody blocks every Read until it is closed, and says when the
// first Read began.
type stallingBody struct {
	reading chan struct{}
	closed  chan struct{}
	once    sync.Once
	closes  atomic.Int32
}

func newStallingBody() *stallingBody {
	return &stallingBody{reading: make(chan struct{}), closed: make(chan struct{})}
}

func (b *stallingBody) Read([]byte) (int, error) {
	select {
	case <-b.reading:
	default:
		close(b.reading)
	}
	<-b.closed
	return 0, errors.New("read on a closed body")
}

func (b *stallingBody) Close() error {
	b.closes.Add(1)
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestBodyReadHonoursContext: a body that stalls while it is hashed or
// buffered does not keep RoundTrip past the end of the request's context:
// the body is closed (once) so that its Read returns, and the error says
// why.
func TestBodyReadHonoursContext(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct {
		name     string
		retrying bool
		getBody  bool
	}{{"one-shot", false, false}, {"GetBody", false, true}, {"one-shot/retrying", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body, fromGetBody := newStallingBody(), newStallingBody()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, r.endpoint.URL+"/x", nil)
			req.Body = body
			if tc.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return fromGetBody, nil }
				req.ContentLength = 5
			}
			var rt http.RoundTripper = r.transport("es")
			if tc.retrying {
				rt = kivuli.NewRetryingTransport(rt.(*kivuli.Transport))
			}
			done := make(chan error, 1)
			go func() { _, err := rt.RoundTrip(req); done <- err }()
			stalled := body
			if tc.getBody {
				stalled = fromGetBody
			}
			<-stalled.reading
			cancel()
			err := <-done
			require.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, err, kivuli.ErrInvalidRequest)
			assert.Equal(t, int32(1), body.closes.Load(), "the caller's body is closed exactly once")
		})
	}
}
