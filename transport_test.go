package kivuli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rig is the offline world of a transport test: the IMDS emulator hands out
// credentials, and a local endpoint checks every signature independently.
type rig struct {
	imds     *imdstest.Server
	creds    *kivuli.Credentials
	verifier *sigv4test.Verifier
	endpoint *sigv4test.Server
	clock    atomic.Pointer[time.Time] // the verifier's (and IMDS's) clock offset
}

func newRig(t *testing.T, next http.Handler) *rig {
	t.Helper()
	r := &rig{}
	now := func() time.Time {
		if p := r.clock.Load(); p != nil {
			return *p
		}
		return time.Now()
	}
	r.imds = imdstest.NewServer(imdstest.Config{Clock: now})
	t.Cleanup(r.imds.Close)
	r.creds = newCredentials(t, r.imds)
	r.verifier = &sigv4test.Verifier{Secrets: sigv4test.Lookup(r.imds.Lookup), Now: now}
	r.endpoint = sigv4test.NewServer(r.verifier, next)
	t.Cleanup(r.endpoint.Close)
	return r
}

func (r *rig) host() string { return strings.TrimPrefix(r.endpoint.URL, "http://") }

func (r *rig) transport(service string) *kivuli.Transport {
	return &kivuli.Transport{Credentials: r.creds, Service: service, Region: "eu-west-2", AllowedHosts: []string{r.host()}}
}

// emptySHA256 is the hex SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// awsHost is an AWS endpoint's name that awsTransport delivers to the rig's
// endpoint.
const awsHost = "search-rig.eu-west-2.es.amazonaws.com"

// awsTransport is r.transport, but its Base delivers every request to the
// rig's endpoint whatever host it names, so that a test can dial an AWS
// endpoint's name (http://awsHost, listed to allow plaintext) and have its
// answers count as AWS's.
func (r *rig) awsTransport(service string) *kivuli.Transport {
	tr := r.transport(service)
	addr := r.host()
	tr.Base = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	tr.AllowedHosts = append(tr.AllowedHosts, awsHost)
	return tr
}

// lastRecord returns the endpoint's newest record.
func (r *rig) lastRecord(t *testing.T) sigv4test.Record {
	t.Helper()
	recs := r.endpoint.Records()
	require.NotEmpty(t, recs)
	return recs[len(recs)-1]
}

// closeCounter counts Close calls on a body.
type closeCounter struct {
	io.Reader
	closes atomic.Int32
}

func (c *closeCounter) Close() error { c.closes.Add(1); return nil }

// oneShot is a body that can be read once: no GetBody, no Seek.
func oneShot(b []byte) io.ReadCloser { return &closeCounter{Reader: bytes.NewReader(b)} }

type bodyKind struct {
	name string
	make func(t *testing.T, method, url string) (*http.Request, int)
}

// bigBody is a 64 MiB body, made once.
var bigBody = sync.OnceValue(func() []byte { return bytes.Repeat([]byte("kivuli-"), (64<<20)/7+1)[:64<<20] })

func bodyKinds() []bodyKind {
	small := []byte(`{"query":{"match_all":{}}}`)
	big := bigBody()
	newReq := func(t *testing.T, method, url string, body io.Reader) *http.Request {
		r, err := http.NewRequest(method, url, body)
		require.NoError(t, err)
		return r
	}
	return []bodyKind{
		{"nil", func(t *testing.T, m, u string) (*http.Request, int) { return newReq(t, m, u, nil), 0 }},
		{"empty", func(t *testing.T, m, u string) (*http.Request, int) { return newReq(t, m, u, bytes.NewReader(nil)), 0 }},
		{"bytes", func(t *testing.T, m, u string) (*http.Request, int) {
			return newReq(t, m, u, bytes.NewReader(small)), len(small)
		}},
		{"strings.Reader", func(t *testing.T, m, u string) (*http.Request, int) {
			return newReq(t, m, u, strings.NewReader(string(small))), len(small)
		}},
		{"GetBody", func(t *testing.T, m, u string) (*http.Request, int) {
			r := newReq(t, m, u, nil)
			r.Body = oneShot(small)
			r.GetBody = func() (io.ReadCloser, error) { return oneShot(small), nil }
			r.ContentLength = int64(len(small))
			return r, len(small)
		}},
		{"one-shot", func(t *testing.T, m, u string) (*http.Request, int) {
			r := newReq(t, m, u, nil)
			r.Body = oneShot(small) // length unknown, cannot rewind
			return r, len(small)
		}},
		{"one-shot with length", func(t *testing.T, m, u string) (*http.Request, int) {
			r := newReq(t, m, u, nil)
			r.Body = oneShot(small)
			r.ContentLength = int64(len(small))
			return r, len(small)
		}},
		{"file", func(t *testing.T, m, u string) (*http.Request, int) {
			path := filepath.Join(t.TempDir(), "body")
			require.NoError(t, os.WriteFile(path, small, 0o600))
			f, err := os.Open(path)
			require.NoError(t, err)
			return newReq(t, m, u, f), len(small) // an io.Seeker of unknown length
		}},
		{"64MiB", func(t *testing.T, m, u string) (*http.Request, int) {
			return newReq(t, m, u, bytes.NewReader(big)), len(big)
		}},
	}
}

