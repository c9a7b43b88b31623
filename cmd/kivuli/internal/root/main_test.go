package root

import (
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, NewCommand) }

// runCmd runs the command in process with stdin and the test process's
// environment.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, NewCommand, stdin, args...)
}
