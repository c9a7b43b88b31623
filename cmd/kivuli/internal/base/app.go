package base

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
)

// App is what every subcommand sees: the streams and the environment of
// one run.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Env    Environ
}

// Builder makes the commands of one run: kivuli's whole tree, or in a
// subcommand's tests that subcommand under a bare root (see SetupRoot).
type Builder func(a *App) *cobra.Command

// Main runs the process's command line with the commands build makes, and
// exits with its status, or by the signal that ended exec --serve's
// command.
func Main(build Builder) {
	// SIGINT and SIGTERM end a server (imds, exec --serve) cleanly; exec
	// installs its own handlers to pass every signal to the child.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Execute(ctx, build, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	if sig, ok := pendingSignal.Load().(os.Signal); ok {
		raise(sig) // end as exec's command ended, if the signal does end us
	}
	os.Exit(code)
}

// Execute runs the command line args and returns the exit status.
// env is the environment the command reads and passes to programs it
// runs; the AWS SDK and the kivuli library also read the process's own
// environment (AWS_EC2_METADATA_*, AWS_CONFIG_FILE, ...). ctx ending stops
// the servers (imds, exec --serve's endpoint once its command has ended).
func Execute(ctx context.Context, build Builder, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	root := build(&App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Env: NewEnviron(env)})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	var ke *SignalExit
	if errors.As(err, &ke) {
		pendingSignal.Store(ke.Sig)
	}
	if !silent(err) {
		name := ""
		if cmd != nil {
			name = cmd.Name()
		}
		fmt.Fprintln(stderr, commandFlagWords(name, Message(err)))
		if code == ExitUsage {
			if c, _, ferr := root.Find(args); ferr == nil && c != nil {
				fmt.Fprintf(stderr, "Run '%s --help' for the manual.\n", c.CommandPath())
			}
		}
	}
	return code
}

// SetupRoot makes root the root command of subs as kivuli has it: errors
// reported once, by Execute; a wrong flag or argument a usage error (exit
// 2); every command's --help and "help COMMAND" its manual page
// (WriteManual); flags listed in the order they were added.
func SetupRoot(root *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	root.SilenceErrors, root.SilenceUsage = true, true
	root.CompletionOptions = cobra.CompletionOptions{DisableDefaultCmd: true}
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
	root.AddCommand(subs...)
	for _, c := range append(root.Commands(), root) {
		c.Flags().SortFlags = false
		c.Flags().BoolP("help", "h", false, "print this manual")
	}
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

// pendingSignal is the signal main must end the process with, set by
// exec --serve when a signal ended its command.
var pendingSignal atomic.Value
