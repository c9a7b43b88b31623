package exec

import (
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// TestMain lets the test binary be kivuli with its exec command, or one
// of the commands it runs (testkit.Main).
func TestMain(m *testing.M) { testkit.Main(m, testkit.Root(NewCommand)) }
