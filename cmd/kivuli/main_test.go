package main

import (
	"context"
	"io"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, newRoot) }

// run runs kivuli's command line args, as runContext does.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(context.Background(), newRoot, args, stdin, stdout, stderr, env)
}

// runContext runs kivuli's command line args in this process, until ctx
// ends, and returns the exit status.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(ctx, newRoot, args, stdin, stdout, stderr, env)
}

// runCmd runs the command in process with stdin and the test process's
// environment.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, newRoot, stdin, args...)
}
