package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// ChainEnv makes the SDK's chain read only what a test gives it.
func ChainEnv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range base.CredentialVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv(base.DepthVar, "")
	return dir
}
