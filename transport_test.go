package kivuli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
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

// TestTransportPolicies sends every body kind under every built-in policy
// row, and a user-defined one, to the checking endpoint.
func TestTransportPolicies(t *testing.T) {
	r := newRig(t, nil)
	token := func() string { return r.creds.Token() }
	policies := kivuli.DefaultPolicies()
	policies["myservice"] = kivuli.Policy{Token: kivuli.TokenHeaderUnsigned}
	for _, tc := range []struct {
		service string
		token   sigv4test.TokenPlacement
		sha256  bool
	}{
		{"sts", sigv4test.HeaderSigned, false},
		{"es", sigv4test.HeaderSigned, true},
		{"aoss", sigv4test.HeaderSigned, true},
		{"s3", sigv4test.HeaderSigned, true},
		{"neptune-db", sigv4test.HeaderSigned, false},
		{"execute-api", sigv4test.HeaderSigned, false},
		{"myservice", sigv4test.HeaderUnsigned, false},
	} {
		// Each row runs on a new set of credentials: IMDS rotates them,
		// and the cache learns of it.
		r.imds.Rotate()
		r.creds.Invalidate()
		for _, kind := range bodyKinds() {
			t.Run(tc.service+"/"+kind.name, func(t *testing.T) {
				tr := r.transport(tc.service)
				tr.Policies = policies
				req, n := kind.make(t, http.MethodPost, r.endpoint.URL+"/index/_doc")
				resp, err := tr.RoundTrip(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				rec := r.lastRecord(t)
				require.NoError(t, rec.Err, string(body))
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, tc.service, rec.Service)
				assert.Equal(t, tc.token, rec.Token)
				assert.Equal(t, tc.sha256, rec.ContentSHA256)
				assert.Equal(t, int64(n), rec.BodyLen)
				// S3 streams a one-shot body of known length; one of unknown
				// length it buffers to learn the length, as it refuses
				// chunked uploads, and then signs its hash.
				streamed := tc.service == "s3" && kind.name == "one-shot with length"
				assert.False(t, rec.Chunked, "a body is never sent chunked")
				if streamed {
					assert.Equal(t, "UNSIGNED-PAYLOAD", rec.PayloadHash, "S3 streams one-shot bodies of known length")
				} else if n > 0 {
					assert.NotEqual(t, emptySHA256, rec.PayloadHash, "a non-empty body is never signed as empty")
				}
				assert.NotEmpty(t, token())
				assert.Equal(t, r.imds.Current().AccessKeyID, rec.AccessKeyID)
			})
		}
	}
	keys := map[string]bool{}
	for _, rec := range r.endpoint.Records() {
		keys[rec.AccessKeyID] = true
	}
	assert.Len(t, keys, 7, "one key per row, across rotations")
}

// TestTransportPresignedPolicies: the rows that sign in the query.
func TestTransportPresignedPolicies(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct {
		service string
		header  http.Header
		token   sigv4test.TokenPlacement
	}{
		{"iotdevicegateway", nil, sigv4test.QueryUnsigned},
		{"kafka-cluster", nil, sigv4test.QuerySigned},
		{"transcribe", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, sigv4test.QuerySigned},
	} {
		t.Run(tc.service, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, r.endpoint.URL+"/mqtt", nil)
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := r.transport(tc.service).RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			rec := r.lastRecord(t)
			require.NoError(t, rec.Err)
			assert.True(t, rec.Presigned)
			assert.Equal(t, tc.token, rec.Token)
		})
	}
	t.Run("transcribe without WebSocket signs the header", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, r.endpoint.URL+"/", strings.NewReader("{}"))
		resp, err := r.transport("transcribe").RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		rec := r.lastRecord(t)
		require.NoError(t, rec.Err)
		assert.False(t, rec.Presigned)
	})
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

