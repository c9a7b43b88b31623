package kivuli

import (
	"errors"
	"fmt"
	"strconv"
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

// maxErrorBody bounds the part of an error response kept in an [IMDSError].
const maxErrorBody = 256

// IMDSError is returned (wrapped) when the instance metadata service answers
// with an unexpected HTTP status. Body holds at most the first 256 bytes of a
// non-success response; the body of a successful credential response, which
// holds secrets, is never kept.
type IMDSError struct {
	Op         string // "token", "role", or "credentials"
	Path       string // the request path, e.g. /latest/api/token
	StatusCode int
	Body       string
}

// Error implements the error interface.
func (e *IMDSError) Error() string {
	msg := "kivuli: IMDS " + e.Op + " request " + e.Path + " answered HTTP " + strconv.Itoa(e.StatusCode)
	if e.Body != "" {
		msg += ": " + strconv.Quote(e.Body)
	}
	return msg
}

// HTTPStatusCode returns the HTTP status of the response, so that callers can
// test for it with a behaviour interface, as aws-sdk-go-v2 errors allow.
func (e *IMDSError) HTTPStatusCode() int { return e.StatusCode }

// CredentialsError is returned when the instance metadata service returns a
// credential document whose Code is not "Success", for example when the role
// cannot be assumed.
type CredentialsError struct {
	Role    string
	Code    string
	Message string
}

// Error implements the error interface.
func (e *CredentialsError) Error() string {
	msg := fmt.Sprintf("kivuli: IMDS credentials for role %q: code %q", e.Role, e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// DocumentError is returned when a credential document cannot be used: it is
// not JSON, a required field is missing or malformed, or it is larger than
// 64 KiB. It never contains the document's secret values.
type DocumentError struct {
	Reason string
}

// Error implements the error interface.
func (e *DocumentError) Error() string {
	return "kivuli: invalid IMDS credential document: " + e.Reason
}

// ConfigError reports an option or environment variable that cannot be used.
type ConfigError struct {
	Setting string // the option or environment variable
	Reason  string
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	return "kivuli: invalid " + e.Setting + ": " + e.Reason
}

// RequestError reports a request that cannot be signed as it is.
type RequestError struct {
	Reason string // what is wrong with the request
	Err    error  // the cause, if any, such as the error of GetBody
}

// Error implements the error interface.
func (e *RequestError) Error() string {
	if e.Err != nil {
		return "kivuli: cannot sign request: " + e.Reason + ": " + e.Err.Error()
	}
	return "kivuli: cannot sign request: " + e.Reason
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

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
	// ErrNoCredentials is returned by a Transport whose Credentials is nil.
	ErrNoCredentials = errors.New("kivuli: Transport.Credentials is nil")
)
