package kivuli

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// What an error answer says matters to the Transport and to the retrying
// client: that the token has expired (refresh the credentials), that the
// clock is skewed (correct it), or that the service throttles (back off).
// The code is in the X-Amzn-ErrorType header of JSON protocols, or else in
// the body, which may arrive long after the headers. So RoundTrip never
// reads the body: it acts on the header at once, and on the body as the
// caller reads it (the retrying client, which reads it anyway, reads its
// first part before deciding whether to retry).

// peekMax bounds the part of an error body searched for a code.
const peekMax = 16 << 10

// maxSkewCorrection bounds a clock correction. Clocks that drift, or come
// back from a suspended VM, are off by minutes, rarely hours; a Date a day
// or more away from the local clock is a wrong header, not a wrong clock (a
// host whose clock fell back to 1970 or 2000 fails TLS validation before an
// AWS answer can arrive). A wrong correction within the bound is undone by
// AWS's next RequestTimeTooSkewed answer, which carries AWS's own time.
const maxSkewCorrection = 24 * time.Hour

var (
	expiredTokenCodes = []string{"ExpiredToken", "TokenRefreshRequired", "security token included in the request is expired"}
	skewCodes         = []string{"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture", "Signature expired", "Signature not yet current"}
	// throttleCodes are the AWS error codes that the SDKs retry as
	// throttling.
	throttleCodes = []string{
		"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
		"TooManyRequestsException", "ProvisionedThroughputExceededException",
		"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
		"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
		"EC2ThrottledException",
	}
)

// attemptState is shared, through the request context, between the
// retrying client and Transport: what the answer to one attempt was.
type attemptState struct {
	mu           sync.Mutex // the answer may be classified while its body is read
	expiredToken bool       // the answer said the token has expired
	skewed       bool       // the answer said the clock is skewed
	throttled    bool       // the answer was a throttling error
	retriedToken bool
	retriedSkew  bool
	immediate    bool // retry without waiting
}

type attemptKey struct{}

// answer is an error answer still to classify.
type answer struct {
	t       *Transport
	ctx     context.Context
	used    aws.Credentials // the credentials the request was signed with
	fromAWS bool            // it comes from an AWS endpoint
	host    string
	date    string // its Date header
	st      *attemptState
}

// watch classifies an error answer by its X-Amzn-ErrorType header now, or
// else by its body as the caller reads it.
func (t *Transport) watch(ctx context.Context, resp *http.Response, used aws.Credentials, rt route) {
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		return
	}
	st, _ := ctx.Value(attemptKey{}).(*attemptState)
	a := &answer{t: t, ctx: ctx, used: used, fromAWS: rt.fromAWS, host: rt.dial, date: resp.Header.Get("Date"), st: st}
	if a.classify(resp.Header.Get("X-Amzn-Errortype")) || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	resp.Body = &sniffer{rc: resp.Body, a: a}
}

// classify acts on what text says, reporting whether it said anything.
func (a *answer) classify(text string) bool {
	var flag *bool
	switch {
	case text == "":
		return false
	case containsAny(text, expiredTokenCodes):
		a.t.invalidate(a.used)
		if a.st != nil {
			flag = &a.st.expiredToken
		}
	case containsAny(text, throttleCodes):
		if a.st != nil {
			flag = &a.st.throttled
		}
	case containsAny(text, skewCodes):
		if a.t.correctClock(a.ctx, a.fromAWS, a.host, a.date) && a.st != nil {
			flag = &a.st.skewed
		}
	default:
		return false
	}
	if flag != nil {
		a.st.mu.Lock()
		*flag = true
		a.st.mu.Unlock()
	}
	return true
}

// invalidate invalidates the credentials used for a request the service
// answered with an expired token, unless they have been replaced since.
// It does not block: *Credentials tells its current set without waiting
// for a refresh.
func (t *Transport) invalidate(used aws.Credentials) {
	same := func(v aws.Credentials) bool {
		return v.AccessKeyID == used.AccessKeyID && v.SessionToken == used.SessionToken
	}
	switch c := t.Credentials.(type) {
	case *Credentials:
		if s := c.current(); s != nil && same(s.creds) {
			c.Invalidate()
		}
	case interface{ Invalidate() }:
		if cur, err := t.Credentials.Retrieve(context.Background()); err == nil && same(cur) {
			c.Invalidate()
		}
	}
}

