package proxy

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/bytesize"
	"github.com/kivuli-go/kivuli/internal/guard"
)

// Config is a [Proxy]'s configuration: Upstream and Credentials are
// required, and every other field's zero value is a safe default. Sizes are
// in bytes. A Config is read by [New] only: changing it afterwards changes
// nothing.
type Config struct {
	// Upstream is where every request goes: https://HOST[:PORT], or
	// http:// to a loopback host or one of AllowedHosts, with an optional
	// path that clients are held under (their paths are joined to it). No
	// user information, query or fragment. It must be an AWS endpoint, or
	// listed in AllowedHosts. Required.
	Upstream string
	// Credentials sign the requests. Required. A [*kivuli.Credentials]
	// keeps them fresh in the background.
	Credentials aws.CredentialsProvider
	// SignHost is the host signed for and sent as Host, when not
	// Upstream's: through a tunnel, the AWS name (and UpstreamServerName
	// to verify its certificate).
	SignHost string
	// Service and Region are the signing scope, when the host does not tell
	// it (a custom domain, a tunnel): as [kivuli.Transport]'s.
	Service, Region string
	// AllowedHosts are the hosts besides AWS endpoints that may be sent
	// signed requests, and reached over http://: as
	// [kivuli.Transport.AllowedHosts].
	AllowedHosts []string

	// ServeHosts are the names, besides IP addresses and localhost, that a
	// request's Host may have (host or host:port; the port is not
	// compared): the host of the address the proxy is served on when it is
	// a name, a compose service's name. Other Hosts get 421 Misdirected
	// Request.
	ServeHosts []string
	// AllowOrigins are the origins (scheme://host[:port], as browsers send
	// them) whose web pages may send requests through the proxy; the pages
	// of other origins get 403. No CORS headers are added: those are the
	// upstream's.
	AllowOrigins []string

	// SignHeaders are headers to sign besides Host, x-amz-*, Content-MD5
	// and Content-Type: names, or prefixes ending in '*' (X-Opensearch-*),
	// each entry a comma-separated list. A header that proxies on the way
	// change (hop-by-hop, forwarding, Accept-Encoding, tracing) cannot be.
	SignHeaders []string
	// DropHeaders are headers removed from requests, as SignHeaders names
	// them.
	DropHeaders []string
	// SetHeaders are set on every request sent upstream, in place of any
	// the client sent under those names, and signed: a fixed header the
	// upstream wants (an API version, a tenant). Hop-by-hop and other
	// headers that are never signed, Host, Authorization and X-Amz-* (the
	// signer's and the client's own) are refused. Their values are never
	// logged.
	SetHeaders http.Header
	// UnsignedPayload signs every body as UNSIGNED-PAYLOAD, streaming the
	// large ones, for services that accept it. Bodies to S3 always may.
	UnsignedPayload bool

	// MaxBody refuses larger request bodies with 413. Zero: DefaultMaxBody;
	// negative: every body.
	MaxBody int64
	// MaxBuffer is the largest body held in memory; larger ones are spooled
	// or streamed. Zero: DefaultMaxBuffer; negative: none.
	MaxBuffer int64
	// MemoryBudget bounds the bytes all buffered bodies hold together; past
	// it, small bodies are spooled too. Zero: DefaultMemoryBudget. It is
	// never less than MaxBuffer.
	MemoryBudget int64
	// SpoolDir holds the spooled bodies' files, unlinked as soon as
	// created. Empty: [os.TempDir] (where that is a tmpfs, the spool is in
	// memory too).
	SpoolDir string
	// MaxSpool bounds the bytes all spooled bodies hold together: 503 with
	// Retry-After for a body that would go over it, 413 for one larger.
	// Zero: DefaultMaxSpool; negative: nothing is spooled.
	MaxSpool int64
	// MaxRequests bounds the requests served at once (a WebSocket tunnel
	// counts while it lasts). Zero: DefaultMaxRequests.
	MaxRequests int
	// QueueTimeout is how long a request over MaxRequests waits for its
	// turn before 503 with Retry-After. Zero: DefaultQueueTimeout;
	// negative: no wait.
	QueueTimeout time.Duration
	// BodyIdleTimeout drops with 408 a request whose body sends nothing for
	// this long (a slow upload that keeps moving goes on). Zero:
	// DefaultBodyIdleTimeout; negative: never.
	BodyIdleTimeout time.Duration

	// MaxAttempts is the most times a request that can be sent again (no
	// body, or one buffered or spooled) is sent: 5xx, 429 and throttling
	// answers and broken connections are retried with backoff, signed anew
	// each time, by [kivuli.NewRetryingTransport]. Zero: DefaultMaxAttempts;
	// 1: no retries.
	MaxAttempts int

	// Transport sends the signed requests. Nil: an [http.Transport] pooled
	// for a sidecar (many idle connections per host, answers passed
	// through as they are, HTTP/2 where the upstream offers it, HTTP_PROXY
	// honoured), with the four fields below.
	Transport http.RoundTripper
	// UpstreamServerName is the name the upstream's TLS certificate is
	// verified for, when not its host (a tunnel). Only without Transport.
	UpstreamServerName string
	// UpstreamTLSConfig is the TLS configuration of the upstream
	// connections, cloned: RootCAs for a private CA, or InsecureSkipVerify
	// for a tunnel with a self-signed certificate (kivuli proxy allows it
	// only for a host that is not AWS's). Nil: Go's defaults. Only without
	// Transport.
	UpstreamTLSConfig *tls.Config
	// MaxIdleConns is the idle connections kept per upstream host. Zero:
	// DefaultMaxIdleConns. Only without Transport.
	MaxIdleConns int
	// IdleConnTimeout closes idle upstream connections. Zero:
	// DefaultIdleConnTimeout. Only without Transport.
	IdleConnTimeout time.Duration
	// ResponseHeaderTimeout gives up on an upstream that sends no answer
	// headers within it (504). Zero: no limit. Only without Transport.
	ResponseHeaderTimeout time.Duration

	// Observer, if set, is told of each attempt sent upstream and of each
	// request once answered: for metrics and an access log.
	Observer Observer
	// ErrorHandler, if set, writes the answer to a request the proxy
	// answers itself (refused, or not forwarded), in place of
	// http.Error(w, err.Msg, err.Status). The headers the answer needs
	// (Retry-After, Connection: close) are set already. It is not called
	// for a client that has gone.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err *RequestError)
	// Logger, if set, receives the signer's records (the canonical request
	// and string to sign at debug level, with the token redacted; clock
	// corrections as warnings) and, as warnings, net/http's errors while
	// copying an answer.
	Logger *slog.Logger
}

