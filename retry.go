package kivuli

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryingTransport is an [http.RoundTripper] that sends requests through a
// signing [Transport] and retries them. Every attempt is signed afresh, from
// a rewound body. It retries 5xx (but 501), 429 and AWS throttling errors,
// and broken connections, with jittered, capped backoff; an answer that the
// token has expired is retried once at once with refreshed credentials, and
// an answer that the clock is skewed is retried once at once with the clock
// corrected. Make one with [NewRetryingTransport].
//
// A body with GetBody is rewound with it; a body that can be read only once
// is buffered (up to the Transport's MaxBufferedBody) so that it can be
// sent again, or else sent once without retries.
type RetryingTransport struct {
	transport *Transport
	hc        *http.Client // sends each attempt through transport
	opts      RetryOptions // normalised
}

// RetryOptions are the knobs of [NewRetryingTransport] and
// [NewRetryingClient].
type RetryOptions struct {
	// MaxAttempts bounds the attempts made for a request, the first one
	// included. Default 3; less than 1 means 1.
	MaxAttempts int
	// MinWait and MaxWait bound the waits between attempts, which double
	// from MinWait, jittered, up to MaxWait; a Retry-After header is
	// honoured up to MaxWait. Defaults 100 ms and 5 s.
	MinWait, MaxWait time.Duration
}

// NewRetryingClient returns an [http.Client] that signs with t and retries
// as [RetryingTransport] describes, as oauth2.NewClient returns one that
// authorises. It follows redirects as [CheckRedirect] allows: to the host
// signed for, or S3's region redirects of one bucket.
func NewRetryingClient(t *Transport, optFns ...func(*RetryOptions)) *http.Client {
	return &http.Client{Transport: NewRetryingTransport(t, optFns...), CheckRedirect: CheckRedirect}
}

// NewRetryingTransport returns a [RetryingTransport] over t, configured by
// optFns:
//
//	rt := kivuli.NewRetryingTransport(t, func(o *kivuli.RetryOptions) { o.MaxAttempts = 5 })
func NewRetryingTransport(t *Transport, optFns ...func(*RetryOptions)) *RetryingTransport {
	o := RetryOptions{MaxAttempts: 3, MinWait: 100 * time.Millisecond, MaxWait: 5 * time.Second}
	for _, f := range optFns {
		f(&o)
	}
	o.MaxAttempts = max(o.MaxAttempts, 1)
	o.MinWait = max(o.MinWait, 0)
	o.MaxWait = max(o.MaxWait, o.MinWait)
	return &RetryingTransport{
		transport: t,
		hc: &http.Client{
			Transport: t,
			// Redirects are the outer client's business.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		opts: o,
	}
}

// retryClient returns the retrying client of one RoundTrip: its policy
// keeps what that request's attempts have been answered.
func (rt *RetryingTransport) retryClient() *retryablehttp.Client {
	policy := &awsRetry{}
	return &retryablehttp.Client{
		HTTPClient:   rt.hc,
		RetryMax:     rt.opts.MaxAttempts - 1,
		RetryWaitMin: rt.opts.MinWait,
		RetryWaitMax: rt.opts.MaxWait,
		CheckRetry:   policy.check,
		Backoff:      policy.backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// RoundTrip sends req through the Transport, retrying as
// [RetryingTransport] says. resp.Request is req.
func (rt *RetryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt == nil || rt.transport == nil || rt.hc == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrNoCredentials
	}
	if req.URL == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, invalidRequest("nil URL", nil)
	}
	// A shallow copy, whose Body each attempt sets: nothing on the way
	// changes its header map or URL in place (net/http's Client copies a
	// request before it changes one, and the Transport signs a clone), so
	// Clone's copies of them were work for nothing.
	out := *req
	r := &retryablehttp.Request{Request: &out}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil:
		// Every attempt reads from GetBody: the original body is not needed.
		req.Body.Close()
		if err := r.SetBody(fromGetBody(req)); err != nil {
			return nil, err
		}
		r.ContentLength = req.ContentLength
	default:
		limit := rt.transport.bufferLimit()
		if limit < 0 || req.ContentLength > limit {
			return rt.transport.RoundTrip(req) // cannot be rewound: one attempt
		}
		buf, closed, err := readLimited(req.Context(), req.Body, limit)
		if int64(len(buf)) > limit && err == nil {
			// Too large to keep: send what was read and the rest, once.
			r.Request.Body = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
			return rt.transport.RoundTrip(r.Request)
		}
		if !closed {
			req.Body.Close()
		}
		if err != nil {
			return nil, invalidRequest("reading the body", err)
		}
		if err := r.SetBody(buf); err != nil {
			return nil, err
		}
	}
	resp, err := rt.retryClient().Do(r)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}

// fromGetBody returns the body of each attempt: a fresh copy from
// req.GetBody, whose failures are the caller's to fix.
func fromGetBody(req *http.Request) retryablehttp.ReaderFunc {
	return func() (io.Reader, error) {
		body, err := req.GetBody()
		switch {
		case err != nil:
			return nil, invalidRequest("GetBody failed", err)
		case body == nil:
			return nil, invalidRequest("GetBody returned a nil body", nil)
		}
		return body, nil
	}
}

// readCloser reads from one reader and closes another: the body of a
// request whose start was read ahead.
type readCloser struct {
	io.Reader
	io.Closer
}