func TestPresign(t *testing.T) {
	r := newRig(t, nil)
	tr := &kivuli.Transport{Credentials: r.creds}
	req, err := http.NewRequest(http.MethodGet, "wss://abc123-ats.iot.eu-west-2.amazonaws.com/mqtt", nil)
	require.NoError(t, err)
	signed, err := tr.Presign(req, 0)
	require.NoError(t, err)
	u, err := url.Parse(signed)
	require.NoError(t, err)
	assert.Equal(t, "wss", u.Scheme)
	q := u.Query()
	assert.Contains(t, q.Get("X-Amz-Credential"), "/eu-west-2/iotdevicegateway/aws4_request")
	assert.Equal(t, "300", q.Get("X-Amz-Expires"))
	assert.True(t, strings.HasSuffix(u.RawQuery, "&X-Amz-Security-Token="+url.QueryEscape(r.creds.Token())), "IoT: the token after the signature")
	assert.NotContains(t, req.URL.RawQuery, "X-Amz", "the caller's request is not modified")

	// The endpoint checks it as IoT would, with the host the URL names.
	check, err := http.NewRequest(http.MethodGet, r.endpoint.URL+"/mqtt?"+u.RawQuery, nil)
	require.NoError(t, err)
	check.Host = u.Host
	resp, err := http.DefaultClient.Do(check)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, r.lastRecord(t).Err)
	assert.Equal(t, sigv4test.QueryUnsigned, r.lastRecord(t).Token)

	s3req, _ := http.NewRequest(http.MethodGet, "https://bucket.s3.eu-west-2.amazonaws.com/photos/cat%20(1).jpg", nil)
	signed, err = tr.Presign(s3req, time.Hour)
	require.NoError(t, err)
	u, _ = url.Parse(signed)
	assert.Equal(t, "3600", u.Query().Get("X-Amz-Expires"))
	assert.Equal(t, r.creds.Token(), u.Query().Get("X-Amz-Security-Token"))
	assert.Equal(t, "/photos/cat%20%281%29.jpg", u.EscapedPath())
}

