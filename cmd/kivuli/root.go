package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/spf13/cobra"
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
2    a flag or an argument is wrong (the message says which).
3    no credentials: the source did not give any (not on EC2, no role
     attached, IMDS failing, the chain or AssumeRole refused).
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

// sourceError wraps a failure to get credentials from a source other than
// kivuli's own IMDS client: the SDK's chain, a profile, AssumeRole.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// Message is err as printed: "kivuli: " once.
func Message(err error) string {
	s := err.Error()
	if !strings.HasPrefix(s, "kivuli: ") {
		s = "kivuli: " + s
	}
	return s
}

// App is what every subcommand sees: the streams, the environment and
// the context of one run.
type App struct {
	ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Env    Environ
}

// run is the command with the process's context: see runContext.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return runContext(context.Background(), args, stdin, stdout, stderr, env)
}

// runContext runs the command line args and returns the exit status.
// env is the environment the command reads and passes to programs it
// runs; the AWS SDK and the kivuli library also read the process's own
// environment (AWS_EC2_METADATA_*, AWS_CONFIG_FILE, ...). ctx ending stops
// the servers (imds, exec --serve's endpoint once its command has ended).
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	a := &App{ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr, Env: NewEnviron(env)}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		code := ExitCode(err)
		var ke *SignalExit
		if errors.As(err, &ke) {
			pendingSignal.Store(ke.Sig)
		}
		if !silent(err) {
			fmt.Fprintln(stderr, Message(err))
			if code == ExitUsage {
				if c, _, ferr := root.Find(args); ferr == nil && c != nil {
					fmt.Fprintf(stderr, "Run '%s --help' for the manual.\n", c.CommandPath())
				}
			}
		}
		return code
	}
	return ExitOK
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

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kivuli",
		Short: "signed requests, credentials and an IMDS emulator from the command line",
		Long: `kivuli brings the credential logic and the SigV4 signer of the Go library
github.com/kivuli-go/kivuli to shells, scripts, cron jobs and programs in
any language on the same machine.

Credentials come from the EC2 Instance Metadata Service (IMDS) by default,
through the library: IMDSv2 tokens with a fallback to IMDSv1, retries,
refresh ahead of expiry. --source chain uses the whole aws-sdk-go-v2
default chain instead (environment, shared config and SSO, web identity,
ECS/EKS container credentials, then IMDS); --role-arn assumes a role on
top of either. Every command takes these CREDENTIAL SOURCE options.

Commands:
  curl    send one signed HTTP request, with curl's flags
  creds   print credentials in the AWS CLI's export-credentials formats
  exec    run a command with credentials in its environment, or served
          to it by a local ECS-style endpoint that keeps them fresh
  imds    run the IMDS emulator as a server, with faults on demand
  proxy   a signing reverse proxy: plain HTTP in, signed requests out

Run 'kivuli help COMMAND' or 'kivuli COMMAND --help' for its manual.`,
		Example: `kivuli curl https://sts.amazonaws.com/?Action=GetCallerIdentity\&Version=2011-06-15
kivuli creds --format env
kivuli exec -- aws s3 ls
kivuli imds -- go test ./...
kivuli proxy --upstream https://search-logs-abc.eu-west-2.es.amazonaws.com`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printVersion(cmd) {
				return nil
			}
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { WriteManual(cmd.OutOrStdout(), cmd) })
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show a command's manual",
		Args:  UsageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || c == nil || len(rest) > 0 {
				return UsageErrorf("no such command %q", strings.Join(args, " "))
			}
			WriteManual(cmd.OutOrStdout(), c)
			return nil
		},
	})
	root.AddCommand(a.curlCommand(), a.credsCommand(), a.execCommand(), a.imdsCommand(), a.proxyCommand())
	for _, c := range append(root.Commands(), root) {
		c.Flags().SortFlags = false
		c.Flags().BoolP("help", "h", false, "print this manual")
	}
	addVersionFlag(root)
	return root
}

// Retrieve returns the current credentials of src, mapping a failure to
// exit status 3.
func Retrieve(ctx context.Context, src aws.CredentialsProvider) (aws.Credentials, error) {
	v, err := src.Retrieve(ctx)
	if err != nil {
		return v, &ExitError{Code: ExitNoCreds, Err: err}
	}
	return v, nil
}

// UsageArgs makes an argument check's failure a usage error (exit 2).
func UsageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &ExitError{Code: ExitUsage, Err: err}
		}
		return nil
	}
}
