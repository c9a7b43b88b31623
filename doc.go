// Package kivuli signs the HTTP requests of a Go program running on AWS with
// the credentials of the instance's IAM role: it gets them from the EC2
// Instance Metadata Service (IMDS), keeps them fresh, and signs every request
// of an [http.Client] with Signature Version 4, putting the session token
// where each service wants it.
//
//	creds, err := kivuli.New(ctx) // the instance role's credentials, kept fresh
//	if err != nil { ... }
//	defer creds.Close()
//	client := &http.Client{Transport: &kivuli.Transport{Credentials: creds}}
//	resp, err := client.Get("https://search-logs-abc.eu-west-2.es.amazonaws.com/logs-*/_search")
//
// # Three layers
//
// Credentials (credentials.go, imds.go, events.go, environment.go,
// region.go): [IMDS] reads the role's credentials from the instance
// metadata service, with the IMDSv2 session token, the IMDSv1 fallback and
// the no-token mode; [New] caches them in a [Credentials], refreshed in the
// background ahead of expiry, served from one atomic load, kept through
// IMDS failures while they are valid, with events on every refresh
// ([Credentials.Subscribe]) and, optionally, export to the AWS_*
// environment variables. A Credentials is an aws.CredentialsProvider, so it
// also serves aws-sdk-go-v2 clients; [WithProvider] caches any other
// provider the same way.
//
// Signing (transport.go, route.go, hosts.go, redirect.go, plaintext.go,
// scope.go, scope_sigv4a.go, endpoints_table.go, policy.go, body.go,
// signer.go, sigv4a.go, answer.go, redact.go):
// [Transport] is the http.RoundTripper. From a request's URL and Host it
// decides a route (route.go): where the request may go (hosts.go; a
// redirect only where the redirecting request went, redirect.go; in clear
// only where no proxy reads it, plaintext.go), the signing service and
// region (scope.go, from AWS's own endpoint data in endpoints_table.go),
// and the per-service [Policy] (policy.go: token placement, payload hash,
// path escaping, presigning). It hashes the body without holding it in
// memory where it can (body.go), signs a clone of each request with
// aws-sdk-go-v2's SigV4 signer (signer.go), or, for the hosts that take
// SigV4a only (scope_sigv4a.go), with smithy-go's SigV4a signer given a
// request kivuli canonicalised (sigv4a.go), and reads error answers for
// expired tokens and skewed clocks without waiting for their bodies
// (answer.go). What it shows of a request (the debug log) is redacted by
// the rules that [RedactQuery] and [RedactHeader] offer a program's own
// logs (redact.go).
//
// Retries (retry.go, retrypolicy.go, backoff.go): [NewRetryingClient] and
// [NewRetryingTransport] retry throttled and failed requests, each attempt
// signed afresh from a rewound body, and retry once at once after an
// expired token or a skewed clock. Which answers are worth another attempt,
// for these and for IMDS's requests, is retrypolicy.go's; how long to wait,
// backoff.go's.
//
// # Three ways to configure
//
// Each is kept for what it suits, and for what programs already write:
//
//   - A struct literal, for a value that does its work when used, each
//     field's zero value a default: [Transport] (an [http.RoundTripper], as
//     http.Transport and oauth2.Transport are), [Policy], imdstest.Config.
//     Its fields are the documentation, and a program reads back what it
//     set.
//   - Options, New(ctx, opts...) and NewIMDS(opts...), for constructors
//     that act at once (read the environment, fetch, start a refresh) and
//     keep their settings private: an [Option] sets unexported state, so a
//     setting can be added, or validated against the others, without a
//     struct field that callers could change later; one Option serves both
//     functions.
//   - Functions that edit an exported struct of defaults,
//     NewRetryingTransport(t, func(*RetryOptions)), as aws-sdk-go-v2's
//     retry.NewStandard does: for a few numeric knobs, each with a default
//     that the caller's function sees, and may change, in place.
//
// # Errors
//
// Two errors say that a program is not where kivuli can help it, and are
// worth testing for at start-up: [ErrNotOnEC2] (nothing answers at the
// instance metadata endpoint: not on EC2, or blocked; New fails in about a
// second) and [ErrNoRole] (the instance has no IAM role). Every error
// kivuli makes is an [*Error] whose Kind is one of the package's sentinel
// errors, such as [ErrHostNotAllowed] for a request the Transport would not
// send; test with [errors.Is]. Answers of others keep their own types:
// [*IMDSError], [*CredentialsError].
//
// # Where signed requests may go
//
// A request is signed only when the host it is sent to (URL.Host) and the
// host it is signed for (Request.Host when set, else URL.Host) are both AWS
// endpoints or listed in [Transport.AllowedHosts]; hosts that customers run
// inside AWS domains (EC2 instances' public names, load balancers,
// PrivateLink endpoint services, ...) and IP literals are not AWS
// endpoints. A custom domain in front of a service is listed, and its
// Service and Region set, since its name tells neither. A tunnel (an SSH
// port forward to an OpenSearch domain, say) is a listed URL.Host with the
// service's AWS name in Request.Host, which decides the scope. Requests in
// clear (http://) go only to listed or loopback hosts.
//
// # Testing
//
// Package [github.com/kivuli-go/kivuli/imdstest] is an IMDS emulator in
// the style of net/http/httptest, with rotation and fault injection, and
// package [github.com/kivuli-go/kivuli/sigv4test] an independent SigV4 and
// SigV4a checker and a loopback endpoint that verifies every request it receives.
// Together they run a program's signing path offline; this package's own
// tests are built on them.
//
// # A signing proxy
//
// Package [github.com/kivuli-go/kivuli/proxy] is a signing reverse proxy
// as an [http.Handler], over this package's Transport: programs that
// cannot sign talk plain HTTP to it, and it forwards each request to one
// fixed upstream, signed. The kivuli command's "kivuli proxy" serves it.
package kivuli