func TestTransportStaleSigningRemoved(t *testing.T) {
	r := newRig(t, nil)
	req, _ := http.NewRequest(http.MethodGet, r.endpoint.URL+"/?X-Amz-Signature=deadbeef&X-Amz-Date=20000101T000000Z&q=1", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=OLD/20000101/us-east-1/es/aws4_request, SignedHeaders=host, Signature=00")
	req.Header.Set("X-Amz-Date", "20000101T000000Z")
	req.Header.Set("X-Amz-Security-Token", "stale-token")
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256+"0")
	req.Header["x-amz-date"] = []string{"20000101T000000Z"} // set in the map by hand, not canonical
	req.Header["authorization"] = []string{"stale"}
	resp, err := r.transport("es").RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, r.lastRecord(t).Err)
	assert.Equal(t, "q=1", r.lastRecord(t).RawQuery)
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

// TestTransportPaths: paths and queries that users send sign correctly.
func TestTransportPaths(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct{ service, path string }{
		{"s3", "/bucket/a%2Fb"},
		{"s3", "/bucket/2026-11-28T17:36:35Z.json"},
		{"s3", "/bucket/report (final).pdf"},
		{"s3", "/bucket/photos/caf%C3%A9 %E2%82%AC.jpg"},
		{"s3", "/bucket/a+b=c&d;e,f@g$h!i'j*k"},
		{"s3", "/bucket/dir//./x/../y"},
		{"es", "/logs-2026.*/_search"},
		{"es", "/index1,index2/_count"},
		{"es", "/_cat/indices/my%20index"},
		{"execute-api", "/prod/users/a%2Fb/../c"},
		{"sts", "/"},
		{"sts", ""},
	} {
		t.Run(tc.service+tc.path, func(t *testing.T) {
			u, err := url.Parse(r.endpoint.URL + tc.path)
			require.NoError(t, err)
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: u.Host}
			resp, err := r.transport(tc.service).RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.NoError(t, r.lastRecord(t).Err, "path %s", r.lastRecord(t).Path)
		})
	}
	for _, q := range []string{
		"q=a+b", "q=a%2Bb", "time=12:30", "fields=a,b,c", "filter={\"a\":1}", "filter=%7B%22a%22%3A1%7D",
		"k=1&k=2&k=0", "empty=&flag", "utf8=caf%C3%A9", "sort=name:asc&size=10", "x=%2F%2f",
	} {
		t.Run("query "+q, func(t *testing.T) {
			u, err := url.Parse(r.endpoint.URL + "/index/_search")
			require.NoError(t, err)
			u.RawQuery = q
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: u.Host}
			resp, err := r.transport("es").RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.NoError(t, r.lastRecord(t).Err)
			// Sent as given: the order of repeated keys is the caller's,
			// and a server behind the signature (API Gateway's
			// multi-value parameters) may read it.
			require.Equal(t, q, r.lastRecord(t).RawQuery, "the query sent")
			require.Equal(t, q, u.RawQuery, "the caller's URL")
		})
	}
	// Bytes that cannot go on the wire as they are go in the signer's
	// encoding (FuzzTransportSignature found the control character).
	for q, sent := range map[string]string{"q=a b": "q=a%20b", "q=\x01": "q=%01", "q=caf\xc3\xa9": "q=caf%C3%A9"} {
		t.Run("query "+q, func(t *testing.T) {
			u, err := url.Parse(r.endpoint.URL + "/index/_search")
			require.NoError(t, err)
			u.RawQuery = q
			resp, err := r.transport("es").RoundTrip(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: u.Host})
			require.NoError(t, err)
			resp.Body.Close()
			require.NoError(t, r.lastRecord(t).Err)
			require.Equal(t, sent, r.lastRecord(t).RawQuery)
		})
	}
	t.Run("invalid query", func(t *testing.T) {
		u, _ := url.Parse(r.endpoint.URL + "/")
		u.RawQuery = "a=%zz"
		_, err := r.transport("es").RoundTrip(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
		require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
	})
}

