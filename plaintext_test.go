package kivuli_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlaintextNeverThroughAProxy (issue 17, point 2): with HTTP_PROXY set,
// Go's ProxyFromEnvironment proxies every name but "localhost" exactly and
// loopback IP literals, though a resolver takes "LOCALHOST" and
// "app.localhost" for loopback too. A request in clear must reach no proxy,
// whatever the Base: the test runs itself again with HTTP_PROXY pointing
// at a recording server (ProxyFromEnvironment reads the environment once
// per process), and the proxy must see nothing.
func TestPlaintextNeverThroughAProxy(t *testing.T) {
	if os.Getenv("KIVULI_PLAINTEXT_CHILD") != "" {
		plaintextChild(t)
		return
	}
	var seen atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		t.Logf("the proxy received %s %s (Host %s)", r.Method, r.URL, r.Host)
	}))
	defer proxy.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPlaintextNeverThroughAProxy$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "KIVULI_PLAINTEXT_CHILD=1", "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL,
		"NO_PROXY=", "no_proxy=", "REQUEST_METHOD=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Zero(t, seen.Load(), "a signed request in clear reached the proxy")
}

// plaintextChild sends each name form in clear through a Base that asks
// ProxyFromEnvironment (nil: http.DefaultTransport), through a wrapper
// that cannot tell, and through one that says it sends directly.
func plaintextChild(t *testing.T) {
	direct := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer direct.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(direct.URL, "http://"))
	inner := &http.Transport{Proxy: http.ProxyFromEnvironment}
	defer inner.CloseIdleConnections()
	wrapper := roundTripFunc(inner.RoundTrip)
	bases := map[string]http.RoundTripper{"DefaultTransport": nil, "a wrapper": wrapper, "a ProxyReporter": &countingBase{}}

	const sent, refused, notAllowed = "sent", "refused", "not allowed"
	// Each host is listed, as a tunnel's is, and the request signed for an
	// AWS name: through a proxy it would go to that name, in clear.
	for _, tc := range []struct {
		host     string
		unlisted bool
		want     map[string]string // by base; "" is sent everywhere
	}{
		{host: "localhost"},
		{host: "127.0.0.1"},
		{host: "127.0.0.2"},
		{host: "[::ffff:127.0.0.1]"},
		{host: "[0:0:0:0:0:0:0:1]"},
		{host: "LOCALHOST", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "LocalHost", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "app.localhost", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "app.LOCALHOST", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "[::1%25lo]", want: map[string]string{"a wrapper": refused}}, // Go 1.26 does not proxy it, older Go did
		// Names and numbers that only a resolver takes for loopback.
		{host: "127.1", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "0x7f.0.0.1", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		{host: "search.internal", want: map[string]string{"DefaultTransport": refused, "a wrapper": refused}},
		// Unlisted, a host is not even dialled (but plain loopback, in clear).
		{host: "127.1", unlisted: true, want: map[string]string{"DefaultTransport": notAllowed, "a wrapper": notAllowed, "a ProxyReporter": notAllowed}},
	} {
		for name, base := range bases {
			want := tc.want[name]
			if want == "" {
				want = sent
			}
			t.Run(tc.host+"/"+name, func(t *testing.T) {
				tr := &kivuli.Transport{Credentials: staticCreds, Service: "es", Region: "eu-west-2", Base: base}
				req, err := http.NewRequest(http.MethodGet, "http://"+tc.host+":"+port+"/", nil)
				require.NoError(t, err)
				if !tc.unlisted {
					tr.AllowedHosts = []string{req.URL.Host}
					req.Host = "search-x.eu-west-2.es.amazonaws.com"
				}
				resp, err := tr.RoundTrip(req)
				if resp != nil {
					resp.Body.Close()
				}
				switch want {
				case refused:
					require.ErrorIs(t, err, kivuli.ErrPlaintext)
				case notAllowed:
					require.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
				default:
					var e *kivuli.Error
					assert.False(t, errors.As(err, &e), "not refused by kivuli: %v", err) // a dial may fail: the name may not resolve here
				}
			})
		}
	}
	t.Run("ws", func(t *testing.T) {
		tr := &kivuli.Transport{Credentials: staticCreds, Service: "es", Region: "eu-west-2", AllowedHosts: []string{"search.internal"}}
		req, _ := http.NewRequest(http.MethodGet, "ws://search.internal/", nil)
		_, err := tr.Presign(req, 0)
		require.ErrorIs(t, err, kivuli.ErrPlaintext, "a WebSocket handshake is asked about as http://")
	})
}
