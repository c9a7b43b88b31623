package proxycmd

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// TestMain lets the test binary be kivuli with its proxy command, as a
// process of its own (testkit.Main).
func TestMain(m *testing.M) { testkit.Main(m, testkit.Root(NewCommand)) }

// runCmd runs the command line args, kivuli proxy's, in process, with
// the test process's environment (as runContext gives it).
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runContext(context.Background(), args, strings.NewReader(stdin), &out, &errb, os.Environ())
	return testkit.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// runContext runs kivuli proxy's command line args in this process, until
// ctx ends, and returns the exit status. GOMAXPROCS comes first in env
// (the first of a name is the one read): a proxy in this process leaves
// the processors alone, which are the process's, and parallel tests
// share (TestProxyProcGovernor tests the governor).
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	env = append([]string{"GOMAXPROCS=" + strconv.Itoa(runtime.GOMAXPROCS(0))}, env...)
	return base.Execute(ctx, testkit.Root(NewCommand), args, stdin, stdout, stderr, env)
}
