package kivuli

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// jitteredBackoff waits a random time between half and all of
// min(max, min·2^attempt), or what a 429 or 503 answer's Retry-After asks,
// capped at max. It is the wait between the attempts of IMDS requests and,
// but for the immediate retries of retrypolicy.go, of a RetryingTransport's.
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