// TestTransportDotSegments: services read a trailing dot segment
// differently ("/a/." is "/a/" to RFC 3986 and smithy-rs, "/a" to
// botocore), so for every service whose policy normalises paths the path
// is sent with its dot segments and repeated slashes removed, and signed
// as sent; S3 keeps its path as given. The endpoint refuses a normalised
// service's path that still ends in a dot segment.
func TestTransportDotSegments(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct{ service, path, sent string }{
		{"es", "/a/.", "/a/"},
		{"es", "/a/b/..", "/a/"},
		{"sts", "/a/b/../", "/a/"},
		{"execute-api", "/prod//users/./a%2Fb/../c", "/prod/users/c"},
		{"execute-api", "/prod/a/..", "/prod/"},
		{"es", "/..", "/"},
		{"es", "//", "/"},
		{"s3", "/bucket/a/.", "/bucket/a/."},
		{"s3", "/bucket/a//b/..", "/bucket/a//b/.."},
	} {
		t.Run(tc.service+tc.path, func(t *testing.T) {
			u, err := url.Parse(r.endpoint.URL + tc.path)
			require.NoError(t, err)
			req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
			resp, err := r.transport(tc.service).RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			rec := r.lastRecord(t)
			require.NoError(t, rec.Err)
			assert.Equal(t, tc.sent, rec.Path)
			assert.Equal(t, tc.path, req.URL.EscapedPath(), "the caller's request is not modified")
		})
	}
	t.Run("percent-encoded dot segments", func(t *testing.T) {
		for _, p := range []string{"/a/%2E", "/a/b/%2E%2E", "/a/%2e%2e/b", "/a/.%2E/b"} {
			u, err := url.Parse(r.endpoint.URL + p)
			require.NoError(t, err)
			_, err = r.transport("es").RoundTrip(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
			assert.ErrorIs(t, err, kivuli.ErrInvalidRequest, p)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, "https://search-x.eu-west-2.es.amazonaws.com/a/b/..?q=1", nil)
		require.NoError(t, err)
		signed, err := (&kivuli.Transport{Credentials: staticCreds}).Presign(req, time.Minute)
		require.NoError(t, err)
		u, err := url.Parse(signed)
		require.NoError(t, err)
		assert.Equal(t, "/a/", u.EscapedPath())
	})
}

func TestTransportHosts(t *testing.T) {
	r := newRig(t, nil)
	var foreign atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		foreign.Add(1)
	}))
	defer elsewhere.Close()
	redirector := sigv4test.NewServer(r.verifier, http.RedirectHandler(elsewhere.URL+"/steal", http.StatusFound))
	defer redirector.Close()

	tr := r.transport("es")
	tr.AllowedHosts = []string{strings.TrimPrefix(redirector.URL, "http://")}
	client := &http.Client{Transport: tr}
	_, err := client.Get(redirector.URL + "/")
	require.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
	assert.Zero(t, foreign.Load(), "credentials never follow a redirect to a foreign host")

	for _, tc := range []struct {
		allowed []string
		host    string
		ok      bool
	}{
		{nil, "search-x.eu-west-2.es.amazonaws.com", true},
		{nil, "sts.amazonaws.com.cn", true},
		{nil, "x.lambda-url.eu-west-1.on.aws", true},
		// Every partition's domains, standard and dual-stack, from the
		// endpoint data (issue 10: China's dual-stack domain was refused).
		{nil, "sts.cn-north-1.api.amazonwebservices.com.cn", true},
		{nil, "sts.eusc-de-east-1.amazonaws.eu", true},
		{nil, "sts.eusc-de-east-1.api.amazonwebservices.eu", true},
		{nil, "sts.us-iso-east-1.api.aws.ic.gov", true},
		{nil, "sts.us-isob-east-1.api.aws.scloud", true},
		{nil, "api.aws", false},
		{nil, "amazonaws.eu.evil.com", false},
		{nil, "amazonaws.com.evil.com", false},
		{nil, "evilamazonaws.com", false},
		{[]string{"search.example.com"}, "search.example.com", true},
		{[]string{"search.example.com"}, "search.example.com:9200", true},
		{[]string{"localhost:9200"}, "localhost:9201", false},
		{[]string{"*.example.com"}, "a.b.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "badexample.com", false},
	} {
		tr := &kivuli.Transport{Credentials: r.creds, Service: "es", Region: "eu-west-2", AllowedHosts: tc.allowed,
			Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
			})}
		_, err := tr.RoundTrip(&http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: tc.host, Path: "/"}, Header: http.Header{}})
		if tc.ok {
			assert.NoError(t, err, tc.host)
		} else {
			assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed, tc.host)
		}
	}
}

