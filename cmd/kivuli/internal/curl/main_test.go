package curl

import (
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// runCmd runs the command line args, kivuli curl's, in process.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, testkit.Root(NewCommand), stdin, args...)
}
