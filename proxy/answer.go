package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kivuli-go/kivuli"
)

// statusClientClosed is the status reported for a client that went away
// before the answer (nginx's 499); it is never sent.
const statusClientClosed = 499

// requestState is what the transport chain learns of one request, for
// its error status and what the observer is told.
type requestState struct {
	req      *http.Request // the client's
	sent     atomic.Bool   // the signer passed a request on: an error is the upstream's
	attempts atomic.Int32  // requests sent upstream
	stalled  atomic.Bool   // the client's body stalled (BodyIdleTimeout)
	// preEncoded: the body is an SDK's aws-chunked one, signed as it is:
	// its payload hash and Content-Encoding go to the signer.
	preEncoded bool
	mu         sync.Mutex
	answer     *RequestError
}

func (s *requestState) setErr(e *RequestError) {
	s.mu.Lock()
	s.answer = e
	s.mu.Unlock()
}

func (s *requestState) err() *RequestError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answer
}

type stateKey struct{}

func stateOf(ctx context.Context) *requestState {
	s, _ := ctx.Value(stateKey{}).(*requestState)
	if s == nil {
		s = &requestState{}
	}
	return s
}

// refuse answers a request that is not forwarded with e.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, st *requestState, e *RequestError) {
	if e.retryAfter != "" {
		w.Header().Set("Retry-After", e.retryAfter)
	}
	if r.ContentLength != 0 {
		// What is left of the body is not wanted: the connection is not
		// reused after it.
		w.Header().Set("Connection", "close")
	}
	p.answer(w, r, st, e)
}

// answer records e as the request's answer and writes it.
func (p *Proxy) answer(w http.ResponseWriter, r *http.Request, st *requestState, e *RequestError) {
	st.setErr(e)
	if p.onError != nil {
		p.onError(w, r, e)
		return
	}
	http.Error(w, e.Msg, e.Status)
}

// proxyError answers a request that could not be forwarded, with a status
// that says whose fault it was: 400 for a request the signer cannot sign
// as it is, 413 for a body too large, 503 for missing credentials, 502 for
// a refusal by the signer or a failed upstream, 504 for an upstream that
// timed out. A client that went away gets nothing.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the retrying client's http.Client wraps the transport's errors
	}
	switch {
	case st.stalled.Load():
		// A streamed body the client stopped sending: its fault, not the
		// upstream's (net/http has ended the request's context: it cannot
		// read it).
		w.Header().Set("Connection", "close") // nothing more is read of it
		p.answer(w, r, st, stalledError(errBodyStalled))
	case r.Context().Err() != nil:
		if rec, ok := w.(*statusRecorder); ok {
			rec.status = statusClientClosed
		}
		st.setErr(&RequestError{Status: statusClientClosed, Msg: "the client went away: " + err.Error()})
	case errors.Is(err, errFramingTooLong):
		w.Header().Set("Connection", "close") // the rest is not read
		p.answer(w, r, st, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: err.Error()})
	case !st.sent.Load():
		p.answer(w, r, st, signerError(err))
	default:
		e := &RequestError{Status: http.StatusBadGateway, Msg: "kivuli proxy: the upstream " + p.upstream.Host + " failed: " + strings.TrimPrefix(message(err), "kivuli: ")}
		if isTimeout(err) {
			e.Status = http.StatusGatewayTimeout
		}
		p.answer(w, r, st, e)
	}
}

// signerError is the answer to a request the signer refused, or could not
// sign for want of credentials.
func signerError(err error) *RequestError {
	e := &RequestError{Status: http.StatusBadGateway, Stage: "signer", Msg: message(err)}
	switch {
	case errors.Is(err, kivuli.ErrBodyTooLarge):
		e.Status, e.Reason = http.StatusRequestEntityTooLarge, "body_too_large"
	case errors.Is(err, kivuli.ErrHostNotAllowed):
		e.Reason = "host_not_allowed"
	case errors.Is(err, kivuli.ErrPlaintext):
		e.Reason = "plaintext"
	case errors.Is(err, kivuli.ErrUnknownScope):
		e.Reason = "unknown_scope"
	case errors.Is(err, kivuli.ErrInvalidRequest):
		// A query or path it cannot sign as the service reads it, a
		// control character: the client's to fix.
		e.Status, e.Reason = http.StatusBadRequest, "bad_request"
	default:
		e.Status, e.Reason = http.StatusServiceUnavailable, "credentials"
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