func TestTransportDebugLog(t *testing.T) {
	r := newRig(t, nil)
	var buf bytes.Buffer
	tr := r.transport("es")
	tr.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	req, _ := http.NewRequest(http.MethodPost, r.endpoint.URL+"/idx/_search?q=1", strings.NewReader("{}"))
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, r.lastRecord(t).Err)
	out := buf.String()
	assert.Contains(t, out, "canonical_request=")
	assert.Contains(t, out, `POST\n/idx/_search\nq=1\n`)
	assert.Contains(t, out, "x-amz-security-token:REDACTED")
	assert.Contains(t, out, "service=es region=eu-west-2", "the scope chosen is logged")
	assert.Contains(t, out, "string_to_sign=")
	v, _ := r.creds.Retrieve(t.Context())
	assert.NotContains(t, out, v.SessionToken)
	assert.NotContains(t, out, v.SecretAccessKey)

	buf.Reset()
	tr.Logger = slog.New(slog.NewTextHandler(&buf, nil)) // info level: nothing
	req, _ = http.NewRequest(http.MethodGet, r.endpoint.URL+"/", nil)
	resp, err = tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, buf.String())
}

// TestTransportDebugLogRedactsByPosition: a token whose form the signer
// changes in the canonical request (inner runs of spaces collapsed in a
// header, escaping in the query) is still redacted.
func TestTransportDebugLogRedactsByPosition(t *testing.T) {
	const token = "  Fwo  GZXIvYXdzE//+xyz  wvu==  "
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: token}, nil
	})
	for _, tc := range []struct{ url, service string }{
		{"https://sts.us-east-1.amazonaws.com/", "sts"},                                 // header, signed
		{"wss://transcribestreaming.eu-west-2.amazonaws.com:8443/stream", "transcribe"}, // query, signed
	} {
		t.Run(tc.service, func(t *testing.T) {
			var buf bytes.Buffer
			tr := &kivuli.Transport{Credentials: creds, Base: &countingBase{},
				Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := tr.Presign(req, time.Minute)
			require.NoError(t, err)
			if tc.service == "sts" {
				_, err = tr.RoundTrip(req)
				require.NoError(t, err)
			}
			out := buf.String()
			assert.Contains(t, out, "REDACTED")
			for _, part := range []string{"Fwo", "GZXIvYXdzE", "xyz", "wvu=="} {
				assert.NotContains(t, out, part)
			}
		})
	}
}

// TestControlCharactersRefused: what net/http would refuse to send (a line
// break in a header value, the method or the token) is refused before it
// is signed and logged, where a line break would move the token out of
// the line on which it is redacted; the error quotes no value.
func TestControlCharactersRefused(t *testing.T) {
	const token = "SeCrEtToKeN-AAAA"
	for name, tc := range map[string]struct {
		method, header, token string
	}{
		"header value":    {http.MethodGet, "a\n\nb", token},
		"method":          {"GET\nX", "", token},
		"token with LF":   {http.MethodGet, "", "PART1\nPART2-SeCrEt"},
		"token with CRLF": {http.MethodGet, "", "PART1\r\nPART2-SeCrEt"},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: tc.token}, nil
			})
			base := &countingBase{}
			tr := &kivuli.Transport{Credentials: creds, Service: "kafka-cluster", Region: "eu-west-2", Base: base,
				Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
			req.Method = tc.method
			if tc.header != "" {
				req.Header.Set("X-Aaa", tc.header)
			}
			for _, sign := range []func() error{
				func() error { _, err := tr.RoundTrip(req); return err },
				func() error { _, err := tr.Presign(req, time.Minute); return err },
			} {
				err := sign()
				require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
				assert.NotContains(t, err.Error(), "SeCrEt")
			}
			assert.Zero(t, base.sent.Load())
			assert.NotContains(t, buf.String(), "SeCrEt")
		})
	}
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

