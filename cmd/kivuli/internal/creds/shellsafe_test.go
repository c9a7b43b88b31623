package creds

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// Issue 17, point 4: the shell formats print values as the AWS CLI does,
// unquoted or in double quotes that the shell still expands. Values AWS
// issues are safe there; anything else is refused, whatever the source.

// shellFormats are the formats of kivuli creds that print shell text.
var shellFormats = []string{"env", "env-no-export", "powershell", "windows-cmd", "fish"}

// shellsOf are the real shells that read a format's text on this
// machine's kind; PowerShell and cmd.exe cannot run here, so their
// formats are tested by the refusal alone (no output at all).
var shellsOf = map[string][]string{
	"env":           {"bash", "sh"},
	"env-no-export": {"bash", "sh"},
	"fish":          {"fish"},
}

// hostileValues are built to break out of each format's text. None has a
// space or a control character: those never reached the output (the
// library refused them as not visible ASCII), while these did.
var hostileValues = []string{
	// POSIX shells: unquoted values.
	"x;echo>pwned;#", "$(echo>pwned)", "`echo>pwned`", "x&&echo>pwned", "x|tee>pwned", "~root", "x*",
	// fish: double quotes, with $(...) expanded inside them (fish 3.4+).
	`x";echo>pwned;echo"`, `x\`, `$(echo>pwned)x`,
	// PowerShell: double quotes, $(...), `, and ; after a closing quote.
	`x";New-Item${env:TEMP}\pwned;"`, "x`", "$env:PATH",
	// cmd.exe: set's value is unquoted; &, |, % and ^ are read.
	"x&echo>pwned", "%COMSPEC%", "x^", "x<y", "x'y", "x!y",
	// base64url and JWT characters: not shell syntax, but never issued by AWS.
	"x-y_z.w",
}

// A credential set with the shapes, lengths and characters AWS issues.
const (
	issuedKey    = "ASIAQWERTYUIOPASDFGH"
	issuedSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	issuedToken  = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc=="
)

// imdsDoc is an IMDS credential document for key, secret and token.
func imdsDoc(t *testing.T, key, secret, token string, exp time.Time) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key,
		"SecretAccessKey": secret, "Token": token, "Expiration": exp.UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withHostile returns the issued set with v added to field i (0 key ID,
// 1 secret, 2 token).
func withHostile(i int, v string) (key, secret, token string) {
	key, secret, token = issuedKey, issuedSecret, issuedToken
	switch i {
	case 0:
		key = "ASIA" + v
	case 1:
		secret += v
	default:
		token += v
	}
	return key, secret, token
}

// TestCredsShellFormatsRefuseHostileValues: from IMDS (refused by the
// library's document parser), the SDK's chain (the environment) and a
// profile's credential_process (refused by the command), every shell
// format refuses credentials holding characters AWS never issues: exit
// status 3, a message naming what is wrong and quoting nothing, and no
// output, which the real shell then evaluates to show that nothing ran.
func TestCredsShellFormatsRefuseHostileValues(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	exp := time.Now().Add(time.Hour)
	for _, v := range hostileValues {
		for i, field := range []string{"key ID", "secret", "token"} {
			key, secret, token := withHostile(i, v)
			f.IMDS.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Body: imdsDoc(t, key, secret, token, exp)})
			for _, format := range shellFormats {
				r := runCmd(t, "", "creds", "--format", format, "--imds-endpoint", f.IMDS.URL)
				checkRefused(t, "imds, "+field+" "+v+", --format "+format, format, r, key, secret, token)
			}
			f.IMDS.ClearFaults()
		}
	}
	// The chain costs some 25 ms a run under -race: each case runs one
	// format, in turn, so that every format sees each source.
	dir := testkit.ChainEnv(t)
	n := 0
	for _, v := range []string{"x;echo>pwned;#", `x";echo>pwned;echo"`, "x&echo>pwned", "$(echo>pwned)"} {
		for i, field := range []string{"key ID", "secret", "token"} {
			key, secret, token := withHostile(i, v)
			t.Setenv("AWS_ACCESS_KEY_ID", key)
			t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
			t.Setenv("AWS_SESSION_TOKEN", token)
			format := shellFormats[n%len(shellFormats)]
			n++
			os.Setenv(base.DepthVar, "") // each in-process run counts itself in it
			r := runCmd(t, "", "creds", "--source", "chain", "--format", format)
			checkRefused(t, "chain, "+field+" "+v+", --format "+format, format, r, key, secret, token)
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
				os.Unsetenv(k)
			}

			doc, _ := json.Marshal(map[string]any{"Version": 1, "AccessKeyId": key, "SecretAccessKey": secret,
				"SessionToken": token, "Expiration": exp.UTC().Format(time.RFC3339)})
			writeFile(t, filepath.Join(dir, "doc.json"), string(doc))
			writeFile(t, filepath.Join(dir, "config"), "[profile hostile]\ncredential_process = cat "+filepath.Join(dir, "doc.json")+"\n")
			format = shellFormats[n%len(shellFormats)]
			n++
			os.Setenv(base.DepthVar, "")
			r = runCmd(t, "", "creds", "--profile", "hostile", "--format", format)
			checkRefused(t, "credential_process, "+field+" "+v+", --format "+format, format, r, key, secret, token)
		}
	}
}