// correctClock sets the transport's clock offset from the Date of a
// clock-skew answer, reporting whether it did. Only AWS endpoints' answers
// count (an allowed host of the user's could set the clock of every later
// request), within maxSkewCorrection; each change is logged once.
func (t *Transport) correctClock(ctx context.Context, fromAWS bool, host, dateHeader string) bool {
	date, err := http.ParseTime(dateHeader)
	if !fromAWS || err != nil {
		return false
	}
	offset := time.Until(date).Round(time.Second)
	if offset > maxSkewCorrection || offset < -maxSkewCorrection {
		if t.Logger != nil && time.Duration(t.refused.Swap(int64(offset))) != offset {
			t.Logger.WarnContext(ctx, "kivuli: ignoring a clock correction beyond the bound",
				"host", host, "offset", offset, "bound", maxSkewCorrection)
		}
		return false
	}
	if prev := time.Duration(t.skew.Swap(int64(offset))); prev != offset && t.Logger != nil {
		t.Logger.WarnContext(ctx, "kivuli: the service says the local clock is off; correcting the signing time",
			"host", host, "offset", offset, "previous_offset", prev)
	}
	return true
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// sniffer is the body of an error answer: it gives the caller the body
// unchanged, and classifies its first peekMax bytes once they have been
// read, or the body ends or is closed.
type sniffer struct {
	rc io.ReadCloser

	mu      sync.Mutex // guards the fields below; never held while reading rc
	seen    []byte     // the first bytes read, up to peekMax
	a       *answer    // nil once classified
	pending []byte     // read ahead by peek, not yet given to the caller
	err     error      // the error that ended peek's read, after pending
}

func (s *sniffer) Read(p []byte) (int, error) {
	s.mu.Lock()
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		s.mu.Unlock()
		return n, nil
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return 0, err
	}
	s.mu.Unlock()
	n, err := s.rc.Read(p)
	s.mu.Lock()
	a := s.observeLocked(p[:n], err)
	s.mu.Unlock()
	if a != nil {
		a.classify(string(s.seen))
	}
	return n, err
}

// observeLocked records b, read from rc with err, and returns the answer
// to classify when the time has come (the caller then classifies seen,
// which no longer changes). s.mu is held.
func (s *sniffer) observeLocked(b []byte, err error) *answer {
	if s.a == nil {
		return nil
	}
	if room := peekMax - len(s.seen); room > 0 {
		s.seen = append(s.seen, b[:min(len(b), room)]...)
	}
	if err == nil && len(s.seen) < peekMax {
		return nil
	}
	a := s.a
	s.a = nil
	return a
}

// peek reads the first peekMax bytes of the body, or up to its end, and
// classifies them; the caller still reads the whole body.
func (s *sniffer) peek() {
	buf := make([]byte, 4<<10)
	for {
		s.mu.Lock()
		done := s.a == nil || s.err != nil
		s.mu.Unlock()
		if done {
			return
		}
		n, err := s.rc.Read(buf)
		s.mu.Lock()
		s.pending = append(s.pending, buf[:n]...)
		if err != nil {
			s.err = err
		}
		a := s.observeLocked(buf[:n], err)
		s.mu.Unlock()
		if a != nil {
			a.classify(string(s.seen))
		}
	}
}

func (s *sniffer) Close() error {
	s.mu.Lock()
	a := s.a
	s.a = nil
	s.mu.Unlock()
	if a != nil {
		a.classify(string(s.seen))
	}
	return s.rc.Close()
}

// peekAnswer makes an error answer's classification complete before the
// retrying client decides, reading the start of its body if need be.
func peekAnswer(resp *http.Response) {
	if s, ok := resp.Body.(*sniffer); ok {
		s.peek()
	}
}
