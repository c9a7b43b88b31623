package base_test

import (
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/creds"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// TestMain lets the test binary be kivuli with its creds command, which a
// credential_process of the chain runs (testkit.Main).
func TestMain(m *testing.M) { testkit.Main(m, testkit.Root(creds.NewCommand)) }

// runCmd runs the command line args in process, with kivuli creds to
// print what the credential source gives.
func runCmd(t *testing.T, stdin string, args ...string) testkit.Result {
	t.Helper()
	return testkit.Run(t, testkit.Root(creds.NewCommand), stdin, args...)
}
