package base

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kivuli-go/kivuli"
)

// Exit statuses. curl's own number is kept where kivuli curl means the
// same thing; exec passes its command's status through instead.
const (
	ExitOK        = 0
	ExitFailure   = 1  // the request or the server failed
	ExitUsage     = 2  // a flag or argument is wrong
	ExitNoCreds   = 3  // the credential source gave no credentials
	ExitRefused   = 4  // the signer refused the request: host, plaintext, scope, body
	ExitHTTPError = 22 // curl --fail: the answer was HTTP 400 or more (curl's 22)
	ExitRedirects = 47 // curl -L: too many redirects (curl's 47)
)

// ExitStatusText is the EXIT STATUS section shared by every manual page.
const ExitStatusText = `0    success.
1    the request, the server or the command failed.
2    a flag, an argument or an environment variable is wrong (the
     message says which).
3    no credentials: the source did not give any (not on EC2, no role
     attached, IMDS failing, the chain or AssumeRole refused). When IMDS
     does not answer, the message says where --source chain would find
     credentials: the variables or the profile's file, never the values.
4    the signer refused the request before sending it: a host that is
     not an AWS endpoint nor given with --allow-host, plain http:// to a
     host that is not loopback, a service or region the host does not
     tell, a body too large to buffer.`

// ExitError carries the exit status of a failure and its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// UsageErrorf is a failure with exit status 2.
func UsageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// ExitCode returns the exit status for err.
func ExitCode(err error) int {
	var (
		ee *ExitError
		se *SilentError
		ke *SignalExit
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ke):
		return 128 + signalNumber(ke.Sig)
	case errors.As(err, &se):
		return se.Code
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, kivuli.ErrInvalidConfig):
		// The command's configuration is its flags and environment.
		return ExitUsage
	case RefusedBySigner(err):
		return ExitRefused
	case noCredentials(err):
		return ExitNoCreds
	}
	return ExitFailure
}

// RefusedBySigner reports errors of kivuli.Transport that mean nothing was
// sent.
func RefusedBySigner(err error) bool {
	return errors.Is(err, kivuli.ErrHostNotAllowed) || errors.Is(err, kivuli.ErrPlaintext) ||
		errors.Is(err, kivuli.ErrUnknownScope) || errors.Is(err, kivuli.ErrBodyTooLarge) ||
		errors.Is(err, kivuli.ErrInvalidRequest)
}

// noCredentials reports errors of a credential source.
func noCredentials(err error) bool {
	var (
		ie *kivuli.IMDSError
		ce *kivuli.CredentialsError
		se *sourceError
	)
	return errors.Is(err, kivuli.ErrNotOnEC2) || errors.Is(err, kivuli.ErrNoRole) ||
		errors.Is(err, kivuli.ErrIMDSDisabled) || errors.Is(err, kivuli.ErrIMDSv1Disabled) ||
		errors.Is(err, kivuli.ErrInvalidDocument) || errors.Is(err, kivuli.ErrStaleCredentials) ||
		errors.As(err, &ie) || errors.As(err, &ce) || errors.As(err, &se)
}

// Message is err as printed: "kivuli: " once.
func Message(err error) string {
	s := err.Error()
	if !strings.HasPrefix(s, "kivuli: ") {
		s = "kivuli: " + s
	}
	return s
}

// SilentError is a failure already reported (curl -s, --fail).
type SilentError struct{ Code int }

func (e *SilentError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

func silent(err error) bool {
	var (
		se *SilentError
		ke *SignalExit
	)
	return errors.As(err, &se) || errors.As(err, &ke)
}

// Exit statuses of kivuli exec when its command does not run, as
// env(1) and the shells have them.
const (
	ExitCannotRun = 126 // the command was found but could not be run
	ExitNotFound  = 127 // the command was not found
)

// SignalExit is the end of a command by a signal: kivuli ends the same
// way (main raises it), or with 128+N.
type SignalExit struct{ Sig os.Signal }

func (e *SignalExit) Error() string { return "kivuli: the command was ended by " + e.Sig.String() }
