package kivuli_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// background refresh, a timer's refresh or a hanging IMDS request.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
