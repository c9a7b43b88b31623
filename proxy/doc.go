// Package proxy is a signing reverse proxy as an [http.Handler]: every
// request it serves goes to one fixed upstream, signed with SigV4 by a
// [kivuli.Transport], so that programs that cannot sign (OpenSearch
// Dashboards, Grafana, Prometheus agents, scripts, browsers' pages of an
// allowed origin) talk to an AWS service as to a plain HTTP server. It is
// the handler of the kivuli command's "kivuli proxy", which adds flags,
// listeners, TLS, draining, health and metrics endpoints, and a log.
//
//	creds, err := kivuli.New(ctx) // the instance role's credentials, kept fresh
//	if err != nil { ... }
//	p, err := proxy.New(ctx, proxy.Config{
//		Upstream:    "https://search-logs-abc.eu-west-2.es.amazonaws.com",
//		Credentials: creds,
//	})
//	if err != nil { ... }
//	defer p.Close()
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: p, ReadHeaderTimeout: 10 * time.Second}
//
// A [Router] serves several upstreams from one handler, each a route the
// operator names: selected by the request's Host (es.localhost) or by a
// path prefix (/aps/, removed before signing), each with a Config of its
// own (scope, header rules, body limits, credentials), all sharing one
// request, memory and spool budget. A request that matches no route gets
// 404; nothing is signed or sent.
//
// Whoever reaches the handler makes requests as the credentials' role:
// serve it on loopback, or behind authentication (see the examples).
//
// # What a request meets
//
// In order, before anything is signed or sent:
//
//   - The Host and origin rules (guard): a Host that is not an IP address,
//     localhost or a name of [Config.ServeHosts] gets 421 (a web page that
//     rebinds its DNS name to 127.0.0.1 sends its own name); a request a
//     browser sends from a page of another origin (an Origin other than the
//     proxy's own, a Sec-Fetch-Site other than same-origin or none) gets
//     403, unless [Config.AllowOrigins] names the origin. Programs that are
//     not browsers send neither header.
//   - The request's own shape: one that came through this proxy before
//     (its Via entry, so the upstream leads back) gets 508; CONNECT, "*"
//     and, but to S3, a body in aws-chunked framing are refused; with an
//     upstream path, a path that climbs above it ('..', plain or encoded,
//     in any reading a server on the way may make) gets 400.
//   - Its turn: at most [Config.MaxRequests] are served at once; the rest
//     wait up to [Config.QueueTimeout], then get 503 with Retry-After.
//   - Its body, in bounded memory (body.go): up to [Config.MaxBuffer] in
//     memory, [Config.MemoryBudget] for all requests together; larger ones,
//     or of unknown length, spooled to an unlinked temporary file in
//     [Config.SpoolDir] and hashed from it, [Config.MaxSpool] together;
//     none over [Config.MaxBody] (413). To S3, and with
//     [Config.UnsignedPayload], a larger body of known length streams as it
//     arrives: to S3 aws-chunked, with a CRC32 checksum in its trailer;
//     with UnsignedPayload signed UNSIGNED-PAYLOAD. An SDK's upload to S3 in
//     aws-chunked framing (its checksum in the trailer) is re-signed with
//     the role: through untouched to an https upstream, decoded and
//     re-encoded to one in clear, the client's checksum checked against
//     the bytes (awschunked.go). A body that sends nothing for
//     [Config.BodyIdleTimeout] is dropped with 408.
//
// Then it is forwarded by an [httputil.ReverseProxy] (the upstream fixed:
// the client's Host, absolute-form URI and X-Forwarded-Host never choose
// it) through a chain of transports (transport.go): the headers are split
// into those signed (Host, x-amz-*, Content-MD5, Content-Type and
// [Config.SignHeaders]) and those sent unsigned (hop-by-hop, forwarding,
// Accept-Encoding, tracing: what proxies on the way change; headers.go),
// the client's own signing headers dropped; then the library's retrying
// transport (a request that can be sent again, up to [Config.MaxAttempts])
// and its [kivuli.Transport] (the host rules, the scope, the policy
// table, the signature); then the unsigned headers and Via are added back
// and the request goes upstream. Nothing changes a header once it is
// signed. Answers stream back as they arrive: server-sent events, event
// streams, downloads. WebSocket handshakes are signed as the service
// wants them and the tunnel passed through.
//
// # What the server around it bounds
//
// The handler bounds what each request holds. What a connection holds is
// the [http.Server]'s: MaxHeaderBytes, ReadHeaderTimeout, IdleTimeout, the
// number of connections (a listener that accepts at most so many), HTTP/1.1
// only (an HTTP/2 connection carries many requests at once). Set no
// ReadTimeout or WriteTimeout: an upload, a download or an event stream
// lasts long; [Config.BodyIdleTimeout] bounds a stalled body instead.
// [Proxy.Shutdown], after http.Server.Shutdown, waits for the WebSocket
// tunnels that Server.Shutdown does not track.
//
// The process's runtime settings are the program's too. The kivuli proxy
// command, which serves this handler, sets GOGC to 400 (its live heap is
// a few MiB) and runs at GOMAXPROCS 1 while its requests come one at a
// time, and at the default as soon as two overlap: a lone request passes
// between goroutines several times, and with more processors each
// hand-off wakes another thread (a quarter of the CPU of a small GET).
//
// # Watching it
//
// The proxy logs nothing and counts nothing itself: an [Observer] is told
// of each attempt sent upstream and of each request once answered (its
// status, body mode, bytes, attempts, duration, and the [RequestError] of a
// request it answered itself), which is enough for metrics and an access
// log. [Proxy.Stats] reads the gauges: requests in flight and queued, body
// memory and spool. [Config.ErrorHandler] words the answers the proxy
// gives itself. [Config.Logger] receives the signer's debug records and
// net/http's copy errors. Nothing the proxy reports holds a credential, a
// token or a signature.
//
// # Errors
//
// [New] and [Config.Validate] return a [*kivuli.Error] of kind
// [kivuli.ErrInvalidConfig] that names the Config field (Config.MaxBody,
// ...), or the signer's own error for an upstream it refuses
// ([kivuli.ErrHostNotAllowed], [kivuli.ErrPlaintext],
// [kivuli.ErrUnknownScope]), or the credentials' error.
package proxy
