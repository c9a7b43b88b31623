package proxycmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/spf13/cobra"
)

// proxyFlags are kivuli proxy's own flags, and the run they are for.
type proxyFlags struct {
	*base.App
	upstream              string
	listen                string
	allowRemote           bool
	admin                 string
	service               string
	region                string
	signHost              string
	allowHosts            []string
	serveHosts            []string
	allowOrigins          []string
	tlsCert, tlsKey       string
	serverName            string
	maxBody               base.SizeFlag
	maxBuffer             base.SizeFlag
	spoolDir              string
	maxSpool              base.SizeFlag
	maxHeaders            base.SizeFlag
	maxConns              int
	maxRequests           int
	queueTimeout          time.Duration
	bodyIdleTimeout       time.Duration
	unsignedPayload       bool
	headerAllow           []string
	headerDeny            []string
	customHeaders         []string
	maxIdleConns          int
	idleConnTimeout       time.Duration
	responseHeaderTimeout time.Duration
	drainTimeout          time.Duration
	maxAttempts           int
	logFormat             string
	verbose               bool
	logFailedRequests     bool
	accessLog             string
	noVerifySSL           bool
	sf                    base.SourceFlags
	peer                  *peerValues   // aws-sigv4-proxy's flags, refused with their equivalents
	rf                    routeFlags    // --route, --routes (routes.go)
	procs                 *procGovernor // set by startProcess, or nil
}

// Defaults of the limits on connections (see limits.go); those of
// requests are the library's (proxy.Default*).
const (
	defaultMaxHeaders = 32 << 10
	defaultMaxConns   = 256
)

