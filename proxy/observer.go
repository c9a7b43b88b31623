package proxy

import (
	"net/http"
	"time"
)

// Observer watches a [Proxy]'s requests, for metrics and an access log. Its
// methods are called on the requests' goroutines, concurrently: they must
// be quick, and keep neither the request nor anything in it after they
// return. Nothing they are given holds a credential or a signature; the
// client's own query may (a presigned URL's): [kivuli.RedactQuery] hides
// it.
type Observer interface {
	// Attempted is called after each attempt to send r (the client's
	// request) upstream, retries included: the status of the upstream's
	// answer, or the error of an attempt that got none (status 0), and the
	// time to the answer's headers.
	Attempted(r *http.Request, status int, err error, d time.Duration)
	// Done is called once r has been answered, or its client has gone,
	// with what happened. Every request gets one call, refused or not.
	Done(r *http.Request, x Exchange)
}

// Exchange is what happened to one request, as [Observer.Done] is told.
type Exchange struct {
	// Status is the answer's status code; 499 (never sent, as nginx logs
	// it) when the client went away first.
	Status int
	// Body is how the request's body was sent: "none", "buffered" (in
	// memory), "spooled" (to a file) or "streamed" (UNSIGNED-PAYLOAD).
	Body string
	// BytesIn and BytesOut are the bytes of the request's body received
	// and of the answer's body written.
	BytesIn, BytesOut int64
	// Attempts is the number of times it was sent upstream (0 when it was
	// not).
	Attempts int
	// Duration is the time from its arrival to the end of its answer.
	Duration time.Duration
	// Err is why the proxy answered it itself, or nil when the upstream
	// answered.
	Err *RequestError
	// Route is the name of the [Router]'s route that served it: "" for a
	// Proxy of its own, and for a request the Router refused before
	// choosing a route ([RouteOf] tells [Observer.Attempted] the same).
	Route string
}

// RequestError is the answer the proxy gives itself to a request it does
// not forward, or cannot: refused by a rule or a limit, not signed, or
// failed upstream. Msg names the Config fields involved (Config.MaxBody);
// [Config.ErrorHandler] may word it otherwise.
type RequestError struct {
	// Status is the answer's status code; 499 when the client went away
	// (nothing is sent).
	Status int
	// Stage is the part of the proxy that refused the request, and Reason
	// why, short labels for metrics:
	//
	//	"guard"   "host" (a Host it does not answer to), "origin" (a web page of another origin)
	//	"route"   a [Router]'s: "no_route" (404), "path" (400: a path read as
	//	          another route's, or that climbs out of its route's prefix)
	//	"limit"   "max_requests" (503), "max_spool" (503 or 413), "body_idle_timeout" (408)
	//	"signer"  "body_too_large", "host_not_allowed", "plaintext", "unknown_scope",
	//	          "bad_request" (a request it cannot sign as it is), "credentials" (none to sign with)
	//
	// Both are "" for the rest: a request the proxy does not forward (a
	// loop, CONNECT, a path above the upstream's, an aws-chunked body, a
	// body over MaxBody or that failed to arrive), an upstream that failed
	// (502, or 504 when it timed out), a client that went away.
	Stage, Reason string
	// Msg says what happened, for the client and a log. It holds no
	// secret.
	Msg string

	retryAfter string // seconds, for the Retry-After header
}

// Error returns Msg.
func (e *RequestError) Error() string { return e.Msg }

// Stats are a [Proxy]'s gauges, read at once.
type Stats struct {
	// InFlight is the requests being served, or waiting for their turn.
	InFlight int64
	// Queued is the requests waiting for their turn (Config.MaxRequests).
	Queued int64
	// BodyMemory is the bytes of request bodies held in memory now, and
	// BodyMemoryPeak the most held at once.
	BodyMemory, BodyMemoryPeak int64
	// Spool is the bytes of request bodies spooled to disk now, and
	// SpoolPeak the most spooled at once.
	Spool, SpoolPeak int64
}