// The defaults of Config's zero values.
const (
	DefaultMaxBody         = 5 << 30 // S3's largest single PUT
	DefaultMaxBuffer       = 1 << 20
	DefaultMemoryBudget    = 32 << 20
	DefaultMaxSpool        = 1 << 30
	DefaultMaxRequests     = 64
	DefaultQueueTimeout    = 10 * time.Second
	DefaultBodyIdleTimeout = 30 * time.Second
	DefaultMaxAttempts     = 3
	DefaultMaxIdleConns    = 100
	DefaultIdleConnTimeout = 90 * time.Second
)

// settings are a Config checked, with its defaults filled in.
type settings struct {
	upstream                              *url.URL
	headers                               *headerRules
	guard                                 *guard.Guard
	maxBody, maxBuffer, memory, maxSpool  int64
	spoolDir                              string
	maxRequests, maxAttempts, maxIdle     int
	queueTimeout, bodyIdle, idleConnTimer time.Duration
}

// Validate checks c as [New] does, but for the credentials, which it
// neither needs nor uses: a program can check its configuration before it
// gets them. Its errors are [*kivuli.Error]s of kind
// [kivuli.ErrInvalidConfig] that name the field.
func (c Config) Validate() error {
	_, err := c.settings()
	return err
}

// settings checks c and fills in its defaults.
func (c Config) settings() (*settings, error) {
	u, err := parseUpstream(c.Upstream)
	if err != nil {
		return nil, err
	}
	s := &settings{upstream: u,
		maxBody:       sizeOr(c.MaxBody, DefaultMaxBody),
		maxBuffer:     sizeOr(c.MaxBuffer, DefaultMaxBuffer),
		maxSpool:      sizeOr(c.MaxSpool, DefaultMaxSpool),
		queueTimeout:  cmp.Or(max(c.QueueTimeout, -1), DefaultQueueTimeout),
		bodyIdle:      cmp.Or(max(c.BodyIdleTimeout, -1), DefaultBodyIdleTimeout),
		maxRequests:   cmp.Or(c.MaxRequests, DefaultMaxRequests),
		maxAttempts:   cmp.Or(c.MaxAttempts, DefaultMaxAttempts),
		maxIdle:       cmp.Or(c.MaxIdleConns, DefaultMaxIdleConns),
		idleConnTimer: cmp.Or(c.IdleConnTimeout, DefaultIdleConnTimeout),
	}
	s.memory = max(cmp.Or(c.MemoryBudget, DefaultMemoryBudget), s.maxBuffer)
	switch {
	case s.maxBuffer > s.maxBody:
		return nil, invalid("Config.MaxBuffer (%s) is over Config.MaxBody (%s)", bytesize.Format(s.maxBuffer), bytesize.Format(s.maxBody))
	case c.MaxRequests < 0, c.MaxAttempts < 0, c.MaxIdleConns < 0, c.MemoryBudget < 0:
		return nil, invalid("Config.MaxRequests, Config.MaxAttempts, Config.MaxIdleConns and Config.MemoryBudget must not be negative")
	}
	if c.SignHost != "" {
		if _, err := url.Parse("https://" + c.SignHost + "/"); err != nil || strings.ContainsAny(c.SignHost, "/?#@") {
			return nil, invalid("Config.SignHost %q: want a host, or host:port", c.SignHost)
		}
	}
	if s.guard, err = guard.New(c.ServeHosts, "Config.ServeHosts", c.AllowOrigins, "Config.AllowOrigins"); err != nil {
		return nil, err
	}
	if s.headers, err = newHeaderRules(c.SignHeaders, c.DropHeaders, c.SetHeaders); err != nil {
		return nil, err
	}
	s.spoolDir = cmp.Or(c.SpoolDir, os.TempDir())
	if st, err := os.Stat(s.spoolDir); err != nil || !st.IsDir() {
		return nil, invalid("Config.SpoolDir %s: not a directory", s.spoolDir)
	}
	return s, nil
}

