package kivuli

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotOnEC2 is returned (wrapped) when nothing answers at the Instance
// Metadata Service endpoint: the program is not running on EC2, or the
// endpoint is blocked. Test for it with [errors.Is].
var ErrNotOnEC2 = errors.New("kivuli: not running on EC2: the instance metadata service did not answer")

// ErrNoRole is returned (wrapped) when the instance metadata service answers
// but no IAM role is attached to the instance (an empty role list, or a 404
// for the role list or the named role). Test for it with [errors.Is].
var ErrNoRole = errors.New("kivuli: no IAM role is attached to this instance")

// ErrIMDSDisabled is returned when AWS_EC2_METADATA_DISABLED=true: no call is
// made to the instance metadata service at all.
var ErrIMDSDisabled = errors.New("kivuli: instance metadata service disabled by AWS_EC2_METADATA_DISABLED")

// ErrIMDSv1Disabled is returned (wrapped) when no IMDSv2 session token could
// be obtained and AWS_EC2_METADATA_V1_DISABLED=true forbids the IMDSv1
// fallback.
var ErrIMDSv1Disabled = errors.New("kivuli: IMDSv2 token unavailable and IMDSv1 fallback disabled by AWS_EC2_METADATA_V1_DISABLED")

// ErrClosed is returned by a [Credentials] that has been closed and holds no
// valid credentials.
var ErrClosed = errors.New("kivuli: credentials closed")

// ErrStaleCredentials is returned (wrapped) in [RefreshEvent.Err] when the
// credential source served a set that has expired already, or would within
// [RefreshDeadline], while the credentials in hand were still valid: the
// refresh counts as failed and the credentials in hand keep serving.
var ErrStaleCredentials = errors.New("kivuli: the credential source served credentials that expire within the refresh deadline")

// ErrNotIMDS is returned by [Credentials.Region] when the credentials come
// from another source than the instance metadata service ([WithProvider]).
var ErrNotIMDS = errors.New("kivuli: the credentials do not come from the instance metadata service")

// maxSafeBody bounds the IMDS error bodies an [IMDSError] may quote.
const maxSafeBody = 40

// IMDSError is returned (wrapped) when the instance metadata service answers
// with an unexpected HTTP status.
//
// Body quotes the response body only when it is one of the short forms IMDS
// itself sends, a few plain words such as "Not Found" (at most 40 letters and
// spaces, no word longer than 15 letters); any other body, which could be a
// credential document relayed by a proxy or anything else, is never copied,
// and only its length is kept in BodyLen. Body may instead hold a note of
// kivuli's own in parentheses, such as "(empty token)".
type IMDSError struct {
	Op         string // "token", "role", or "credentials"
	Path       string // the request path, e.g. /latest/api/token
	StatusCode int    // the HTTP status IMDS answered with
	Body       string // a known-safe short body, or a note in parentheses, or ""
	BodyLen    int    // the length of the body received, quoted or not
}

// Error implements the error interface.
func (e *IMDSError) Error() string {
	msg := "kivuli: IMDS " + e.Op + " request " + e.Path + " answered HTTP " + strconv.Itoa(e.StatusCode)
	switch {
	case e.Body != "":
		msg += ": " + strconv.Quote(e.Body)
	case e.BodyLen > 0:
		msg += " (a " + strconv.Itoa(e.BodyLen) + "-byte body, not shown)"
	}
	return msg
}

// HTTPStatusCode returns the HTTP status of the response, so that callers can
// test for it with a behaviour interface, as aws-sdk-go-v2 errors allow.
func (e *IMDSError) HTTPStatusCode() int { return e.StatusCode }

// newIMDSError describes an unexpected answer, quoting its body only when
// it is a known-safe short form.
func newIMDSError(op, path string, status int, body []byte) *IMDSError {
	e := &IMDSError{Op: op, Path: path, StatusCode: status, BodyLen: len(body)}
	if safeBody(body) {
		e.Body = strings.TrimSpace(string(body))
	}
	return e
}

