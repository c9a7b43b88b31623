package base_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

func TestSourceChain(t *testing.T) {
	dir := testkit.ChainEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env/secret")
	r := runCmd(t, "", "creds", "--source", "chain", "--format", "env")
	if r.Code != 0 || r.Stdout != "export AWS_ACCESS_KEY_ID=AKIAFROMENVIRONMENT1\nexport AWS_SECRET_ACCESS_KEY=env/secret\n" {
		t.Errorf("environment: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	os.Unsetenv("AWS_ACCESS_KEY_ID")
	os.Unsetenv("AWS_SECRET_ACCESS_KEY")
	os.WriteFile(filepath.Join(dir, "credentials"), []byte("[dev]\naws_access_key_id = AKIAFROMPROFILE12345\naws_secret_access_key = profile/secret\n"), 0o600)
	r = runCmd(t, "", "creds", "--profile", "dev", "--format", "json")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"AccessKeyId":"AKIAFROMPROFILE12345"`) {
		t.Errorf("--profile: exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	r = runCmd(t, "", "creds", "--profile", "nope")
	if r.Code != base.ExitNoCreds {
		t.Errorf("unknown profile: exit %d %s", r.Code, r.Stderr)
	}
}

// A profile whose credential_process is kivuli creds on itself ends, with
// an error, instead of running itself forever.
func TestSourceChainRecursion(t *testing.T) {
	dir := testkit.ChainEnv(t)
	t.Setenv(testkit.AsKivuli, "1")
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	os.WriteFile(filepath.Join(dir, "config"), []byte("[profile loop]\ncredential_process = "+os.Args[0]+" creds --profile loop\n"), 0o600)
	r := runCmd(t, "", "creds", "--profile", "loop")
	if r.Code != base.ExitNoCreds || !strings.Contains(r.Stderr, "credential_process") {
		t.Errorf("exit %d %q", r.Code, r.Stderr)
	}
}

// TestSourceIMDSEndpointFlag (issue 19, point 11): an --imds-endpoint that
// is not a URL is a wrong flag (exit 2), with either source, not missing
// credentials (exit 3).
func TestSourceIMDSEndpointFlag(t *testing.T) {
	testkit.ChainEnv(t)
	for _, args := range [][]string{
		{"--imds-endpoint", "127.0.0.1:1338"},
		{"--imds-endpoint", "localhost"},
		{"--imds-endpoint", "ftp://127.0.0.1:1338"},
		{"--imds-endpoint", "http://"},
		{"--source", "chain", "--imds-endpoint", "127.0.0.1:1338"},
	} {
		r := runCmd(t, "", append([]string{"creds"}, args...)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--imds-endpoint") || r.Stdout != "" {
			t.Errorf("%v: exit %d, %q; want %d naming --imds-endpoint", args, r.Code, r.Stderr, base.ExitUsage)
		}
	}
}
