package kivuli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
// first part before deciding whether to retry). The Transport's verdict
// travels with the answer, in its body (a sniffer), to the retry policy
// (answerVerdict): the answer is the one thing that passes from the
// Transport, through net/http's client, to the retrying client.

// peekMax bounds the part of an error body searched for a code.
const peekMax = 16 << 10

// maxSkewCorrection bounds a clock correction. Clocks that drift, or come
// back from a suspended VM, are off by minutes, rarely hours; a Date a day
// or more away from the local clock is a wrong header, not a wrong clock (a
// host whose clock fell back to 1970 or 2000 fails TLS validation before an
// AWS answer can arrive). A wrong correction within the bound is undone by
// AWS's next RequestTimeTooSkewed answer, which carries AWS's own time.
const maxSkewCorrection = 24 * time.Hour

// The codes acted on. They are matched where codes stand (the
// X-Amzn-ErrorType header, a JSON body's __type or code, an XML body's
// Code), never anywhere in the text, which may echo the caller's input;
// the messages below are matched in a body's message field only.
var (
	expiredTokenCodes = []string{"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"}
	// expiredTokenMessage is how OpenSearch Service and others say it,
	// under another code or none.
	expiredTokenMessage = "security token included in the request is expired"
	skewCodes           = []string{"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"}
	// skewMessages are InvalidSignatureException's when the clock is off.
	skewMessages = []string{"Signature expired", "Signature not yet current"}
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

// verdict is what an error answer said that the retry policy acts on.
type verdict uint8

const (
	noVerdict    verdict = iota
	expiredToken         // the token has expired: the credentials were invalidated
	clockSkewed          // the clock is skewed: the Transport corrected it
	throttled            // the service throttles
)

// answer is an error answer still to classify.
type answer struct {
	t       *Transport
	ctx     context.Context
	used    aws.Credentials // the credentials the request was signed with
	fromAWS bool            // it comes from an AWS endpoint
	host    string
	date    string // its Date header
}

// watch classifies an error answer by its headers now, or else by its
// body as the caller reads it.
func (t *Transport) watch(ctx context.Context, resp *http.Response, used aws.Credentials, rt route) {
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		return
	}
	a := &answer{t: t, ctx: ctx, used: used, fromAWS: rt.fromAWS, host: rt.dial, date: resp.Header.Get("Date")}
	if v, known := a.classify(headerCode(resp.Header), ""); known {
		if v != noVerdict {
			// Classified already: the body only carries the verdict.
			s := &sniffer{rc: http.NoBody, v: v}
			if resp.Body != nil {
				s.rc = resp.Body
			}
			resp.Body = s
		}
		return
	}
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &sniffer{rc: resp.Body, a: a}
	}
}

// headerCode returns the error code an answer's headers state: the JSON
// protocols' X-Amzn-ErrorType ("ExpiredTokenException:http://..."), or
// the Query protocol's X-Amzn-Query-Error ("Code;Sender").
func headerCode(h http.Header) string {
	if v := h.Get("X-Amzn-Errortype"); v != "" {
		code, _, _ := strings.Cut(v, ":")
		return code
	}
	code, _, _ := strings.Cut(h.Get("X-Amzn-Query-Error"), ";")
	return code
}

// bodyCode returns the error code and message an error body states: JSON
// ({"__type": ..., "message": ...}, or "code", any letter case, at any
// depth) or XML (<Code>...</Code>, <Message>...</Message>). The body may be
// cut short: what was read is used.
func bodyCode(b []byte) (code, message string) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '<' {
		return xmlElement(b, "Code"), xmlElement(b, "Message")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []json.Delim // the open objects and arrays
	var key string         // the key of the value read next, in an object
	expectKey := false     // the next string in the innermost object is a key
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		inObject := len(stack) > 0 && stack[len(stack)-1] == '{'
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, v)
				expectKey = v == '{'
				continue
			default:
				stack = stack[:max(len(stack)-1, 0)]
				inObject = len(stack) > 0 && stack[len(stack)-1] == '{'
			}
		case string:
			if inObject && expectKey {
				key, expectKey = v, false
				continue
			}
			switch {
			case !inObject:
			case code == "" && (strings.EqualFold(key, "__type") || strings.EqualFold(key, "code")):
				code = v
			case message == "" && strings.EqualFold(key, "message"):
				message = v
			}
		}
		expectKey = inObject // a value ended: in an object, a key follows
	}
	// "com.amazonaws.sts#ExpiredTokenException" names the code after '#'.
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	return code, message
}

// xmlElement returns the text of the first element name in b.
func xmlElement(b []byte, name string) string {
	_, rest, ok := bytes.Cut(b, []byte("<"+name+">"))
	if !ok {
		return ""
	}
	text, _, _ := bytes.Cut(rest, []byte("</"+name+">"))
	return string(bytes.TrimSpace(text))
}

// classify acts on the code and message an answer states, and returns the
// verdict for the retry policy; known reports whether they said anything
// it acts on (a clock-skew answer from a host that may not set the clock
// is known, with no verdict).
func (a *answer) classify(code, message string) (v verdict, known bool) {
	switch {
	case code == "" && message == "":
		return noVerdict, false
	case slices.Contains(expiredTokenCodes, code) || strings.Contains(message, expiredTokenMessage):
		a.t.invalidate(a.used)
		return expiredToken, true
	case slices.Contains(throttleCodes, code):
		return throttled, true
	case slices.Contains(skewCodes, code) || slices.ContainsFunc(skewMessages, func(m string) bool { return strings.Contains(message, m) }):
		if a.t.correctClock(a.ctx, a.fromAWS, a.host, a.date) {
			return clockSkewed, true
		}
		return noVerdict, true
	}
	return noVerdict, false
}

