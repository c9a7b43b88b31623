package kivuli

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// An Option configures [New] or [NewIMDS]. Options that do not apply to the
// function they are passed to are ignored.
type Option func(*config)

type config struct {
	role        string
	endpoint    string
	noToken     bool
	tokenTTL    time.Duration
	maxAttempts int
	httpClient  *http.Client
	logger      *slog.Logger

	env       bool
	noRefresh bool
	provider  aws.CredentialsProvider

	// noBackground turns off the refresh ahead of time, so that tests can
	// reach the refresh deadline with the credentials still in place.
	noBackground bool
}

func newConfig(opts []Option) config {
	c := config{tokenTTL: defaultTokenTTL, maxAttempts: defaultMaxAttempts}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithRoleName names the IAM role whose credentials are fetched. Without it
// the role is discovered from the instance metadata service on every fetch
// (the first role listed).
func WithRoleName(name string) Option { return func(c *config) { c.role = name } }

// WithEndpoint sets the instance metadata service endpoint, for example
// "http://127.0.0.1:1338". Without it the endpoint is taken from
// AWS_EC2_METADATA_SERVICE_ENDPOINT, else from
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4 http://169.254.169.254, IPv6
// http://[fd00:ec2::254]), else IPv4.
func WithEndpoint(url string) Option { return func(c *config) { c.endpoint = url } }

// WithoutAPIToken skips the IMDSv2 session token and uses IMDSv1 requests
// only. It is needed where the token request cannot succeed, as in Elastic
// Beanstalk Docker containers.
func WithoutAPIToken() Option { return func(c *config) { c.noToken = true } }

// WithTokenTTL sets the lifetime asked for the IMDSv2 session token, between
// one second and six hours. The default is six hours, the longest IMDS grants.
func WithTokenTTL(d time.Duration) Option { return func(c *config) { c.tokenTTL = d } }

// WithMaxAttempts bounds the attempts made for each IMDS request that fails
// with a 5xx or 429 status or a broken connection. The default is 4.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithHTTPClient sets the HTTP client used for IMDS requests. The client
// itself is copied, never changed. If its Transport is an [*http.Transport]
// (or nil), a copy of it (or of [http.DefaultTransport]) is used, with its
// Proxy turned off, because IMDS is link-local and must never be reached
// through a proxy: that copy is kivuli's, and [Credentials.Close] (or
// [IMDS.CloseIdleConnections]) closes its idle connections; the caller's
// transport keeps its own connections, which kivuli never uses. A Transport
// of any other type is used as it is and stays the caller's to close.
// Timeouts are the client's own. The default client dials for at most
// 250 ms and waits at most 500 ms for response headers.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithLogger sets the logger for warnings, such as credentials kept past a
// failed refresh. Secrets are never logged. The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithEnvironment exports the credentials to AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN when [New] succeeds and again
// as soon as each refresh succeeds: the three together or none of them (a
// failed export leaves the previous values and logs a warning).
// [Credentials.Close] unsets them if they still hold the values it
// exported, since no one keeps them fresh after that. The environment is
// process-wide: two [Credentials] with this option overwrite each other's
// values, and closing one that exported the same set as another unsets it
// for both. Readers of the environment (a child started at that instant,
// os.Environ in another goroutine) take no lock of kivuli's, so the
// variables are written in an order that never pairs a key ID with another
// set's secret or token: AWS_ACCESS_KEY_ID is unset first and set last. A
// reader sees the old set, the new one, or no key ID, after which the SDKs
// move on to their next credential source. To hand credentials to child
// processes that outlive a set, prefer a credentials endpoint (kivuli exec
// --serve).
func WithEnvironment() Option { return func(c *config) { c.env = true } }

// WithoutRefresh makes [New] fetch the credentials once and serve them until
// the program ends, as the original Kivuli did without :refresh. By default
// credentials are refreshed in the background before they expire.
func WithoutRefresh() Option { return func(c *config) { c.noRefresh = true } }

// WithProvider makes [New] cache and refresh credentials from p instead of
// from the instance metadata service. The IMDS options are then ignored.
func WithProvider(p aws.CredentialsProvider) Option { return func(c *config) { c.provider = p } }