// NewCommand is kivuli proxy, over the library's proxy package.
func NewCommand(a *base.App) *cobra.Command {
	f := &proxyFlags{
		App:        a,
		maxBody:    base.SizeFlag{N: proxy.DefaultMaxBody, Raw: base.FormatSize(proxy.DefaultMaxBody)},
		maxBuffer:  base.SizeFlag{N: proxy.DefaultMaxBuffer, Raw: base.FormatSize(proxy.DefaultMaxBuffer)},
		maxSpool:   base.SizeFlag{N: proxy.DefaultMaxSpool, Raw: base.FormatSize(proxy.DefaultMaxSpool)},
		maxHeaders: base.SizeFlag{N: defaultMaxHeaders, Raw: base.FormatSize(defaultMaxHeaders)},
	}
	cmd := &cobra.Command{
		Use:   "proxy --upstream URL [options]",
		Short: "a signing reverse proxy: plain HTTP in, SigV4-signed requests to AWS out",
		Long: `kivuli proxy listens for plain HTTP requests and forwards each to the
--upstream, signed with SigV4 by the kivuli library's Transport, with the
credentials of the source (the instance role by default), kept fresh in
the background. Programs that cannot sign (OpenSearch Dashboards, Grafana
data sources, Prometheus agents writing to Amazon Managed Prometheus,
scripts, webhooks) talk to it as to the service itself. It replaces
aws-sigv4-proxy: --name, --region and --host become --service, --region
and --upstream, and the service and region come from the host when it
tells them (set them for a custom domain or a tunnel); a region that
neither the host, --region nor AWS_REGION names is the instance's (IMDS's
placement/region), or the profile's with --source chain. Its other flags
that kivuli names otherwise (--port, --strip, --upstream-url-scheme,
--log-signing-process, ...) are refused with the kivuli flag to use. At
start every wrong or missing flag is named at once, before the
credentials are asked for. An upstream that takes only Signature Version
4a (an S3 Multi-Region Access Point, CloudFront KeyValueStore, an
EventBridge global endpoint) is signed with it, for the region set "*".
The proxy itself is
the library's package github.com/kivuli-go/kivuli/proxy, which Go
programs embed as an http.Handler; this command adds the flags, the
listeners, TLS, draining, the admin endpoints and the log.

Where a request goes is fixed by --upstream, never by the client: its
Host header, an absolute-form request URI and X-Forwarded-Host are
ignored, the path and query are kept. An --upstream with a path holds
clients under it: a request whose path climbs above it (a '..' segment,
or one percent-encoded, or after an encoded slash or backslash, as any
server on the way might read it) gets 400, and nothing is sent. The
upstream must be an AWS endpoint or a host given with --allow-host; a
tunnel is a listed --upstream with the AWS name as --sign-host (and
--upstream-server-name, to verify the certificate for it; or, for a
tunnel with a self-signed certificate, --no-verify-ssl, which is refused
for an AWS name and an http:// upstream, warned about at start and said
by /readyz). The upstream
is reached in clear (http://) only on loopback or a listed host, and
never through an HTTP proxy: with HTTP_PROXY set, an http:// upstream
that Go would send through it (app.localhost and LOCALHOST among them;
NO_PROXY exempts hosts) is refused at start, since the proxy would read
the token and the signature. An upstream that is the proxy itself is
refused at start; a request that comes back through the proxy anyway (its
Via entry) is answered 508.

ROUTES: one proxy for several upstreams. Instead of --upstream, give each
as --route MATCH=URL[,KEY=VALUE]... (repeatable), or in --routes FILE.
MATCH is a Host name the operator chooses (es.localhost; requests with
that Host, whatever their port and letter case), a path prefix that
begins and ends with '/' (/aps/; requests under it, the prefix removed
before the path is joined to URL's), or both (es.localhost/aps/). A
request whose Host is a route's takes one of that Host's routes, any
other one of the routes without Host; the prefix / takes the paths no
other prefix takes (/aps and /apsx/ are not under /aps/). A request no
route takes gets 404; one whose path some reading puts under another
route than its plain form (an encoded letter or slash, a backslash, a dot
segment, a doubled slash, a ;parameter) or above its route's prefix gets
400; nothing is signed or sent. The route's KEYs are those of the flags
for one upstream: name (the route's label in metrics and the log;
default: MATCH), service, region, sign-host, upstream-server-name,
allow-host, header-allow, header-deny, unsigned-payload, max-body,
max-buffer, body-idle-timeout, max-attempts, and role-arn: the route's
requests are signed as that role, assumed once with the source's
credentials through STS (AWS_ENDPOINT_URL_STS honoured) and kept fresh.
--region, --allow-host, --header-allow, --header-deny,
--unsigned-payload, --max-body, --max-buffer, --body-idle-timeout,
--max-attempts and the upstream pool's flags are every route's defaults,
which a route's KEY replaces; --upstream, --service, --sign-host and
--upstream-server-name are one upstream's and are refused with routes.
The limits below are the process's, shared by all routes. --routes FILE
is JSON: {"routes": [{"match": "/aps/", "upstream": "https://...",
"role-arn": "...", "header-allow": ["X-A", "X-B"]}, ...]} (or "host" and
"path-prefix" instead of "match"), for lists and URLs with a comma. With
routes, the request metrics have a route label and the access log a
route field; a request refused before it has one has route "".

Headers: the client's Authorization, X-Amz-Date, X-Amz-Security-Token and
X-Amz-Content-Sha256 are dropped. Host, x-amz-*, Content-MD5 and
Content-Type are signed, with the headers named by --header-allow; every
other header is sent unsigned, and hop-by-hop headers (and those the
client names in Connection), X-Forwarded-*, Via, Accept-Encoding and
tracing headers are never signed, since proxies on the way change them.
--header-deny drops headers. --custom-headers (aws-sigv4-proxy's
NAME=VALUE list) sets headers on every request, signed, in place of the
client's; hop-by-hop and never-signed headers, Host, Authorization and
X-Amz-* are refused, and the values are never logged. Nothing is removed
after it is signed.

Bodies, in bounded memory: up to --max-buffer in memory; larger ones (or
of unknown length) are spooled to an unlinked temporary file in
--spool-dir, hashed from it and sent from it, up to --max-body (413 past
it). To S3 a larger body of known length is streamed as it arrives, in
aws-chunked framing with a CRC32 checksum in its trailer (unsigned chunks
to an https upstream, signed ones in clear), and with --unsigned-payload
signed UNSIGNED-PAYLOAD; a chunked body to S3 gets 411 Length Required.
An SDK's upload in aws-chunked framing (what aws-sdk-go-v2, botocore and
the AWS CLI send over TLS, with their checksums) is re-signed with the
role: streamed through untouched to an https upstream, decoded and
re-encoded to one in clear, the client's checksum checked against the
bytes. Other services take no aws-chunked body: it is refused.
Answers stream: every write is passed on at once, so server-sent events,
Bedrock and Lambda response streams and chunked answers arrive as the
upstream sends them, and a download is never held.

Limits, so that no client can make the proxy grow without bound:
  connections  at most --max-conns open; more wait to be accepted, and a
               connection idle between requests is closed to make room;
               HTTP/1.1 only, with TLS too (an HTTP/2 connection would
               carry many requests at once)
  headers      a request line and headers over --max-headers get 431, and
               must arrive within 10s
  requests     at most --max-requests served at once; more wait up to
               --queue-timeout for their turn, then get 503 with
               Retry-After: 1 (a WebSocket tunnel counts while it lasts)
  memory       bodies held in memory take 32MiB at most together; past it
               they are spooled
  spool        spooled bodies take --max-spool at most together: a body
               that would go over it gets 503 with Retry-After: 5, one
               larger than it 413 (where /tmp is a tmpfs, the spool is in
               memory too: give --spool-dir a disk)
  stalls       a body that sends nothing for --body-idle-timeout is dropped
               with 408 and its spool file freed; a slow upload that keeps
               moving goes on
With them the proxy's resident memory stays under 96MiB at the defaults,
whatever its clients do; with other limits, under 24MiB + 32MiB +
--max-conns x (2 x --max-headers + 32KiB, and 72KiB more with TLS) +
--max-requests x 256KiB (logged at start as memory_bound). The Go
runtime's soft memory limit is set to that bound less 16MiB, unless
GOMEMLIMIT is set, and GOGC to 400 unless GOGC is set: the proxy's heap
is small, and collecting it four times less often shortens the slowest
requests, for up to 12MiB. /metrics counts the requests each limit refused.

Unless GOMAXPROCS is set, the proxy runs on one processor while its
requests come one at a time, and on all of them (GOMAXPROCS's default)
as soon as two overlap, until a second passes without overlap: a
lone client's request passes between goroutines several times, and on
one processor no hand-off wakes another thread (about a quarter less CPU
a request, and a shorter wait).

WebSocket upgrades are passed through, the handshake signed as the
service wants it (Neptune in headers; Transcribe and IoT presigned).
A request that can be sent again (no body, or one buffered or spooled) is
retried on 5xx, 429 and throttling answers with backoff, up to
--max-attempts, signed anew each time; an expired-token answer refreshes
the credentials and is retried once. Streamed bodies are sent once.

With --admin ADDR, an admin listener serves /healthz (alive), /readyz
(200 while the credentials are valid and the proxy is not draining, else
503) and /metrics in the Prometheus text format. There is none by
default, so that several proxies run on one machine with a --listen
each. Each request is logged with log/slog (method, path, query with any
signature, token or access key ID redacted, status, body mode, bytes,
attempts, duration), at --access-log's level: info, debug (written only
with -v) or off; an answer of 500 or more at warn, unless off. No header
value is logged. With --log-failed-requests (or -v), the first 8KiB of
each upstream answer of 400 or more is logged too, with anything that
looks like a key ID, a token or a signature redacted (S3's
SignatureDoesNotMatch echoes them); the answer still reaches the client
as it comes, unchanged. On SIGTERM or SIGINT the proxy stops accepting
connections, answers 503 on /readyz and waits --drain-timeout for the
requests in flight (WebSocket tunnels included) before it exits.

Anyone who can reach the listener makes requests as the role: it listens
on loopback by default, and on another address only with --allow-remote
(with --tls-cert and --tls-key it speaks TLS); so does --admin.

A web page in a browser on the same machine can send the proxy a GET or a
form POST, and, by DNS rebinding its own name to 127.0.0.1, read the
answers. So the proxy answers only a Host that is an IP address,
localhost, the host of --listen or --admin, or a name given with
--serve-host (421 Misdirected Request otherwise; the port is not
compared), and refuses what a browser sends from a page of another origin:
an Origin other than the proxy's own (scheme, host and port), or a
Sec-Fetch-Site other than same-origin or none (403). Programs that are not
browsers (curl, the SDKs, Grafana's backend) send neither header.
--allow-origin lets the pages of an origin through (CORS headers, if any,
are the upstream's). A refused request is logged, counted in
kivuli_proxy_refused_requests_total, and neither signed nor sent. The
admin listener has the same Host and origin rules.`,
		Annotations: map[string]string{
			base.AnnSynopsis: `kivuli proxy --upstream https://HOST [--listen 127.0.0.1:8080] [--service S]
            [--region R] [--sign-host H] [--allow-host HOST]...
            [--serve-host NAME]... [--allow-origin ORIGIN]... [--allow-remote]
            [--admin ADDR] [--tls-cert F --tls-key F] [--max-body SIZE]
            [--max-buffer SIZE] [--spool-dir DIR] [--unsigned-payload]
            [--header-allow NAME]... [--header-deny NAME]...
            [CREDENTIAL SOURCE options]
kivuli proxy --route MATCH=URL[,KEY=VALUE]... [--routes FILE] [options]`,
			base.AnnExitOnly: `0    stopped by SIGTERM or SIGINT, after draining.
1    a listener failed (the address is in use, ...).
2    a flag is wrong, or --upstream is the proxy itself (every wrong flag
     is named, the signer's refusals below too).
3    no credentials: the source did not give any.
4    the signer refuses the upstream, and no flag is wrong: not an AWS
     endpoint nor given with --allow-host, plain http:// to a host that is
     not loopback, a service or region that neither the host nor the
     flags tell (nor, for the region, the credential source).`,
			base.AnnSeeAlso: "aws-sigv4-proxy; kivuli curl --help, kivuli imds --help;\ngo doc github.com/kivuli-go/kivuli/proxy (the proxy as a Go package)",
		},
		Example: `# OpenSearch Dashboards or Grafana in front of an OpenSearch Service domain
kivuli proxy --upstream https://search-logs-abc.eu-west-2.es.amazonaws.com
curl 'http://127.0.0.1:8080/logs-*/_search?q=status:500'

# instead of: aws-sigv4-proxy --name es --region eu-west-2 --host X
kivuli proxy --upstream https://X

# Prometheus remote_write to Amazon Managed Prometheus
kivuli proxy --upstream https://aps-workspaces.eu-west-2.amazonaws.com
#   remote_write: url: http://127.0.0.1:8080/workspaces/ws-1/api/v1/remote_write

# S3: large objects streamed with a CRC32 checksum, in bounded memory
kivuli proxy --upstream https://my-bucket.s3.eu-west-2.amazonaws.com
curl -T backup.tar.gz http://127.0.0.1:8080/backups/backup.tar.gz

# a VPC-only domain through an SSH tunnel, with TLS for a remote listener
D=vpc-logs-abc.eu-west-2.es.amazonaws.com
kivuli proxy --upstream https://localhost:9200 --allow-host localhost:9200 \
    --sign-host $D --upstream-server-name $D \
    --listen 0.0.0.0:8443 --allow-remote --tls-cert proxy.pem --tls-key proxy.key

# in a compose file, where Grafana's backend reaches it as http://kivuli-proxy:8080
kivuli proxy --upstream https://aps-workspaces.eu-west-2.amazonaws.com \
    --listen 0.0.0.0:8080 --allow-remote --serve-host kivuli-proxy

# one proxy for OpenSearch by Host and a Prometheus workspace by path, as another role
ES=https://search-logs-abc.eu-west-2.es.amazonaws.com
WS=https://aps-workspaces.eu-west-2.amazonaws.com/workspaces/ws-1
ROLE=arn:aws:iam::123456789012:role/prom
kivuli proxy --route es.localhost=$ES --route /aps/=$WS,role-arn=$ROLE
curl http://es.localhost:8080/_cluster/health
curl 'http://127.0.0.1:8080/aps/api/v1/query?query=up'

# health and metrics on an admin listener
kivuli proxy --upstream https://sts.eu-west-2.amazonaws.com --admin 127.0.0.1:8081
curl http://127.0.0.1:8081/readyz; curl http://127.0.0.1:8081/metrics`,
		Args: base.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context()) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.upstream, "upstream", "", "forward every request to `URL` (https://HOST[:PORT][/PATH]); required, unless routes are given")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "listen on `ADDR` (host:port; port 0 picks one)")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "let --listen and --admin be addresses that are not loopback: whoever reaches --listen makes requests as the role")
	fl.StringVar(&f.admin, "admin", "", "serve /healthz, /readyz and /metrics on `ADDR`, such as 127.0.0.1:8081 (default: none)")
	fl.StringVar(&f.service, "service", "", "the signing `SERVICE`, e.g. es, s3, aps (default: inferred from the upstream's host)")
	fl.StringVar(&f.region, "region", "", "the signing `REGION`, e.g. eu-west-2 (default: inferred from the host, else AWS_REGION)")
	fl.StringVar(&f.signHost, "sign-host", "", "sign for, and send as Host, `HOST` instead of the upstream's (a tunnel)")
	fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "also send signed requests to `HOST` (host, host:port, or *.domain), which may be reached over http:// (repeatable)")
	fl.StringArrayVar(&f.serveHosts, "serve-host", nil, "also answer requests whose Host is `NAME` (host or host:port; the port is not compared), such as a compose service's name (repeatable)")
	fl.StringArrayVar(&f.allowOrigins, "allow-origin", nil, "let web pages of `ORIGIN` (scheme://host[:port]) send requests through the proxy (repeatable; no CORS headers are added)")
	fl.StringVar(&f.serverName, "upstream-server-name", "", "verify the upstream's TLS certificate for `NAME` (a tunnel: the AWS name; default: the upstream's host)")
	fl.BoolVar(&f.noVerifySSL, "no-verify-ssl", false, "do not verify the upstream's TLS certificate: only for an https --upstream that is not an AWS name (a tunnel with a self-signed certificate); loud")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with the certificate chain in PEM `FILE` (with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the private key in PEM `FILE` for --tls-cert")
	fl.Var(&f.maxBody, "max-body", "refuse request bodies over `SIZE` with 413 (e.g. 100MiB, 5GiB)")
	fl.Var(&f.maxBuffer, "max-buffer", "hold request bodies up to `SIZE` in memory; spool or stream larger ones")
	fl.StringVar(&f.spoolDir, "spool-dir", "", "spool large request bodies to temporary files in `DIR` (default: the system's temporary directory)")
	fl.Var(&f.maxSpool, "max-spool", "hold at most `SIZE` of spooled bodies on disk together (503 past it; 413 for a body larger)")
	fl.DurationVar(&f.bodyIdleTimeout, "body-idle-timeout", proxy.DefaultBodyIdleTimeout, "drop a request whose body sends nothing for `DUR` (408; 0: never)")
	fl.Var(&f.maxHeaders, "max-headers", "refuse a request line and headers over `SIZE` with 431")
	fl.IntVar(&f.maxConns, "max-conns", defaultMaxConns, "keep at most `N` client connections open; more wait to be accepted")
	fl.IntVar(&f.maxRequests, "max-requests", proxy.DefaultMaxRequests, "serve at most `N` requests at once; more wait --queue-timeout, then get 503")
	fl.DurationVar(&f.queueTimeout, "queue-timeout", proxy.DefaultQueueTimeout, "let a request over --max-requests wait up to `DUR` for its turn (0: 503 at once)")
	fl.BoolVar(&f.unsignedPayload, "unsigned-payload", false, "sign every body as UNSIGNED-PAYLOAD, streaming large ones (only for services that accept it)")
	fl.StringArrayVar(&f.headerAllow, "header-allow", nil, "also sign the header `NAME` (a prefix with a trailing *; comma lists; repeatable)")
	fl.StringArrayVar(&f.headerDeny, "header-deny", nil, "drop the header `NAME` from requests (a prefix with a trailing *; comma lists; repeatable)")
	fl.StringArrayVar(&f.customHeaders, "custom-headers", nil, "set the headers of `LIST` (NAME=VALUE,...) on every upstream request, signed, in place of the client's (repeatable; values are never logged)")
	fl.IntVar(&f.maxIdleConns, "max-idle-conns", proxy.DefaultMaxIdleConns, "keep up to `N` idle connections to the upstream")
	fl.DurationVar(&f.idleConnTimeout, "idle-conn-timeout", proxy.DefaultIdleConnTimeout, "close idle upstream connections after `DUR`")
	fl.DurationVar(&f.responseHeaderTimeout, "response-header-timeout", 0, "give up on an upstream that sends no answer headers within `DUR` (default: no limit)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, wait up to `DUR` for the requests in flight")
	fl.IntVar(&f.maxAttempts, "max-attempts", proxy.DefaultMaxAttempts, "send a request that can be sent again up to `N` times (1: never retry)")
	fl.StringVar(&f.logFormat, "log-format", "text", "write logs to standard error as `FORMAT`: text or json")
	fl.StringVar(&f.accessLog, "access-log", "info", "log each request at `LEVEL`: info, debug (written with -v only) or off; answers of 500 or more at warn, unless off")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "also log each canonical request and string to sign (token redacted), and what --log-failed-requests logs")
	fl.BoolVar(&f.logFailedRequests, "log-failed-requests", false, "log the start (8KiB) of the upstream's answers of 400 or more, secrets redacted")
	addRouteFlags(fl, &f.rf)
	base.AddSourceFlags(cmd, &f.sf, true)
	f.peer = addPeerFlags(cmd)
	return cmd
}