// invalidate invalidates the credentials used for a request the service
// answered with an expired token. It never blocks: *Credentials tells its
// current set without waiting for a refresh, so it is invalidated only if
// the set used is still current; another provider cannot be asked without
// the risk of waiting for its refresh, so it is invalidated (which for
// aws.CredentialsCache costs nothing until the next Retrieve).
//
// A Transport forces a refresh at most once every 30 seconds
// (minForcedInterval): a service that keeps answering ExpiredToken, or any
// host that may be signed for, would otherwise make one credential fetch
// per answer from a source that hands out new credentials on every call
// (aws.CredentialsCache over STS, say), which *Credentials' own spacing of
// refreshes that changed nothing does not catch.
func (t *Transport) invalidate(used aws.Credentials) {
	switch c := t.Credentials.(type) {
	case *Credentials:
		if s := c.current(); s != nil && s.creds.AccessKeyID == used.AccessKeyID && s.creds.SessionToken == used.SessionToken && t.mayForce() {
			c.Invalidate()
		}
	case interface{ Invalidate() }:
		if t.mayForce() {
			c.Invalidate()
		}
	}
}

// mayForce reports whether the Transport may force a refresh now, and if
// so counts it.
func (t *Transport) mayForce() bool {
	now := time.Now().UnixNano()
	last := t.forced.Load()
	return (last == 0 || now-last >= int64(minForcedInterval)) && t.forced.CompareAndSwap(last, now)
}

// correctClock sets the transport's clock offset from the Date of a
// clock-skew answer, reporting whether it did. Only the answers of AWS
// endpoints that run no customer's code count (any other host could set
// the clock of every later request), within maxSkewCorrection. A change is
// logged, at most once a minute however often answers change it.
func (t *Transport) correctClock(ctx context.Context, fromAWS bool, host, dateHeader string) bool {
	date, err := http.ParseTime(dateHeader)
	if !fromAWS || err != nil {
		return false
	}
	offset := time.Until(date).Round(time.Second)
	if offset > maxSkewCorrection || offset < -maxSkewCorrection {
		if n, ok := t.refusedLog.allow(); ok && t.Logger != nil {
			t.Logger.WarnContext(ctx, "kivuli: ignoring a clock correction beyond the bound",
				"host", host, "offset", offset, "bound", maxSkewCorrection, "not_logged", n)
		}
		return false
	}
	// Dates have whole seconds: answers a second apart are one offset.
	if prev := time.Duration(t.skew.Swap(int64(offset))); (offset - prev).Abs() > time.Second {
		if n, ok := t.correctionLog.allow(); ok && t.Logger != nil {
			t.Logger.WarnContext(ctx, "kivuli: the service says the local clock is off; correcting the signing time",
				"host", host, "offset", offset, "previous_offset", prev, "not_logged", n)
		}
	}
	return true
}

// everyMinute lets a warning through at most once a minute, counting the
// ones held back. Its zero value is ready.
type everyMinute struct {
	last    atomic.Int64 // unix nanoseconds of the last one let through
	skipped atomic.Int64
}

// allow reports whether a warning may be logged now, and how many were
// held back since the last one.
func (e *everyMinute) allow() (skipped int64, ok bool) {
	now := time.Now().UnixNano()
	last := e.last.Load()
	if last != 0 && now-last < int64(time.Minute) || !e.last.CompareAndSwap(last, now) {
		e.skipped.Add(1)
		return 0, false
	}
	return e.skipped.Swap(0), true
}

// sniffer is the body of an error answer: it gives the caller the body
// unchanged, and classifies its first peekMax bytes once they have been
// read, or the body ends or is closed. It carries the verdict to the retry
// policy (answerVerdict); an answer classified by its headers gets one
// only for that, with nothing left to classify.
type sniffer struct {
	rc io.ReadCloser

	mu      sync.Mutex // guards the fields below; never held while reading rc
	seen    []byte     // the first bytes read, up to peekMax
	a       *answer    // nil once classified
	v       verdict    // the verdict, once classified
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
		s.classifySeen(a)
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
			s.classifySeen(a)
		}
	}
}

func (s *sniffer) Close() error {
	s.mu.Lock()
	a := s.a
	s.a = nil
	s.mu.Unlock()
	if a != nil {
		s.classifySeen(a)
	}
	return s.rc.Close()
}

// classifySeen classifies what was read of the body, which no longer
// changes, and keeps the verdict.
func (s *sniffer) classifySeen(a *answer) {
	v, _ := a.classify(bodyCode(s.seen))
	s.mu.Lock()
	s.v = v
	s.mu.Unlock()
}

// answerVerdict returns the Transport's verdict on an answer, reading the
// start of an error body first if need be: the retry policy's one look at
// what the Transport made of the answer.
func answerVerdict(resp *http.Response) verdict {
	s, ok := resp.Body.(*sniffer)
	if !ok {
		return noVerdict
	}
	s.peek()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v
}
