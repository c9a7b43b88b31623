package proxycmd

import (
	"context"
	"io"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// TestMain lets the test binary be kivuli with its proxy command, as a
// process of its own (testkit.Main).
func TestMain(m *testing.M) { testkit.Main(m, testkit.Root(NewCommand)) }

// runCmd runs the command line args, kivuli proxy's, in process.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, testkit.Root(NewCommand), stdin, args...)
}

// runContext runs kivuli proxy's command line args in this process, until
// ctx ends, and returns the exit status.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(ctx, testkit.Root(NewCommand), args, stdin, stdout, stderr, env)
}
