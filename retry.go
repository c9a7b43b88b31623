package kivuli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryingTransport is an [http.RoundTripper] that sends requests through a
// signing [Transport] and retries them with go-retryablehttp. Every attempt
// is signed afresh, from a rewound body. It retries 5xx (but 501), 429 and
// AWS throttling errors, and broken connections, with jittered, capped
// backoff; an answer that the token has expired is retried once at once
// with refreshed credentials, and an answer that the clock is skewed is
// retried once at once with the clock corrected.
//
// A body with GetBody is rewound with it; a body that can be read only once
// is buffered (up to the Transport's MaxBufferedBody) so that it can be
// sent again, or else sent once without retries.
type RetryingTransport struct {
	// Client does the retrying; its HTTPClient sends through the signing
	// Transport. Its RetryMax, RetryWaitMin and RetryWaitMax may be changed
	// before first use.
	Client *retryablehttp.Client

	signer *Transport
}

// NewRetryingClient returns an [http.Client] that signs with t and retries
// as [RetryingTransport] describes.
func NewRetryingClient(t *Transport) *http.Client {
	return &http.Client{Transport: NewRetryingTransport(t)}
}

// NewRetryingTransport returns a [RetryingTransport] over t that makes at
// most 3 attempts, waiting between 100 ms and 5 s.
func NewRetryingTransport(t *Transport) *RetryingTransport {
	return &RetryingTransport{
		signer: t,
		Client: &retryablehttp.Client{
			HTTPClient: &http.Client{
				Transport: t,
				// Redirects are the outer client's business.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			},
			RetryMax:     2,
			RetryWaitMin: 100 * time.Millisecond,
			RetryWaitMax: 5 * time.Second,
			CheckRetry:   checkAWSRetry,
			Backoff:      awsBackoff,
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		},
	}
}

// RoundTrip sends req, retrying as described on [RetryingTransport].
func (rt *RetryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt == nil || rt.signer == nil || rt.Client == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrNoCredentials
	}
	st := &attemptState{}
	ctx := context.WithValue(req.Context(), attemptKey{}, st)
	r := &retryablehttp.Request{Request: req.Clone(ctx)}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil:
		// Every attempt reads from GetBody: the original body is not needed.
		req.Body.Close()
		if err := r.SetBody(retryablehttp.ReaderFunc(func() (io.Reader, error) {
			body, err := req.GetBody()
			switch {
			case err != nil:
				return nil, invalidRequest("GetBody failed", err)
			case body == nil:
				return nil, invalidRequest("GetBody returned a nil body", nil)
			}
			return body, nil
		})); err != nil {
			return nil, err
		}
		r.ContentLength = req.ContentLength
	default:
		limit := rt.signer.bufferLimit()
		if limit < 0 || req.ContentLength > limit {
			return rt.signer.RoundTrip(req) // cannot be rewound: one attempt
		}
		buf, closed, err := readLimited(req.Context(), req.Body, limit)
		if int64(len(buf)) > limit && err == nil {
			// Too large to keep: send what was read and the rest, once.
			r.Request.Body = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
			return rt.signer.RoundTrip(r.Request)
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
	resp, err := rt.Client.Do(r)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
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

func checkAWSRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if permanent(err) {
			return false, err
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	st, _ := ctx.Value(attemptKey{}).(*attemptState)
	if st != nil {
		peekAnswer(resp)
		st.mu.Lock()
		defer st.mu.Unlock()
		again := st.expiredToken && !st.retriedToken || st.skewed && !st.retriedSkew
		st.retriedToken = st.retriedToken || st.expiredToken
		st.retriedSkew = st.retriedSkew || st.skewed
		throttled := st.throttled
		st.expiredToken, st.skewed, st.throttled = false, false, false
		if again {
			st.immediate = true
			return true, nil
		}
		if throttled {
			return true, nil
		}
	}
	return resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented, nil
}

// awsBackoff retries at once after a refresh or a clock correction, and
// otherwise waits as jitteredBackoff does.
func awsBackoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		if st, _ := resp.Request.Context().Value(attemptKey{}).(*attemptState); st != nil {
			st.mu.Lock()
			immediate := st.immediate
			st.immediate = false
			st.mu.Unlock()
			if immediate {
				return 0
			}
		}
	}
	return jitteredBackoff(minWait, maxWait, attempt, resp)
}

type readCloser struct {
	io.Reader
	io.Closer
}