// sizeOr is a size field's value: def for zero, none for negative.
func sizeOr(n, def int64) int64 {
	if n < 0 {
		return 0
	}
	return cmp.Or(n, def)
}

// parseUpstream parses Config.Upstream: http or https, a host, perhaps a
// base path, nothing else.
func parseUpstream(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, invalid("Config.Upstream is required: the URL of the AWS endpoint to forward to")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, invalid("Config.Upstream %q: %v", raw, err)
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, invalid("Config.Upstream %q: want https://HOST (or http:// to loopback or a host of Config.AllowedHosts)", raw)
	case u.Host == "" || u.Opaque != "":
		return nil, invalid("Config.Upstream %q: no host", raw)
	case u.User != nil:
		return nil, invalid("Config.Upstream %q: no user information, please: the proxy signs", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, invalid("Config.Upstream %q: no query or fragment: each request brings its own", raw)
	case dotSegments(u.EscapedPath()):
		return nil, invalid("Config.Upstream %q: the path has a '.' or '..' segment (or one encoded): write the path it stands for, which clients are held under", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

// invalid is an ErrInvalidConfig saying what fmt.Sprintf(format, args...)
// says.
func invalid(format string, args ...any) error {
	return &kivuli.Error{Kind: kivuli.ErrInvalidConfig, Reason: fmt.Sprintf(format, args...)}
}
