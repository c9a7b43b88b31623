package creds

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// Fixed credentials for the golden files: the shapes of real ones, with
// the characters ('/', '+', '=') a format must carry through.
var goldenCreds = aws.Credentials{
	AccessKeyID:     "ASIAEXAMPLE234567ABC",
	SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	SessionToken:    "IQoJb3JpZ2luX2VjEXAMPLE/token+with/slashes+and+plus==",
	CanExpire:       true,
	Expires:         time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC),
}

func TestCredsFormatsGolden(t *testing.T) {
	static := aws.Credentials{AccessKeyID: "AKIAEXAMPLESTATIC234", SecretAccessKey: "static/secret+key=="}
	for _, format := range credsFormats {
		t.Run(format, func(t *testing.T) {
			testkit.Golden(t, "creds/"+format+".golden", mustFormat(t, format, goldenCreds, "linux"))
			testkit.Golden(t, "creds/"+format+"-static.golden", mustFormat(t, format, static, "linux"))
		})
	}
	// The AWS CLI's Windows shells' formats end lines as Python's text
	// mode writes them there.
	for _, format := range []string{"powershell", "windows-cmd"} {
		got := mustFormat(t, format, goldenCreds, "windows")
		if want := strings.ReplaceAll(mustFormat(t, format, goldenCreds, "linux"), "\n", "\r\n"); got != want {
			t.Errorf("%s on windows:\n%q\nwant\n%q", format, got, want)
		}
	}
	if got := mustFormat(t, "env", goldenCreds, "windows"); strings.Contains(got, "\r") {
		t.Errorf("env on windows has CR: %q", got)
	}
}

// mustFormat is formatCreds for credentials it must accept.
func mustFormat(t *testing.T, format string, v aws.Credentials, goos string) string {
	t.Helper()
	s, err := formatCreds(format, v, goos)
	if err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return s
}

func TestIsoformat(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 6, 1, 12, 34, 56, 0, time.UTC), "2025-06-01T12:34:56+00:00"},
		{time.Date(2025, 6, 1, 12, 34, 56, 123456789, time.UTC), "2025-06-01T12:34:56.123456+00:00"},
		{time.Date(2025, 6, 1, 14, 34, 56, 0, time.FixedZone("CEST", 2*3600)), "2025-06-01T12:34:56+00:00"},
	} {
		if got := base.Isoformat(c.t); got != c.want {
			t.Errorf("isoformat(%v) = %q, want %q", c.t, got, c.want)
		}
	}
}

func TestPyQuote(t *testing.T) {
	// As Python's json.dumps("...") prints these.
	for in, want := range map[string]string{
		`a/b+c=`:     `"a/b+c="`,
		`q"\`:        `"q\"\\"`,
		"\x01\n\x7f": `"\u0001\n\u007f"`,
		"é😀":         `"\u00e9\ud83d\ude00"`,
		"<&>":        `"<&>"`,
	} {
		if got := pyQuote(in); got != want {
			t.Errorf("pyQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// The process format is read by the AWS SDK's own credential_process
// provider, as ~/.aws/config's credential_process runs it.
func TestCredsProcessParsedBySDK(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	r := runCmd(t, "", "creds", "--imds-endpoint", f.IMDS.URL)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	want := f.IMDS.Current()
	path := filepath.Join(t.TempDir(), "out.json")
	if err := os.WriteFile(path, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	p := processcreds.NewProvider("cat " + path)
	got, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken {
		t.Errorf("the SDK read %s, want %s", got.AccessKeyID, want.AccessKeyID)
	}
	if !got.CanExpire || !got.Expires.Equal(want.Expiration) {
		t.Errorf("the SDK read expiry %v (%t), want %v", got.Expires, got.CanExpire, want.Expiration)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || doc["Version"] != 1.0 {
		t.Errorf("not the process JSON: %v %v", doc, err)
	}
}

// Every format carries the emulator's credentials, and the expiry.
func TestCredsFormatsFromIMDS(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	c := f.IMDS.Current()
	exp := base.Isoformat(c.Expiration)
	for _, format := range credsFormats {
		r := runCmd(t, "", "creds", "--format", format, "--imds-endpoint", f.IMDS.URL)
		if r.Code != 0 {
			t.Fatalf("%s: exit %d: %s", format, r.Code, r.Stderr)
		}
		if format == "json" {
			exp = c.Expiration.UTC().Format(time.RFC3339)
		}
		for _, s := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, exp} {
			if !strings.Contains(r.Stdout, s) {
				t.Errorf("%s: output lacks %.20q:\n%s", format, s, r.Stdout)
			}
		}
	}
}

func TestCredsErrors(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{NoRole: true}, nil)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad format", []string{"creds", "--format", "yaml"}, base.ExitUsage, "--format"},
		{"no role", []string{"creds", "--imds-endpoint", f.IMDS.URL}, base.ExitNoCreds, "no IAM role"},
		{"not on EC2", []string{"creds", "--imds-endpoint", "http://127.0.0.1:1"}, base.ExitNoCreds, "not running on EC2"},
		{"bad source", []string{"creds", "--source", "vault"}, base.ExitUsage, "--source"},
		{"profile with imds", []string{"creds", "--source", "imds", "--profile", "x"}, base.ExitUsage, "--profile"},
		{"role with chain", []string{"creds", "--source", "chain", "--role", "x"}, base.ExitUsage, "--role"},
		{"argument", []string{"creds", "extra"}, base.ExitUsage, "unknown command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, "", c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) || r.Stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d and %q", r.Code, r.Stderr, r.Stdout, c.code, c.msg)
			}
			if !strings.HasPrefix(r.Stderr, "kivuli: ") || strings.HasPrefix(r.Stderr, "kivuli: kivuli: ") {
				t.Errorf("the message does not start with one kivuli: %q", r.Stderr)
			}
		})
	}
}