// config checks the flags and makes the proxy's configuration, all but
// its credentials, and the listener's TLS, so that a wrong flag is
// refused before the credential source is opened; every wrong flag is
// named at once (startup.go). needRegion says that nothing names the
// region yet: the credential source is to be asked.
func (f *proxyFlags) config(ctx context.Context) (cfg proxy.Config, tlsConfig *tls.Config, needRegion bool, err error) {
	var p problems
	f.checkServing(&p)
	cfg = proxy.Config{
		Upstream: f.upstream, SignHost: f.signHost, Service: f.service, Region: f.region,
		AllowedHosts: f.allowHosts, UpstreamServerName: f.serverName,
		ServeHosts:   append(slices.Clip(f.serveHosts), listenNames(f.listen, f.admin)...),
		AllowOrigins: f.allowOrigins,
		SignHeaders:  f.headerAllow, DropHeaders: f.headerDeny, SetHeaders: customHeaders(f.customHeaders, &p),
		UnsignedPayload: f.unsignedPayload,
		MaxBody:         noneIfZero(f.maxBody.N), MaxBuffer: noneIfZero(f.maxBuffer.N), MaxSpool: noneIfZero(f.maxSpool.N),
		SpoolDir:    f.spoolDir,
		MaxRequests: f.maxRequests, QueueTimeout: noneIfZero(f.queueTimeout), BodyIdleTimeout: noneIfZero(f.bodyIdleTimeout),
		MaxAttempts:  f.maxAttempts,
		MaxIdleConns: f.maxIdleConns, IdleConnTimeout: noneIfZero(f.idleConnTimeout), ResponseHeaderTimeout: f.responseHeaderTimeout,
		UpstreamTLSConfig: f.checkNoVerify(&p),
	}
	// The limits refused above are left to their defaults here, so that
	// they are not named twice.
	probe := cfg
	probe.MaxIdleConns, probe.MaxAttempts, probe.MaxRequests = max(probe.MaxIdleConns, 0), max(probe.MaxAttempts, 0), max(probe.MaxRequests, 0)
	needRegion = checkSigner(ctx, probe, &p)
	tlsConfig, tlsErr := f.tlsConfig()
	p.add(tlsErr)
	return cfg, tlsConfig, needRegion, p.err()
}

