package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
)

// newSigner is the signer of p's requests, sending them through lastHop
// to cfg's Transport, or to a pool of upstream connections.
func newSigner(cfg Config, s *settings, p *Proxy) *kivuli.Transport {
	base := cfg.Transport
	if base == nil {
		base = newUpstreamTransport(cfg, s)
	}
	policies := kivuli.DefaultPolicies()
	if cfg.UnsignedPayload {
		for k, pol := range policies {
			pol.Payload = kivuli.PayloadUnsigned
			policies[k] = pol
		}
	}
	return &kivuli.Transport{
		Credentials:  cfg.Credentials,
		Service:      cfg.Service,
		Region:       cfg.Region,
		Base:         &lastHop{next: base, p: p},
		Policies:     policies,
		AllowedHosts: cfg.AllowedHosts,
		// Bodies reach the signer hashable (buffered or spooled, with
		// GetBody) or to be sent UNSIGNED-PAYLOAD: it must never buffer
		// one itself.
		MaxBufferedBody: -1,
		Logger:          cfg.Logger,
	}
}

// newRetrier is the retrying transport over the signer, making at most
// attempts attempts: the library's policy (idempotent or not, a request
// that can be sent again is retried on 5xx, throttling and broken
// connections, re-signed each time; an expired token refreshes the
// credentials once), and its waits (100 ms to 5 s, jittered).
func newRetrier(t *kivuli.Transport, attempts int) http.RoundTripper {
	return kivuli.NewRetryingTransport(t, func(o *kivuli.RetryOptions) { o.MaxAttempts = attempts })
}

// newUpstreamTransport is the upstream's connection pool, sized for a
// sidecar: many idle connections kept per host (net/http keeps 2, which
// under load means a new TLS handshake for most requests), answers passed
// through as they are (no transparent gzip), HTTP/2 where the upstream
// offers it.
func newUpstreamTransport(cfg Config, s *settings) *http.Transport {
	var tlsConfig *tls.Config
	if cfg.UpstreamTLSConfig != nil {
		tlsConfig = cfg.UpstreamTLSConfig.Clone()
	}
	if cfg.UpstreamServerName != "" {
		tlsConfig = cmp.Or(tlsConfig, &tls.Config{})
		tlsConfig.ServerName = cfg.UpstreamServerName
	}
	return &http.Transport{
		TLSClientConfig:       tlsConfig,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   s.maxIdle,
		IdleConnTimeout:       s.idleConnTimer,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
}

// scope asks the signer, without sending anything, which scope it signs
// requests to the upstream with, by presigning a request to its root: the
// same host rules and inference as every request will meet, checked at
// start. The URL, which carries a signature, is dropped at once.
func (p *Proxy) scope(ctx context.Context) (service, region string, err error) {
	u := &url.URL{Scheme: p.upstream.Scheme, Host: p.upstream.Host, Path: "/"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", "", invalid("Config.Upstream: %v", err)
	}
	req.Host = p.signHost
	signed, err := p.signer.Presign(req, time.Second)
	if err != nil {
		return "", "", err
	}
	su, err := url.Parse(signed)
	if err != nil {
		return "", "", fmt.Errorf("kivuli: reading the presigned scope: %w", err)
	}
	// SigV4: AKID/DATE/REGION/SERVICE/aws4_request; SigV4a:
	// AKID/DATE/SERVICE/aws4_request, the regions in X-Amz-Region-Set.
	q := su.Query()
	switch parts := strings.Split(q.Get("X-Amz-Credential"), "/"); len(parts) {
	case 5:
		return parts[3], parts[2], nil
	case 4:
		return parts[2], q.Get("X-Amz-Region-Set"), nil
	}
	return "", "", errors.New("kivuli: the signer gave no credential scope")
}

// rewrite points the outgoing request at the upstream, whatever the
// client's Host, absolute-form URI or X-Forwarded-Host said (ReverseProxy
// has removed the forwarding headers), and keeps the client's query as it
// was sent: ReverseProxy re-encodes one it cannot parse, and the signer
// refuses such a query with a clear error instead.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	if p.strip != "" {
		stripPrefix(pr.Out.URL, p.strip)
	}
	pr.SetURL(p.upstream)
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.Out.URL.ForceQuery = false
	pr.Out.Host = p.signHost
}

// hop is what the signer must not see but the upstream must get: the
// unsigned headers, and for a WebSocket handshake the real scheme.
type hop struct {
	unsigned http.Header
	scheme   string // the URL's scheme, when it was made ws or wss for the signer
	state    *requestState
}

type hopKey struct{}

// splitter is the ReverseProxy's transport: the proxy's roundTrip.
type splitter struct{ p *Proxy }

func (s splitter) RoundTrip(req *http.Request) (*http.Response, error) { return s.p.roundTrip(req) }

// roundTrip gives the signer the request with the headers to sign only,
// the others kept for lastHop, and picks the retrying transport for a
// request that can be sent again.
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	signed, unsigned := p.headers.split(req.Header)
	h := &hop{unsigned: unsigned, state: stateOf(req.Context())}
	if h.state.preEncoded {
		signed.Set("X-Amz-Content-Sha256", streamingUnsigned)
		if v := unsigned.Values("Content-Encoding"); v != nil {
			signed["Content-Encoding"] = v
			delete(unsigned, "Content-Encoding")
		}
	}
	out := req.WithContext(context.WithValue(req.Context(), hopKey{}, h))
	out.Header = signed
	out.RequestURI = "" // a client request has none
	up := upgradeType(req.Header)
	if strings.EqualFold(up, "websocket") {
		// The policy table signs a WebSocket handshake as the service
		// wants it (Transcribe and IoT presign it), and the signer knows
		// one by its scheme: the Upgrade header is not signed.
		u := *req.URL
		h.scheme = u.Scheme
		u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
		out.URL = &u
	}
	oneShot := out.Body != nil && out.Body != http.NoBody && out.GetBody == nil
	if up != "" || oneShot || p.retrier == nil {
		return p.signer.RoundTrip(out)
	}
	return p.retrier.RoundTrip(out)
}

// lastHop is the signer's Base: it adds the unsigned headers back and this
// proxy's Via entry, then sends the request upstream.
type lastHop struct {
	next http.RoundTripper
	p    *Proxy
}

// ProxyURL tells the signer whether the request goes through a proxy,
// which a request in clear must not: as next says.
func (l *lastHop) ProxyURL(req *http.Request) (*url.URL, error) {
	return kivuli.ProxyURLOf(l.next, req)
}

// RoundTrip adds to req in place: req is the signer's clone of this
// attempt, made with room for more headers, and nothing reads it after
// the attempt (each attempt is signed from a fresh clone). Copying it
// again cost a request and a header map per attempt.
func (l *lastHop) RoundTrip(req *http.Request) (*http.Response, error) {
	h, _ := req.Context().Value(hopKey{}).(*hop)
	if h != nil {
		for k, vv := range h.unsigned {
			if _, ok := req.Header[k]; !ok {
				req.Header[k] = vv
			}
		}
		if h.scheme != "" {
			req.URL.Scheme = h.scheme
		}
		h.state.sent.Store(true)
		h.state.attempts.Add(1)
	}
	// Clipped: the clone's header values share one backing array.
	req.Header["Via"] = append(slices.Clip(req.Header["Via"]), l.p.viaEntry)
	if l.p.obs == nil || h == nil {
		return l.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := l.next.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	l.p.obs.Attempted(h.state.req, status, err, time.Since(start))
	return resp, err
}
