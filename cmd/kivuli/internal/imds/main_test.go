package imds

import (
	"context"
	"io"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// TestMain lets the test binary be one of the commands kivuli imds runs
// (testkit.Main).
func TestMain(m *testing.M) { testkit.Main(m, testkit.Root(NewCommand)) }

// runCmd runs the command line args, kivuli imds's, in process.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, testkit.Root(NewCommand), stdin, args...)
}

// run runs kivuli imds's command line args, as runContext does.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return runContext(context.Background(), args, stdin, stdout, stderr, env)
}

// runContext runs kivuli imds's command line args in this process, until
// ctx ends, and returns the exit status.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(ctx, testkit.Root(NewCommand), args, stdin, stdout, stderr, env)
}