// checkRefused fails t unless r is a refusal of credentials holding
// characters AWS never issues; output there should be none, it evaluates
// it in format's real shells, as eval "$(kivuli creds --format env)"
// would, to tell whether the value ran.
func checkRefused(t *testing.T, what, format string, r testkit.Result, secrets ...string) {
	t.Helper()
	if r.Code != base.ExitNoCreds || r.Stdout != "" || !strings.Contains(r.Stderr, "AWS never issues") {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, nothing printed, and why", what, r.Code, r.Stdout, r.Stderr, base.ExitNoCreds)
	}
	for _, s := range secrets {
		if strings.Contains(r.Stderr, s) {
			t.Errorf("%s: the message quotes a value: %q", what, r.Stderr)
		}
	}
	if r.Stdout == "" {
		return
	}
	for _, shell := range shellsOf[format] {
		if _, err := exec.LookPath(shell); err != nil {
			continue // the refusal has failed already; this only tells more
		}
		dir := t.TempDir()
		out, _ := runShell(shell, dir, r.Stdout) // a syntax error is no defence
		if _, err := os.Stat(filepath.Join(dir, "pwned")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s ran the hostile value (pwned: %v); it printed %q", what, shell, err, out)
		}
	}
}

// TestCredsShellFormatsEvaluated: for values AWS issues, the real shell
// that reads each format sets exactly the variables expected, to exactly
// the values (the golden files show the text is the AWS CLI's).
func TestCredsShellFormatsEvaluated(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xfb\xff\xbf\x3e\x01", 240)))
	for _, c := range [][3]string{
		{issuedKey, issuedSecret, issuedToken},
		{"AKIA_w_pattern_lower_0", "=+/secret+with/every=character", long + "="},
	} {
		f.IMDS.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Body: imdsDoc(t, c[0], c[1], c[2], exp)})
		want := map[string]string{"AWS_ACCESS_KEY_ID": c[0], "AWS_SECRET_ACCESS_KEY": c[1],
			"AWS_SESSION_TOKEN": c[2], "AWS_CREDENTIAL_EXPIRATION": "2030-01-02T03:04:05+00:00"}
		for format, shells := range shellsOf {
			r := runCmd(t, "", "creds", "--format", format, "--imds-endpoint", f.IMDS.URL)
			if r.Code != 0 {
				t.Fatalf("--format %s: exit %d: %s", format, r.Code, r.Stderr)
			}
			for _, shell := range shells {
				t.Run(c[0]+"/"+format+"/"+shell, func(t *testing.T) {
					if _, err := exec.LookPath(shell); err != nil {
						t.Skipf("%s is not installed (Debian: apt-get install %s)", shell, shell)
					}
					set, exported := evalShell(t, shell, t.TempDir(), r.Stdout)
					wantExported := want
					if format == "env-no-export" {
						wantExported = map[string]string{}
					}
					if !maps.Equal(set, want) || !maps.Equal(exported, wantExported) {
						t.Errorf("set %v, exported %v; want %v, exported %v", set, exported, want, wantExported)
					}
				})
			}
		}
		f.IMDS.ClearFaults()
	}
}