func TestTransportScopeInference(t *testing.T) {
	var got []string
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		got = append(got, req.Header.Get("Authorization")+req.URL.Query().Get("X-Amz-Credential"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
	})
	for _, tc := range []struct{ url, service, region, scope string }{
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/_search", "", "", "/eu-west-2/es/"},
		{"https://abc.us-east-1.aoss.amazonaws.com/", "", "", "/us-east-1/aoss/"},
		{"https://bucket.s3.amazonaws.com/key", "", "", "/us-east-1/s3/"},
		{"https://bucket.s3.eu-west-1.amazonaws.com/key", "", "", "/eu-west-1/s3/"},
		{"https://bucket.s3.dualstack.ap-south-1.amazonaws.com/key", "", "", "/ap-south-1/s3/"},
		{"https://bucket.s3-eu-west-1.amazonaws.com/key", "", "", "/eu-west-1/s3/"},
		{"https://s3.amazonaws.com/bucket/key", "", "", "/us-east-1/s3/"},
		{"https://abc123.execute-api.eu-central-1.amazonaws.com/prod", "", "", "/eu-central-1/execute-api/"},
		{"https://xyz.lambda-url.eu-west-1.on.aws/", "", "", "/eu-west-1/lambda/"},
		{"https://sts.eu-west-2.amazonaws.com/", "", "", "/eu-west-2/sts/"},
		{"https://sts.amazonaws.com/", "", "", "/us-east-1/sts/"},
		{"https://dynamodb.us-gov-west-1.amazonaws.com/", "", "", "/us-gov-west-1/dynamodb/"},
		{"https://sts.cn-north-1.amazonaws.com.cn/", "", "", "/cn-north-1/sts/"},
		{"https://db.cluster-x.eu-west-1.neptune.amazonaws.com:8182/gremlin", "", "", "/eu-west-1/neptune-db/"},
		{"https://a1b2-ats.iot.eu-west-1.amazonaws.com/mqtt", "", "", "/eu-west-1/iotdevicegateway/"},
		{"https://a1b2-ats.iot.eu-west-1.amazonaws.com/topics/x", "", "", "/eu-west-1/iotdata/"},
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/", "aoss", "", "/eu-west-2/aoss/"},
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/", "", "us-east-1", "/us-east-1/es/"},
		{"https://bucket.s3-accelerate.amazonaws.com/key", "", "eu-west-1", "/eu-west-1/s3/"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got = nil
			tr := &kivuli.Transport{Credentials: creds, Service: tc.service, Region: tc.region, Base: base}
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := tr.RoundTrip(req)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Contains(t, got[0], tc.scope)
		})
	}
	for _, u := range []string{"https://bucket.s3-accelerate.amazonaws.com/key", "https://search.example.com/"} {
		tr := &kivuli.Transport{Credentials: creds, Base: base, AllowedHosts: []string{"search.example.com"}}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		_, err := tr.RoundTrip(req)
		require.ErrorIs(t, err, kivuli.ErrUnknownScope, u)
	}
}

