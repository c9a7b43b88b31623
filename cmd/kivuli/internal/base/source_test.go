package base_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestSourceChainEnvExpiry (issue 19, point 14): credentials the chain
// finds in the environment keep AWS_CREDENTIAL_EXPIRATION, as the AWS
// CLI reads it, in every format; one that is not a time is a wrong
// variable (exit 2).
func TestSourceChainEnvExpiry(t *testing.T) {
	testkit.ChainEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "ASIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env/secret")
	t.Setenv("AWS_SESSION_TOKEN", "env/token+AQ==")
	exp := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	iso := base.Isoformat(exp)
	want := map[string]string{
		"process":       `"Expiration": "` + iso + `"`,
		"json":          `"Expiration":"` + exp.Format(time.RFC3339) + `"`,
		"env":           "export AWS_CREDENTIAL_EXPIRATION=" + iso + "\n",
		"env-no-export": "\nAWS_CREDENTIAL_EXPIRATION=" + iso + "\n",
		"powershell":    `$Env:AWS_CREDENTIAL_EXPIRATION="` + iso + `"`,
		"windows-cmd":   "set AWS_CREDENTIAL_EXPIRATION=" + iso,
		"fish":          `set -gx AWS_CREDENTIAL_EXPIRATION "` + iso + `"`,
	}
	// As the AWS CLI and kivuli exec write it, as the JavaScript SDK
	// does, and in another zone.
	for _, v := range []string{iso, exp.Format("2006-01-02T15:04:05.000Z"), exp.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)} {
		t.Setenv("AWS_CREDENTIAL_EXPIRATION", v)
		for format, w := range want {
			t.Setenv(base.DepthVar, "") // each run in process counts itself
			r := runCmd(t, "", "creds", "--source", "chain", "--format", format)
			if r.Code != 0 || !strings.Contains(r.Stdout, w) {
				t.Errorf("%s from %s: exit %d %q %s; want %q", format, v, r.Code, r.Stdout, r.Stderr, w)
			}
		}
	}
	// Expired: refused, as botocore refuses them, not served a few
	// minutes longer.
	t.Setenv("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z")
	t.Setenv(base.DepthVar, "")
	r := runCmd(t, "", "creds", "--source", "chain")
	if r.Code != base.ExitNoCreds || !strings.Contains(r.Stderr, "expired at 2020-01-01T00:00:00+00:00") || r.Stdout != "" {
		t.Errorf("expired: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	for _, v := range []string{"tomorrow", "2025-06-01T12:34:56", "1748781296"} {
		t.Setenv("AWS_CREDENTIAL_EXPIRATION", v)
		t.Setenv(base.DepthVar, "")
		r := runCmd(t, "", "creds", "--source", "chain")
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "AWS_CREDENTIAL_EXPIRATION") || r.Stdout != "" || strings.Contains(r.Stderr, "env/secret") {
			t.Errorf("%q: exit %d %q %q; want %d naming AWS_CREDENTIAL_EXPIRATION", v, r.Code, r.Stdout, r.Stderr, base.ExitUsage)
		}
	}
}

// TestSourceIMDSChainHint (issue 19, point 12): IMDS refusing, the error
// says that --source chain would use the credentials in the environment
// or the shared files, naming where they are, never what they are; and
// only when they are there.
func TestSourceIMDSChainHint(t *testing.T) {
	const closed = "http://127.0.0.1:1" // nothing listens on port 1
	for _, c := range []struct {
		name  string
		env   []string // KEY=value
		files map[string]string
		want  []string // in the message; none: no hint
	}{
		{name: "nothing"},
		{name: "environment", env: []string{"AWS_ACCESS_KEY_ID=AKIAENVKEY", "AWS_SECRET_ACCESS_KEY=env/secret"},
			want: []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set: --source chain would use them"}},
		{name: "key ID alone", env: []string{"AWS_ACCESS_KEY_ID=AKIAENVKEY"}},
		{name: "default profile", files: map[string]string{"credentials": "[default]\naws_access_key_id = AKIAFILEKEY\naws_secret_access_key = file/secret\n"},
			want: []string{`the profile "default" in CREDS has credentials: --source chain would use them`}},
		{name: "AWS_PROFILE", env: []string{"AWS_PROFILE=dev"}, files: map[string]string{"config": "[profile dev]\ncredential_process = /bin/false\n"},
			want: []string{`the profile "dev" in CONFIG has credentials: --source chain (or --profile dev) would use them`}},
		{name: "AWS_PROFILE elsewhere", env: []string{"AWS_PROFILE=dev"}, files: map[string]string{"credentials": "[default]\naws_access_key_id = AKIAFILEKEY\naws_secret_access_key = file/secret\n"}},
		{name: "profile without credentials", files: map[string]string{"config": "[default]\nregion = eu-west-2\n"}},
		{name: "both", env: []string{"AWS_ACCESS_KEY_ID=AKIAENVKEY", "AWS_SECRET_ACCESS_KEY=env/secret"},
			files: map[string]string{"config": "[default]\nsso_session = corp\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-2\n"},
			want:  []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set", `the profile "default" in CONFIG has credentials`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testkit.ChainEnv(t)
			for _, kv := range c.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			for name, text := range c.files {
				os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600)
			}
			r := runCmd(t, "", "creds", "--imds-endpoint", closed)
			if r.Code != base.ExitNoCreds || !strings.Contains(r.Stderr, "not running on EC2") {
				t.Fatalf("exit %d %q", r.Code, r.Stderr)
			}
			if len(c.want) == 0 && strings.Contains(r.Stderr, "--source chain") {
				t.Errorf("a hint with nothing to use: %q", r.Stderr)
			}
			for _, w := range c.want {
				w = strings.NewReplacer("CREDS", filepath.Join(dir, "credentials"), "CONFIG", filepath.Join(dir, "config")).Replace(w)
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("%q\nwant %q", r.Stderr, w)
				}
			}
			for _, secret := range []string{"AKIAENVKEY", "env/secret", "AKIAFILEKEY", "file/secret", "/bin/false"} {
				if strings.Contains(r.Stderr, secret) {
					t.Errorf("the message shows %q: %q", secret, r.Stderr)
				}
			}
		})
	}
	// The files where the SDK looks without AWS_CONFIG_FILE and
	// AWS_SHARED_CREDENTIALS_FILE: under HOME.
	testkit.ChainEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.Unsetenv("AWS_CONFIG_FILE")
	os.Unsetenv("AWS_SHARED_CREDENTIALS_FILE")
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id = AKIAFILEKEY\naws_secret_access_key = file/secret\n"), 0o600)
	r := runCmd(t, "", "creds", "--imds-endpoint", closed)
	if want := `the profile "default" in ` + filepath.Join(home, ".aws", "credentials") + " has credentials"; r.Code != base.ExitNoCreds || !strings.Contains(r.Stderr, want) {
		t.Errorf("HOME: exit %d %q, want %q", r.Code, r.Stderr, want)
	}
}
