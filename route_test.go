package kivuli_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestURLForms: forms of a URL that net/http would send elsewhere than
// URL.Host are refused, and a presigned URL is made from the parts that
// were checked and signed.
func TestURLForms(t *testing.T) {
	tr := &kivuli.Transport{Credentials: staticCreds, AllowedHosts: []string{"search.example.com", "bastion.internal:9200"}, Base: &countingBase{}}
	newReq := func(t *testing.T, u string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		return req
	}
	t.Run("Opaque naming another host", func(t *testing.T) {
		req := newReq(t, "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
		req.URL.Opaque = "//evil.example/"
		_, err := tr.Presign(req, time.Minute)
		assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
		_, err = tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
	})
	t.Run("Opaque naming URL.Host", func(t *testing.T) {
		req := newReq(t, "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
		req.URL.Opaque = "//sts.us-east-1.amazonaws.com/"
		s, err := tr.Presign(req, time.Minute)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(s, "https://sts.us-east-1.amazonaws.com/?"), s)
	})
	t.Run("S3 key rewritten from an Opaque stays on the bucket's host", func(t *testing.T) {
		for _, key := range []string{"/evil.example/a+b", "a+b", "/a(1)"} {
			req := newReq(t, "https://bucket.s3.eu-west-2.amazonaws.com/")
			req.URL.Opaque = "//bucket.s3.eu-west-2.amazonaws.com/" + (&url.URL{Path: key}).EscapedPath()
			s, err := tr.Presign(req, time.Minute)
			require.NoError(t, err)
			u, err := url.Parse(s)
			require.NoError(t, err)
			assert.Equal(t, "bucket.s3.eu-west-2.amazonaws.com", u.Host, s)
			unescaped, _ := url.PathUnescape(u.EscapedPath())
			assert.Equal(t, "/"+key, unescaped, s)
		}
	})
	t.Run("path without its leading slash", func(t *testing.T) {
		for _, p := range []string{"@evil.example/steal", "evil"} {
			req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "search.example.com", Path: p}, Header: http.Header{}}
			_, err := tr.RoundTrip(req)
			assert.ErrorIs(t, err, kivuli.ErrInvalidRequest, p)
		}
		req := newReq(t, "https://search.example.com/")
		req.URL.Opaque = "evil"
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrInvalidRequest)
	})
	t.Run("an AWS host that runs customers' code, signed for another", func(t *testing.T) {
		for _, dial := range []string{"attacker.lambda-url.us-east-1.on.aws", "abc123.execute-api.us-east-1.amazonaws.com", "attacker-bucket.s3.us-east-1.amazonaws.com"} {
			req := newReq(t, "https://"+dial+"/")
			req.Host = "sts.us-east-1.amazonaws.com"
			_, err := tr.RoundTrip(req)
			assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed, dial)
			req.Host = dial + ":443" // the same host is fine
			_, err = tr.RoundTrip(req)
			assert.NoError(t, err, dial)
		}
	})
	t.Run("schemes", func(t *testing.T) {
		for _, scheme := range []string{"", "ftp", "h2c", "gopher", "http "} {
			req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: scheme, Host: "sts.us-east-1.amazonaws.com", Path: "/"}, Header: http.Header{}}
			_, err := tr.RoundTrip(req)
			assert.ErrorIs(t, err, kivuli.ErrInvalidRequest, "%q", scheme)
			_, err = tr.Presign(req, time.Minute)
			assert.ErrorIs(t, err, kivuli.ErrInvalidRequest, "%q", scheme)
		}
		req := newReq(t, "HTTP://sts.us-east-1.amazonaws.com/")
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrPlaintext)
		assert.ErrorContains(t, err, "use https://")
	})
}

// TestTunnelInClearThroughProxy: through an HTTP proxy, net/http sends a
// plaintext request to Request.Host, not URL.Host: a tunnel's request in
// clear is refused when Base would use a proxy for it, and so is one to a
// listed host (issue 17: the proxy would read the token and the
// signature).
func TestTunnelInClearThroughProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	tr := &kivuli.Transport{Credentials: staticCreds, AllowedHosts: []string{"bastion.internal:9200"},
		Base: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	req, _ := http.NewRequest(http.MethodGet, "http://bastion.internal:9200/_search", nil)
	req.Host = "search-logs-abc.eu-west-2.es.amazonaws.com"
	_, err := tr.RoundTrip(req)
	require.ErrorIs(t, err, kivuli.ErrPlaintext)
	assert.Zero(t, proxied.Load(), "nothing reached the proxy")

	req.Host = "" // signed for the listed host itself
	tr.Service, tr.Region = "es", "eu-west-2"
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, kivuli.ErrPlaintext)
	assert.NotContains(t, err.Error(), proxy.URL, "the proxy's address may hold a password")
	assert.Zero(t, proxied.Load(), "nothing reached the proxy")
}

// TestTunnelInClearBehindAWrappedBase: of a Base that is not an
// *http.Transport (middleware around one), kivuli cannot ask whether it
// uses a proxy, so a plaintext tunnel through it is refused, unless the
// host dialled is loopback, which proxies from the environment never
// serve.
func TestTunnelInClearBehindAWrappedBase(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	inner := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
	wrapped := roundTripFunc(func(r *http.Request) (*http.Response, error) { return inner.RoundTrip(r) })
	tr := &kivuli.Transport{Credentials: staticCreds, AllowedHosts: []string{"bastion.internal:9200", "localhost:9200"}, Base: wrapped}
	req, _ := http.NewRequest(http.MethodGet, "http://bastion.internal:9200/_search", nil)
	req.Host = "search-logs-abc.eu-west-2.es.amazonaws.com"
	_, err := tr.RoundTrip(req)
	require.ErrorIs(t, err, kivuli.ErrPlaintext)
	assert.Zero(t, proxied.Load(), "nothing reached the proxy")

	base := &countingBase{}
	tr = &kivuli.Transport{Credentials: staticCreds, AllowedHosts: []string{"localhost:9200"}, Base: base}
	req, _ = http.NewRequest(http.MethodGet, "http://localhost:9200/_search", nil)
	req.Host = "search-logs-abc.eu-west-2.es.amazonaws.com"
	_, err = tr.RoundTrip(req)
	require.NoError(t, err, "a loopback tunnel behind any Base")
	assert.Equal(t, int32(1), base.sent.Load())
}