// checkLimits checks the flags that the library's Config does not hold,
// or holds with other zeros.
func (f *proxyFlags) checkLimits(p *problems) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		p.add(base.UsageErrorf("--tls-cert and --tls-key go together"))
	}
	if f.maxIdleConns < 1 {
		p.add(base.UsageErrorf("--max-idle-conns must be at least 1"))
	}
	if f.maxAttempts < 1 {
		p.add(base.UsageErrorf("--max-attempts must be at least 1"))
	}
	if f.maxConns < 1 || f.maxRequests < 1 {
		p.add(base.UsageErrorf("--max-conns and --max-requests must be at least 1"))
	}
	switch {
	case f.maxHeaders.N < 1<<10:
		p.add(base.UsageErrorf("--max-headers %s is under 1KiB: no client's request would fit", f.maxHeaders.Raw))
	case f.maxHeaders.N > 1<<30:
		p.add(base.UsageErrorf("--max-headers %s is over 1GiB", f.maxHeaders.Raw))
	}
	if f.queueTimeout < 0 || f.bodyIdleTimeout < 0 {
		p.add(base.UsageErrorf("--queue-timeout and --body-idle-timeout must not be negative"))
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		p.add(base.UsageErrorf("--log-format %q: want text or json", f.logFormat))
	}
	if _, ok := accessLevels[f.accessLog]; !ok && f.accessLog != "off" {
		p.add(base.UsageErrorf("--access-log %q: want info, debug or off", f.accessLog))
	}
}