// TestRoundTripperContract: the caller's request is never modified, and its
// body is closed exactly once on every path.
func TestRoundTripperContract(t *testing.T) {
	r := newRig(t, nil)
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials today")
	})
	baseErr := errors.New("network down")
	for _, tc := range []struct {
		name   string
		tr     func() *kivuli.Transport
		url    string
		body   func() (io.ReadCloser, int64, func() (io.ReadCloser, error))
		expect func(t *testing.T, resp *http.Response, err error)
	}{
		{name: "success", tr: func() *kivuli.Transport { return r.transport("es") },
			expect: func(t *testing.T, resp *http.Response, err error) { require.NoError(t, err); resp.Body.Close() }},
		{name: "base fails", tr: func() *kivuli.Transport {
			tr := r.transport("es")
			tr.Base = roundTripFunc(func(req *http.Request) (*http.Response, error) { req.Body.Close(); return nil, baseErr })
			return tr
		}, expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorIs(t, err, baseErr) }},
		{name: "host not allowed", url: "http://evil.example.com/", tr: func() *kivuli.Transport { return r.transport("es") },
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorIs(t, err, kivuli.ErrHostNotAllowed) }},
		{name: "unknown scope", tr: func() *kivuli.Transport { tr := r.transport(""); return tr },
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorIs(t, err, kivuli.ErrUnknownScope) }},
		{name: "no credentials", tr: func() *kivuli.Transport { tr := r.transport("es"); tr.Credentials = nil; return tr },
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorIs(t, err, kivuli.ErrNoCredentials) }},
		{name: "credentials fail", tr: func() *kivuli.Transport { tr := r.transport("es"); tr.Credentials = failing; return tr },
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorContains(t, err, "no credentials today") }},
		{name: "one-shot body too large", tr: func() *kivuli.Transport { tr := r.transport("es"); tr.MaxBufferedBody = 4; return tr },
			body:   func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) { return nil, 0, nil },
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorIs(t, err, kivuli.ErrBodyTooLarge) }},
		{name: "GetBody fails", tr: func() *kivuli.Transport { return r.transport("es") },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
				return nil, 5, func() (io.ReadCloser, error) { return nil, errors.New("cannot rewind") }
			},
			expect: func(t *testing.T, _ *http.Response, err error) { require.ErrorContains(t, err, "cannot rewind") }},
		{name: "GetBody returns nil", tr: func() *kivuli.Transport { return r.transport("es") },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
				return nil, 5, func() (io.ReadCloser, error) { return nil, nil }
			},
			expect: func(t *testing.T, _ *http.Response, err error) {
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
				assert.ErrorContains(t, err, "GetBody returned a nil body")
			}},
		{name: "GetBody body fails", tr: func() *kivuli.Transport { return r.transport("es") },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
				return nil, 5, func() (io.ReadCloser, error) { return io.NopCloser(iotest.ErrReader(errors.New("disk gone"))), nil }
			},
			expect: func(t *testing.T, _ *http.Response, err error) {
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
				assert.ErrorContains(t, err, "disk gone")
			}},
		{name: "nil GetBody body, S3", tr: func() *kivuli.Transport { return r.transport("s3") },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
				return nil, 0, func() (io.ReadCloser, error) { return nil, nil }
			},
			expect: func(t *testing.T, _ *http.Response, err error) {
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
			}},
		{name: "one-shot of unknown length too large, S3", tr: func() *kivuli.Transport { tr := r.transport("s3"); tr.MaxBufferedBody = 4; return tr },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) { return nil, 0, nil },
			expect: func(t *testing.T, _ *http.Response, err error) {
				require.ErrorIs(t, err, kivuli.ErrBodyTooLarge)
				assert.ErrorContains(t, err, "ContentLength")
				assert.ErrorContains(t, err, "multipart")
			}},
		{name: "length mismatch", tr: func() *kivuli.Transport { return r.transport("es") },
			body: func() (io.ReadCloser, int64, func() (io.ReadCloser, error)) {
				return nil, 99, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }
			},
			expect: func(t *testing.T, _ *http.Response, err error) {
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
			}},
	} {
		for _, retrying := range []bool{false, true} {
			name := tc.name
			if retrying {
				name += "/retrying"
			}
			t.Run(name, func(t *testing.T) {
				u := r.endpoint.URL + "/a/b?x=1"
				if tc.url != "" {
					u = tc.url
				}
				body := &closeCounter{Reader: strings.NewReader("hello")}
				req, err := http.NewRequest(http.MethodPut, u, nil)
				require.NoError(t, err)
				req.Body = body
				req.Header.Set("Content-Type", "text/plain")
				if tc.body != nil {
					_, n, gb := tc.body()
					req.ContentLength, req.GetBody = n, gb
				}
				before := snapshotRequest(req)
				var rt http.RoundTripper = tc.tr()
				if retrying {
					rt = kivuli.NewRetryingTransport(rt.(*kivuli.Transport))
				}
				resp, err := rt.RoundTrip(req)
				tc.expect(t, resp, err)
				assert.Equal(t, int32(1), body.closes.Load(), "the body is closed exactly once")
				assert.Equal(t, before, snapshotRequest(req), "the caller's request is not modified")
			})
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// snapshotRequest copies what a RoundTripper must not change.
func snapshotRequest(r *http.Request) string {
	return fmt.Sprintf("%s %s %q %v %d %v", r.Method, r.URL.String(), r.Host, r.Header, r.ContentLength, r.TransferEncoding)
}

// TestTransportNilHeader: a request built by hand without a header map is
// signed, not a panic.
func TestTransportNilHeader(t *testing.T) {
	r := newRig(t, nil)
	u, err := url.Parse(r.endpoint.URL + "/_cluster/health")
	require.NoError(t, err)
	req := &http.Request{Method: http.MethodGet, URL: u}
	resp, err := r.transport("es").RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, r.lastRecord(t).Err)
	assert.Nil(t, req.Header, "the caller's request is not modified")
}

// TestTransportRotation: requests keep being accepted across a credential
// rotation, and an ExpiredToken answer invalidates the credentials.
func TestTransportRotation(t *testing.T) {
	r := newRig(t, nil)
	tr := r.awsTransport("es")
	client := kivuli.NewRetryingClient(tr)
	get := func() sigv4test.Record {
		t.Helper()
		resp, err := client.Get("http://" + awsHost + "/")
		require.NoError(t, err)
		resp.Body.Close()
		return r.lastRecord(t)
	}
	first := get()
	require.NoError(t, first.Err)

	// IMDS rotates and the cache learns of it: new key.
	r.imds.Rotate()
	r.creds.Invalidate()
	second := get()
	require.NoError(t, second.Err)
	assert.NotEqual(t, first.AccessKeyID, second.AccessKeyID)

	// The world's clock jumps past the key's expiry while ours does not
	// (as after a suspend): the service answers ExpiredToken, the transport
	// invalidates the credentials and the retry carries new ones; the
	// service then answers that the clock is skewed, the transport corrects
	// it, and the next retry is accepted.
	later := r.imds.Current().Expiration.Add(time.Minute)
	r.clock.Store(&later)
	n := len(r.endpoint.Records())
	third := get()
	require.NoError(t, third.Err)
	recs := r.endpoint.Records()[n:]
	require.Len(t, recs, 3)
	var se *sigv4test.Error
	require.ErrorAs(t, recs[0].Err, &se)
	assert.Equal(t, "ExpiredToken", se.Code)
	require.ErrorAs(t, recs[1].Err, &se)
	assert.Equal(t, "RequestTimeTooSkewed", se.Code)
	assert.NotEqual(t, second.AccessKeyID, third.AccessKeyID)
}

// TestPresignExpiry: AWS accepts presigned lifetimes of 1 s to 7 days; a
// sub-second one is rounded up rather than expire at birth, and another is
// refused rather than changed.
func TestPresignExpiry(t *testing.T) {
	tr := &kivuli.Transport{Credentials: staticCreds}
	for _, tc := range []struct {
		service string
		expires time.Duration
		want    string // X-Amz-Expires, or "" for an error
	}{
		{"s3", 0, "300"},
		{"s3", time.Millisecond, "1"},
		{"s3", 1500 * time.Millisecond, "2"},
		{"s3", time.Hour, "3600"},
		{"s3", 7 * 24 * time.Hour, "604800"},
		{"s3", 7*24*time.Hour + time.Second, ""},
		{"s3", 192 * time.Hour, ""},
		{"s3", -time.Second, ""},
		{"kafka-cluster", 0, "900"},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.service, tc.expires), func(t *testing.T) {
			host := "bucket.s3.eu-west-2.amazonaws.com"
			if tc.service == "kafka-cluster" {
				host = "b-1.cluster.abc123.c2.kafka.eu-west-2.amazonaws.com"
			}
			req, err := http.NewRequest(http.MethodGet, "https://"+host+"/key", nil)
			require.NoError(t, err)
			signed, err := tr.Presign(req, tc.expires)
			if tc.want == "" {
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
				assert.ErrorContains(t, err, "1s..168h")
				return
			}
			require.NoError(t, err)
			u, err := url.Parse(signed)
			require.NoError(t, err)
			assert.Equal(t, tc.want, u.Query().Get("X-Amz-Expires"))
		})
	}
}

// TestResponseRequestIsTheCallers: resp.Request is the caller's request,
// never the signed copy, which holds the token and the signature that
// logging of resp.Request would print.
func TestResponseRequestIsTheCallers(t *testing.T) {
	r := newRig(t, nil)
	for name, client := range map[string]*http.Client{
		"Transport":         {Transport: r.transport("es")},
		"NewRetryingClient": kivuli.NewRetryingClient(r.transport("es")),
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, r.endpoint.URL+"/", nil)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.NoError(t, r.lastRecord(t).Err)
			assert.Same(t, req, resp.Request)
			printed := fmt.Sprintf("%v %+v", resp.Request, resp.Request)
			assert.NotContains(t, printed, r.creds.Token())
			assert.NotContains(t, printed, "Signature=")
		})
	}
}