// evalShell evaluates text in shell (see runShell), and returns the AWS_
// variables then set, and those of them exported.
func evalShell(t *testing.T, shell, dir, text string) (set, exported map[string]string) {
	t.Helper()
	out, err := runShell(shell, dir, text)
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	set, exported = map[string]string{}, map[string]string{}
	count := ""
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		kind, kv, _ := strings.Cut(line, " ")
		k, v, _ := strings.Cut(kv, "=")
		switch kind {
		case "set":
			set[k] = v
		case "exported":
			exported[k] = v
		case "count":
			count = kv
		default:
			t.Errorf("%s printed %q", shell, line)
		}
	}
	if count != strconv.Itoa(len(set)) {
		t.Errorf("%s has %s AWS_ variables, %d of them known: %q", shell, count, len(set), out)
	}
	return set, exported
}

// runShell evaluates text in shell, in dir and with no AWS_ variable in
// its environment, as the manual says to (eval "$(...)" in POSIX shells,
// source in fish), then prints the AWS_ variables set ("set K=V"), their
// count ("count N") and those exported ("exported K=V").
func runShell(shell, dir, text string) ([]byte, error) {
	if err := os.WriteFile(filepath.Join(dir, "creds.out"), []byte(text), 0o600); err != nil {
		return nil, err
	}
	const names = "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_CREDENTIAL_EXPIRATION"
	script := `eval "$(cat creds.out)"
for v in ` + names + `; do eval "[ -n \"\${$v+x}\" ] && printf 'set %s=%s\n' \$v \"\$$v\""; done
printf 'count %s\n' "$(set | grep -c '^AWS_')"
env | sed -n 's/^AWS_/exported AWS_/p'
`
	args := []string{"-c", script}
	if shell == "fish" {
		script = `source creds.out
for v in ` + names + `; if set -q $v; printf 'set %s=%s\n' $v $$v; end; end
printf 'count %s\n' (set -n | string match -r '^AWS_' | count)
env | string replace -rf '^AWS_' 'exported AWS_'
true
`
		args = []string{"--no-config", "-c", script}
	}
	cmd := exec.Command(shell, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir}
	return cmd.CombinedOutput()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCredsShellFormatsRefuseAnyValue: the refusal is the formats' own,
// not the sources': whatever the credentials hold beyond what AWS issues
// (spaces, newlines, quotes, control and non-ASCII characters, which the
// library refuses earlier), no shell text is made, and the message names
// the variable, never the value. The JSON formats quote every value and
// are left as they are: what they print decodes to the value.
func TestCredsShellFormatsRefuseAnyValue(t *testing.T) {
	values := append([]string{"x; touch pwned", "x\ntouch pwned", "a\"b", "a'b", "a b", "\x00", "é", "\t"}, hostileValues...)
	vars := []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
	for _, v := range values {
		for i, name := range vars {
			key, secret, token := withHostile(i, v)
			c := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token, CanExpire: true, Expires: time.Now()}
			for _, format := range shellFormats {
				out, err := formatCreds(format, c, "linux")
				if out != "" || err == nil || base.ExitCode(err) != base.ExitNoCreds || !strings.Contains(err.Error(), name) ||
					strings.Contains(err.Error(), v) || !strings.Contains(err.Error(), "--format "+format) {
					t.Errorf("%s in %s, --format %s: %q, %v; want no text, exit status 3, and a message naming %s only", v, name, format, out, err, name)
				}
			}
			for _, format := range []string{"process", "json"} {
				out := mustFormat(t, format, c, "linux")
				var doc map[string]any
				if err := json.Unmarshal([]byte(out), &doc); err != nil || doc["AccessKeyId"] != key || doc["SecretAccessKey"] != secret || doc["SessionToken"] != token {
					t.Errorf("--format %s: %q does not decode to the values (%v)", format, out, err)
				}
			}
		}
	}
}

// The expiry is written by kivuli from a time, never from a source's
// text: whatever the time, it holds only characters no shell reads.
func TestCredsExpirationCharacters(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 1).In(time.FixedZone("odd", -(12*3600 + 34*60 + 56))), {},
	} {
		if s := base.Isoformat(tm); strings.Trim(s, "0123456789-:T.+") != "" {
			t.Errorf("isoformat(%v) = %q", tm, s)
		}
	}
}

// The manual states the rule, and its exit status, whatever the shared
// EXIT STATUS text becomes.
func TestCredsManualStatesShellRule(t *testing.T) {
	r := runCmd(t, "", "creds", "--help")
	for _, want := range []string{"letters, digits and _", "letters, digits, +, / and = (base64)",
		"exits with status 3", "with a shell\n         format, credentials holding characters AWS never issues."} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("kivuli creds --help lacks %q", want)
		}
	}
}