// accessLevels are --access-log's levels, but off.
var accessLevels = map[string]slog.Level{"info": slog.LevelInfo, "debug": slog.LevelDebug}

// noneIfZero is a flag's 0, which means none, as the library's Config
// says none: negative (its zero is the default).
func noneIfZero[T ~int64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// listenNames are the hosts of listen addresses that are names (an IP
// address is always answered to), for the Host rule.
func listenNames(addrs ...string) []string {
	var names []string
	for _, a := range addrs {
		h, _, err := net.SplitHostPort(a)
		if _, ipErr := netip.ParseAddr(h); err == nil && h != "" && ipErr != nil {
			names = append(names, h)
		}
	}
	return names
}

// The risks of the proxy's listeners, for checkListen's refusals.
const (
	listenRisk = "whoever reaches it makes requests as the role"
	adminRisk  = "whoever reaches it reads the proxy's metrics and state"
)

// tlsConfig is the listener's TLS, from --tls-cert and --tls-key, or nil.
func (f *proxyFlags) tlsConfig() (*tls.Config, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, base.UsageErrorf("--tls-cert, --tls-key: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// newLogger returns the proxy's log, on w, and the buffer that batches
// its access log: Flush it before the process ends.
func newLogger(w io.Writer, format string, verbose bool) (*slog.Logger, *logBuffer) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if verbose {
		opts.Level = slog.LevelDebug
	}
	b := newLogBuffer(w, accessLogDelay)
	if format == "json" {
		return slog.New(accessHandler{batched: slog.NewJSONHandler(b, opts), direct: slog.NewJSONHandler(b.direct(), opts)}), b
	}
	batched := textAccess{b: b, slow: slog.NewTextHandler(b, opts)}
	return slog.New(accessHandler{batched: batched, direct: slog.NewTextHandler(b.direct(), opts)}), b
}

// run serves the proxy until ctx ends.
func (f *proxyFlags) run(ctx context.Context) error {
	if f.rf.given() {
		return f.runRoutes(ctx)
	}
	cfg, tlsConfig, needRegion, err := f.config(ctx)
	if err != nil {
		return err
	}
	log, done := f.startProcess()
	defer done()
	src, err := f.sf.Open(ctx, f.App, f.region, needRegion)
	if err != nil {
		return err
	}
	defer src.Close()
	if needRegion {
		if src.Region == "" {
			return &base.ExitError{Code: base.ExitRefused, Err: fmt.Errorf("kivuli: --upstream %s: %q names no region, nor do --region, AWS_REGION or the credential source (IMDS's placement/region, the profile): set --region", redactedURL(cfg.Upstream), signedHost(cfg))}
		}
		cfg.Region = src.Region
	}
	s, err := newProxyServer(ctx, cfg, src.Creds, log)
	if err != nil {
		return err
	}
	defer s.close()
	if cfg.UpstreamTLSConfig != nil && cfg.UpstreamTLSConfig.InsecureSkipVerify {
		s.noVerify = true
		log.Warn("kivuli proxy: --no-verify-ssl: the upstream's TLS certificate is NOT verified: whoever answers for it gets requests signed as the role", "upstream", redactedURL(cfg.Upstream))
	}
	f.dress(s)
	return s.serve(ctx, f, tlsConfig)
}

// startProcess makes the process's log, sets its soft memory limit
// (unless GOMEMLIMIT does) and its GC percent (unless GOGC does), and
// starts its processor governor (unless GOMAXPROCS is set: procs.go);
// done flushes the log and puts all three back.
func (f *proxyFlags) startProcess() (log *slog.Logger, done func()) {
	log, logs := newLogger(f.Stderr, f.logFormat, f.verbose)
	var restore []func()
	if f.Env.Get("GOMEMLIMIT") == "" {
		prev := debug.SetMemoryLimit(f.memoryBound() - nonGoMemory)
		restore = append(restore, func() { debug.SetMemoryLimit(prev) })
	}
	if f.Env.Get("GOGC") == "" {
		prev := debug.SetGCPercent(gcPercent)
		restore = append(restore, func() { debug.SetGCPercent(prev) })
	}
	if f.Env.Get("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1 {
		ticks := time.NewTicker(procsWindow)
		f.procs = newProcGovernor(ticks.C, setRuntimeProcs)
		restore = append(restore, func() { f.procs.close(); ticks.Stop() })
	}
	return log, func() {
		for _, r := range restore {
			r()
		}
		logs.Flush()
	}
}

// gcPercent is kivuli proxy's GOGC. Its live heap is a few MiB, so at the
// default of 100 the runtime collects every 4 MiB allocated: on small GETs
// at one client, 13 collections a second, each slowing the requests it
// overlaps (1.3% of them: the p99). At 400 it collects every 16 MiB, four
// times less often: p99 0.80-0.86x and CPU per request 0.95x in
// benchmarks/run-proxy.sh, for up to 12 MiB more resident memory (a 1 GiB
// upload 30 MiB instead of 18; TestProxyMemoryUnderAttack's lighter attack
// 32 instead of 23). The soft memory limit, set from the limits, still
// bounds the heap under load.
const gcPercent = 400

// dress applies to a server, of one upstream or of routes, the flags of
// its log: the access log's level, --log-failed-requests.
func (f *proxyFlags) dress(s *proxyServer) {
	s.obs.access, s.obs.accessOff = accessLevels[f.accessLog], f.accessLog == "off"
	if f.logFailedRequests || f.verbose {
		s.handler = s.logFailed(s.handler)
	}
}
