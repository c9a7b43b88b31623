package kivuli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// The retry policy: which failed attempts are worth another, for the
// requests of a RetryingTransport (awsRetry) and of an IMDS (operation).
// Both retry 5xx (but 501), 429 and broken connections; how long they wait
// is backoff.go's.

// retryableStatus reports the statuses worth another attempt: 429 and 5xx,
// but 501, which no retry mends.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code != http.StatusNotImplemented
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

// awsRetry is the policy of one RoundTrip of a [RetryingTransport], over
// all its attempts. Besides the retryable statuses it retries throttling
// errors; an answer that the token has expired (the Transport has
// refreshed the credentials) or that the clock is skewed (the Transport
// has corrected it) is retried once each, at once. What an answer said is
// the Transport's verdict, carried by the answer itself (answer.go).
type awsRetry struct {
	retriedToken bool // the immediate retry after an expired token is spent
	retriedSkew  bool // the immediate retry after a clock correction is spent
	immediate    bool // the next attempt goes without waiting
}

// check is the retrying client's CheckRetry.
func (r *awsRetry) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		if permanent(err) {
			return false, err
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	switch answerVerdict(resp) {
	case expiredToken:
		if !r.retriedToken {
			r.retriedToken, r.immediate = true, true
			return true, nil
		}
	case clockSkewed:
		if !r.retriedSkew {
			r.retriedSkew, r.immediate = true, true
			return true, nil
		}
	case throttled:
		return true, nil
	}
	return retryableStatus(resp.StatusCode), nil
}

// backoff is the retrying client's Backoff: at once after a refresh or a
// clock correction, else as jitteredBackoff.
func (r *awsRetry) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if r.immediate {
		r.immediate = false
		return 0
	}
	return jitteredBackoff(minWait, maxWait, attempt, resp)
}

// retryHookKey carries, in the context of an IMDS call, a function that IMDS
// calls each time an attempt has failed and is about to be retried: a sign
// that IMDS is misbehaving, on which [Credentials] stops holding callers
// that have valid credentials to use. It cannot be a parameter: it crosses
// aws.CredentialsProvider's Retrieve(ctx), the one call between Credentials
// and its source, which may be an IMDS given with [WithProvider] or a
// provider that wraps one.
type retryHookKey struct{}

// checkRetry is the CheckRetry of an IMDS call's client. It retries 5xx
// (but 501), 429 and broken connections. It does not retry a refused or
// timed-out dial, nor a timeout before anything has answered, nor a
// timed-out token PUT: those mean IMDS is not there (or drops the PUT's
// answer), and waiting longer only delays the answer.
func (op *operation) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	retry := op.retryable(resp, err)
	if retry && op.onRetry != nil {
		op.onRetry()
	}
	return retry, nil
}

func (op *operation) retryable(resp *http.Response, err error) bool {
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return false
		}
		if isTimeout(err) && (!op.answered || op.put) {
			return false
		}
		return true
	}
	op.answered = true
	return retryableStatus(resp.StatusCode)
}

// isTimeout reports a request that ran out of time: a net.Error that says
// so (a dial, a header or a client timeout), or an error that wraps
// context.DeadlineExceeded, as a transport of the caller's that wraps its
// errors reports one (net/http's url.Error then reports no timeout, and it
// is the first net.Error found).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
