package kivuli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
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
	client    *retryablehttp.Client // retries, sending through transport
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
		client: &retryablehttp.Client{
			HTTPClient: &http.Client{
				Transport: t,
				// Redirects are the outer client's business.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			RetryMax:     o.MaxAttempts - 1,
			RetryWaitMin: o.MinWait,
			RetryWaitMax: o.MaxWait,
			CheckRetry:   checkAWSRetry,
			Backoff:      awsBackoff,
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		},
	}
}

// RoundTrip sends req through the Transport, retrying as
// [RetryingTransport] says. resp.Request is req.
func (rt *RetryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt == nil || rt.transport == nil || rt.client == nil {
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
	st := &attemptState{}
	ctx := context.WithValue(req.Context(), attemptKey{}, st)
	r := &retryablehttp.Request{Request: req.Clone(ctx)}
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
	resp, err := rt.client.Do(r)
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

// permanent reports errors of the signing layer that no retry can mend.
func permanent(err error) bool {
	for _, kind := range []error{ErrHostNotAllowed, ErrPlaintext, ErrUnknownScope, ErrBodyTooLarge, ErrNoCredentials, ErrInvalidRequest, ErrInvalidConfig} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

type readCloser struct {
	io.Reader
	io.Closer
}

// retryableStatus reports the statuses worth another attempt: 429 and 5xx,
// but 501, which no retry mends.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code != http.StatusNotImplemented
}

// jitteredBackoff waits a random time between half and all of
// min(max, min·2^attempt), or what a 429 or 503 answer's Retry-After asks,
// capped at max.
func jitteredBackoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, maxWait)
		}
	}
	d := maxWait
	if attempt < 30 {
		d = min(maxWait, minWait<<attempt)
	}
	return halfJitter(d)
}

// halfJitter returns a random duration between half of d and d: spread,
// so that clients failing together do not retry together, yet never much
// shorter than asked.
func halfJitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