// TestTransportRouteAcrossHosts: one Transport signs for many hosts in
// turn. Each host's decision (allowed or not, scope, policy) is its own,
// whether the last request went to the same host (the decision is reused)
// or to another; AWS IoT's hosts, whose service depends on the path, are
// decided per request.
func TestTransportRouteAcrossHosts(t *testing.T) {
	var got []*http.Request
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		got = append(got, req)
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
	})
	tr := &kivuli.Transport{Credentials: creds, Base: base, AllowedHosts: []string{"localhost"}}
	type want struct {
		scope string
		token string // where the token went: "header" or "query"
		err   error
	}
	steps := []struct {
		url string
		want
	}{
		{"https://search-a.eu-west-2.es.amazonaws.com/_search", want{scope: "/eu-west-2/es/", token: "header"}},
		{"https://bucket.s3.eu-west-1.amazonaws.com/key", want{scope: "/eu-west-1/s3/", token: "header"}},
		{"http://evil.example.com/", want{err: kivuli.ErrHostNotAllowed}},
		{"https://a1-ats.iot.eu-west-1.amazonaws.com/mqtt", want{scope: "/eu-west-1/iotdevicegateway/", token: "query"}},
		{"https://a1-ats.iot.eu-west-1.amazonaws.com/topics/x", want{scope: "/eu-west-1/iotdata/", token: "header"}},
		{"https://a1-ats.iot.eu-west-1.amazonaws.com/mqtt", want{scope: "/eu-west-1/iotdevicegateway/", token: "query"}},
		{"http://localhost:9200/", want{err: kivuli.ErrUnknownScope}},
		{"https://sts.amazonaws.com/", want{scope: "/us-east-1/sts/", token: "header"}},
		{"http://evil.example.com/", want{err: kivuli.ErrHostNotAllowed}},
	}
	for round := range 2 { // the second round starts on the first round's last host
		for _, st := range steps {
			for try := range 2 { // the second try reuses the first's decision
				got = nil
				req, err := http.NewRequest(http.MethodGet, st.url, nil)
				require.NoError(t, err)
				_, err = tr.RoundTrip(req)
				if st.err != nil {
					require.ErrorIs(t, err, st.err, "%s (round %d, try %d)", st.url, round, try)
					assert.Empty(t, got, "nothing sent to %s", st.url)
					continue
				}
				require.NoError(t, err, "%s (round %d, try %d)", st.url, round, try)
				require.Len(t, got, 1)
				sent := got[0]
				var cred string
				if q := sent.URL.Query(); q.Get("X-Amz-Credential") != "" {
					cred = q.Get("X-Amz-Credential")
				} else {
					cred = sent.Header.Get("Authorization")
				}
				assert.Contains(t, cred, st.scope, "%s (round %d, try %d)", st.url, round, try)
				switch st.token {
				case "header":
					assert.Equal(t, "TOKEN", sent.Header.Get("X-Amz-Security-Token"), st.url)
				case "query":
					assert.Equal(t, "TOKEN", sent.URL.Query().Get("X-Amz-Security-Token"), st.url)
					assert.Empty(t, sent.Header.Get("X-Amz-Security-Token"), st.url)
				}
			}
		}
	}
}

// TestTransportRouteAllocs: a request to the host of the last one reuses
// its route without allocating, and without inferring its scope again; one
// to another host allocates the route it keeps, and nothing to infer the
// scope.
func TestTransportRouteAllocs(t *testing.T) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
	})
	// Two hosts that differ in one letter: signing for either costs the
	// same.
	reqs := make([]*http.Request, 2)
	for i, u := range []string{"https://search-a.eu-west-2.es.amazonaws.com/_search", "https://search-b.eu-west-2.es.amazonaws.com/_search"} {
		var err error
		reqs[i], err = http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
	}
	allocs := func(tr *kivuli.Transport, alternate bool) float64 {
		n := 0
		return testing.AllocsPerRun(500, func() {
			r := reqs[0]
			if alternate {
				n++
				r = reqs[n%2]
			}
			if _, err := tr.RoundTrip(r); err != nil {
				t.Fatal(err)
			}
		})
	}
	explicit := &kivuli.Transport{Credentials: creds, Base: base, Service: "es", Region: "eu-west-2"}
	inferred := &kivuli.Transport{Credentials: creds, Base: base}

	same := allocs(explicit, false)
	assert.Equal(t, same+1, allocs(explicit, true), "a host switch allocates the route it keeps, and nothing more")
	assert.Equal(t, same, allocs(inferred, false), "a repeated host reuses its inferred scope")
	// Inference itself allocates nothing (a binary search in the
	// generated table); that a host switch infers again is shown by
	// TestTransportRouteAcrossHosts.
	assert.Equal(t, same+1, allocs(inferred, true), "a host switch infers the scope again, and allocates only the route it keeps")
}

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
