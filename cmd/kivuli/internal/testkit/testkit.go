// Package testkit is what the kivuli command's tests share: the command
// run in process (Run) or as a process of its own (Command, the test
// binary re-run as kivuli by Main), the commands it runs (ChildMain), an
// emulated IMDS beside a checking endpoint (Fixture), golden files, and
// the requests of a web page (BrowserRequest). Only tests import it.
package testkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/cobra"
)

// asKivuli, set in the environment, makes the test binary run as the
// kivuli command (its arguments after "--"), so that the tests that need
// a process of their own (exec's signals and exit statuses, a child
// reading credentials) do not build a binary each.
const AsKivuli = "KIVULI_TEST_AS_COMMAND"

// childArg, as the first argument, makes the test binary a command that
// kivuli exec runs (see childMain).
const ChildArg = "kivuli-test-child"

// result is what one run of the command gave.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// command is the kivuli command as a process of its own: the test binary
// run as kivuli.
func Command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(os.Args[0], args...)
	home := t.TempDir()
	// The SDK in a child must read nothing of this machine's: no shared
	// files, no real IMDS.
	c.Env = append(base.ChildEnviron(os.Environ()),
		AsKivuli+"=1", "HOME="+home,
		"GORACE=atexit_sleep_ms=0", // the race detector's second at every exit
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1")
	return c
}

// child is the argv of the test binary as one of childMain's commands.
func Child(args ...string) []string { return append([]string{os.Args[0], ChildArg}, args...) }

// Main is a test binary's TestMain: run as ChildArg, it is one of
// ChildMain's commands; with AsKivuli set, it is kivuli with the commands
// build makes; otherwise it runs the tests.
func Main(m *testing.M, build base.Builder) {
	if len(os.Args) > 1 && os.Args[1] == ChildArg {
		os.Exit(ChildMain(os.Args[2:]))
	}
	if os.Getenv(AsKivuli) == "1" {
		base.Main(build)
	}
	os.Exit(m.Run())
}

// Run runs the command line args in this process, with the commands
// build makes, stdin, and the test process's environment.
func Run(t *testing.T, build base.Builder, stdin string, args ...string) Result {
	t.Helper()
	var out, errb bytes.Buffer
	code := base.Execute(context.Background(), build, args, strings.NewReader(stdin), &out, &errb, os.Environ())
	return Result{out.String(), errb.String(), code}
}

// Root is a bare kivuli root with the commands cmds make, as
// base.SetupRoot sets one up: for a subcommand's tests.
func Root(cmds ...func(*base.App) *cobra.Command) base.Builder {
	return func(a *base.App) *cobra.Command {
		root := &cobra.Command{Use: "kivuli", Args: base.UsageArgs(cobra.NoArgs)}
		subs := make([]*cobra.Command, len(cmds))
		for i, c := range cmds {
			subs[i] = c(a)
		}
		return base.SetupRoot(root, subs...)
	}
}