// safeBody reports whether an error body is a few plain words, as IMDS's own
// error answers are ("Not Found", "Unauthorized", "Service Unavailable"):
// letters and spaces only, short, with no word long enough to be a key.
func safeBody(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > maxSafeBody {
		return false
	}
	word := 0
	for _, c := range b {
		switch {
		case c == ' ':
			word = 0
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			if word++; word > 15 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// CredentialsError is returned when the instance metadata service returns a
// credential document whose Code is not "Success", for example when the role
// cannot be assumed. Code and Message are IMDS's, with every value that
// looks like an access key, a secret key or a session token, and every value
// of the document's own AccessKeyId, SecretAccessKey and Token fields,
// replaced by "REDACTED"; Message is cut to 256 bytes.
type CredentialsError struct {
	Role    string // the role whose credentials were asked for
	Code    string // IMDS's Code, such as "AssumeRoleUnauthorizedAccess"
	Message string // IMDS's Message, redacted and cut
}

// Error implements the error interface.
func (e *CredentialsError) Error() string {
	msg := fmt.Sprintf("kivuli: IMDS credentials for role %q: code %q", e.Role, e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

var (
	// ErrHostNotAllowed is returned (wrapped) for a request whose dialled
	// host (URL.Host) or signed host (Request.Host, when set) is neither an
	// AWS endpoint nor in [Transport.AllowedHosts], or is not a valid host.
	ErrHostNotAllowed = errors.New("kivuli: host not allowed to receive signed requests")
	// ErrPlaintext is returned (wrapped) for a request in clear (http://
	// or ws://) to a host that is neither loopback nor in
	// [Transport.AllowedHosts]: its signature and session token would be
	// readable on the network, and by any HTTP proxy on the way.
	ErrPlaintext = errors.New("kivuli: refusing to sign a request sent in clear")
	// ErrUnknownScope is returned (wrapped) when the signing service or
	// region is not set and the host does not tell it.
	ErrUnknownScope = errors.New("kivuli: cannot tell the signing service or region")
	// ErrBodyTooLarge is returned (wrapped) when a body that can be read
	// only once is larger than [Transport.MaxBufferedBody].
	ErrBodyTooLarge = errors.New("kivuli: request body too large to buffer for signing")
	// ErrNoCredentials is returned by a nil Transport or one whose
	// Credentials is nil, and by a RetryingTransport that
	// NewRetryingTransport did not make.
	ErrNoCredentials = errors.New("kivuli: no credentials to sign with (a nil Transport, or a nil Transport.Credentials)")
)

// The kinds of errors in what kivuli is given rather than what it is told:
// an *Error with one of them as its Kind.
var (
	// ErrInvalidConfig is the Kind of an [*Error] about an option, a field
	// or an environment variable that cannot be used.
	ErrInvalidConfig = errors.New("kivuli: invalid configuration")
	// ErrInvalidRequest is the Kind of an [*Error] about a request that
	// cannot be signed as it is (its body, URL, headers or presigned
	// lifetime).
	ErrInvalidRequest = errors.New("kivuli: cannot sign the request")
	// ErrInvalidDocument is the Kind of an [*Error] about an answer of the
	// instance metadata service that cannot be used: a credential document
	// that is not JSON, lacks a field, is over 64 KiB or holds characters
	// AWS never issues in its key ID, secret or token (values that would
	// run commands in a shell that evaluates them), or a region that is
	// not a region's name. It never holds the answer's secret values.
	ErrInvalidDocument = errors.New("kivuli: unusable answer from the instance metadata service")
)

// Error is the type of the errors kivuli makes itself; the answers of
// others keep types of their own ([*IMDSError], [*CredentialsError]).
// Kind, when set, is one of the sentinel errors (ErrHostNotAllowed,
// ErrInvalidRequest, ErrNoRole, ...): errors.Is finds it, and the cause,
// and errors.As finds the *Error and the cause's own type:
//
//	if errors.Is(err, kivuli.ErrHostNotAllowed) { ... }
//	var ke *kivuli.Error
//	if errors.As(err, &ke) { log.Print(ke.Reason) }
//
// Its message says "kivuli: " once, then the kind, the reason and the
// cause: "kivuli: no IAM role is attached to this instance: IMDS role
// request /latest/meta-data/iam/security-credentials/ answered HTTP 404".
// It never holds a secret.
type Error struct {
	Kind   error  // a sentinel error of this package, or nil
	Reason string // what is wrong, without the kind
	Err    error  // the cause, or nil
}

// Error implements the error interface.
func (e *Error) Error() string {
	parts := make([]string, 0, 3)
	if e.Kind != nil {
		parts = append(parts, strings.TrimPrefix(e.Kind.Error(), prefix))
	}
	if e.Reason != "" {
		parts = append(parts, e.Reason)
	}
	if e.Err != nil {
		parts = append(parts, strings.TrimPrefix(e.Err.Error(), prefix))
	}
	return prefix + strings.Join(parts, ": ")
}

// Unwrap returns Kind and Err, those that are set.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// prefix starts every kivuli error message, once.
const prefix = "kivuli: "

// chain returns an *Error of kind head, saying detail and wrapping cause
// (either may be empty).
func chain(head error, detail string, cause error) error {
	return &Error{Kind: head, Reason: detail, Err: cause}
}

// wrap returns "kivuli: what: cause" wrapping cause.
func wrap(what string, cause error) error {
	return &Error{Reason: what, Err: cause}
}

// invalid returns an *Error of kind kind saying what fmt.Sprintf(format,
// args...) says.
func invalid(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// invalidRequest is an ErrInvalidRequest with a cause.
func invalidRequest(reason string, cause error) error {
	return &Error{Kind: ErrInvalidRequest, Reason: reason, Err: cause}
}

// invalidDoc is an ErrInvalidDocument saying reason.
func invalidDoc(reason string) error {
	return &Error{Kind: ErrInvalidDocument, Reason: reason}
}
