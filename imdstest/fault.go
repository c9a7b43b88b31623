package imdstest

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Target selects the requests a [Fault] applies to, by path.
type Target int

const (
	// AnyPath matches a request on any path, known or not.
	AnyPath Target = iota
	// TokenPath matches requests on /latest/api/token.
	TokenPath
	// RoleListPath matches requests on
	// /latest/meta-data/iam/security-credentials/.
	RoleListPath
	// CredentialsPath matches requests on
	// /latest/meta-data/iam/security-credentials/<role>, whatever the role.
	CredentialsPath
)

// otherPath classifies a request on a path no other Target names.
const otherPath Target = -1

// String returns the name of the target's constant, such as "TokenPath".
func (t Target) String() string {
	switch t {
	case AnyPath:
		return "AnyPath"
	case TokenPath:
		return "TokenPath"
	case RoleListPath:
		return "RoleListPath"
	case CredentialsPath:
		return "CredentialsPath"
	}
	return "Target(" + strconv.Itoa(int(t)) + ")"
}

// Fault makes a [Server] misbehave on the requests it matches; see
// [Server.Inject]. A fault matches a request on its Target path, with any
// method; a fault with Code or Expired set matches credential requests
// only, whatever its Target.
//
// Usually one of Status, Hang, Reset, Body, Code and Expired is set; Delay
// combines with any of them. A fault with Status, Body or Code replaces the
// answer, before any token or method check; a fault with only Delay or
// Expired leaves the normal answer, checks included, in place.
type Fault struct {
	// Target is the path the fault applies to. Default AnyPath.
	Target Target
	// Times is how many matching requests the fault applies to; each use
	// consumes one. 0 means every matching request until ClearFaults.
	Times int
	// Status answers with this status and a short text/plain body, such as
	// 500, 503, 429, 404, 401, 403 or 405.
	Status int
	// RetryAfter, with Status, Body or Code, adds a Retry-After header of
	// this many seconds when > 0.
	RetryAfter int
	// Delay waits this long (on a time.Timer, so on fake time in a
	// testing/synctest bubble) before answering. The request is dropped if
	// its context ends or the server is closed meanwhile.
	Delay time.Duration
	// Hang never answers: the request blocks until its context ends or the
	// server is closed, and is then dropped. A token PUT dropped on the
	// way, as with hop limit 1 in containers, is
	// Fault{Target: TokenPath, Hang: true}.
	Hang bool
	// Reset drops the connection at once, without an answer, as a
	// connection reset by the peer (over a socket, a TCP RST).
	Reset bool
	// StallBody sends the answer's status, headers and the first half of
	// its body, then holds the rest until the request's context ends or
	// the server is closed, and drops the connection. Through
	// Server.RoundTripper, where no part of an answer arrives before all
	// of it, it holds the request as Hang does.
	StallBody bool
	// Body answers 200, or Status, with exactly this body, such as
	// malformed JSON. It is ignored when empty.
	Body string
	// Code answers 200, or Status, with a credential document whose Code is
	// this (a failure, not "Success") along with Message, and no
	// credentials, as IMDS does when it cannot get the role's credentials.
	Code string
	// Message is the Message of the credential document, with Code.
	Message string
	// Expired serves the current credential set, but with an Expiration
	// already past: the server's clock minus one minute.
	Expired bool
}

// matches reports whether f applies to a request on target.
func (f Fault) matches(target Target) bool {
	if f.Target != AnyPath && f.Target != target {
		return false
	}
	return target == CredentialsPath || f.Code == "" && !f.Expired
}

// replaces reports whether f answers in place of the server.
func (f Fault) replaces() bool {
	return f.Status != 0 || f.Body != "" || f.Code != ""
}

// match returns the first queued fault matching a request on target,
// consuming one of its Times. st.mu is held.
func (st *state) match(target Target) (Fault, bool) {
	for i := range st.faults {
		f := &st.faults[i]
		if !f.matches(target) {
			continue
		}
		got := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				st.faults = slices.Delete(st.faults, i, i+1)
			}
		}
		return got, true
	}
	return Fault{}, false
}

// faultResponse is the answer of a fault that replaces the server's. st.mu
// is held.
func (st *state) faultResponse(f Fault) response {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	var resp response
	switch {
	case f.Code != "":
		resp = jsonResponse(status, credentialDoc{
			Code:        f.Code,
			Message:     f.Message,
			LastUpdated: timestamp(st.clock()),
		})
	case f.Body != "":
		resp = response{status: status, ctype: textPlain, body: f.Body}
	default:
		resp = plain(status)
	}
	resp.retryAfter = f.RetryAfter
	return resp
}
