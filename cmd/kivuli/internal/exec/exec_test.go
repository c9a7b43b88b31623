package exec

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// otherSources are variables that would give the command's SDK other
// credentials, or take precedence over kivuli's (issue 19, point 13):
// none of them reaches the command, in either mode.
var otherSources = []string{
	"AWS_ACCESS_KEY_ID=AKIACALLER", "AWS_SECRET_ACCESS_KEY=caller", "AWS_SESSION_TOKEN=stale",
	"AWS_SECURITY_TOKEN=stale", "AWS_CREDENTIAL_EXPIRATION=2000-01-01T00:00:00Z",
	"AWS_ACCESS_KEY=AKIACALLER", "AWS_SECRET_KEY=caller", "AWS_ACCOUNT_ID=111122223333",
	"AWS_PROFILE=foo", "AWS_DEFAULT_PROFILE=foo",
	"AWS_ROLE_ARN=arn:aws:iam::111122223333:role/other", "AWS_WEB_IDENTITY_TOKEN_FILE=/nonexistent/token", "AWS_ROLE_SESSION_NAME=other",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9/", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/other",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN=other", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/nonexistent/token",
	"AWS_CREDENTIAL_FILE=/nonexistent/ec2", "AWS_BEARER_TOKEN_BEDROCK=other",
}

// TestExecEnvironment: the command's credential environment is exactly
// kivuli's, in both modes; the settings that choose no credentials stay.
func TestExecEnvironment(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	cur := f.IMDS.Current()
	for _, serve := range []bool{false, true} {
		args := []string{"exec", "--imds-endpoint", f.IMDS.URL, "--region", "eu-west-2"}
		want := map[string]string{
			"AWS_ACCESS_KEY_ID":         cur.AccessKeyID,
			"AWS_SECRET_ACCESS_KEY":     cur.SecretAccessKey,
			"AWS_SESSION_TOKEN":         cur.SessionToken,
			"AWS_CREDENTIAL_EXPIRATION": base.Isoformat(cur.Expiration),
		}
		if serve {
			args = append(args, "--serve")
			want = map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:", "AWS_CONTAINER_AUTHORIZATION_TOKEN": ""}
		}
		want["AWS_REGION"], want["AWS_DEFAULT_REGION"] = "eu-west-2", "eu-west-2"
		want["AWS_MAX_ATTEMPTS"] = "7" // a setting, not a source
		c := testkit.Command(t, append(append(args, "--"), testkit.Child("env")...)...)
		c.Env = append(append(c.Env, otherSources...), "AWS_MAX_ATTEMPTS=7")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("--serve %v: %v: %s", serve, err, out)
		}
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			got[k] = v
		}
		for _, kv := range otherSources {
			k, _, _ := strings.Cut(kv, "=")
			if _, kivuliSets := want[k]; kivuliSets {
				continue // checked below: kivuli's value, not the caller's
			}
			if v, ok := got[k]; ok {
				t.Errorf("--serve %v: the caller's %s=%.30q reached the command", serve, k, v)
			}
		}
		for k, w := range want {
			if v := got[k]; !strings.HasPrefix(v, w) || v == "" || strings.Contains(strings.Join(otherSources, " "), k+"="+v) {
				t.Errorf("--serve %v: %s = %.30q, want %.30q", serve, k, v, w)
			}
		}
	}
}

// AWS_PROFILE naming a profile the command's files lack no longer stops
// its SDK (issue 19, point 13): it reads kivuli's credentials.
func TestExecProfileNotPassed(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	c := testkit.Command(t, append([]string{"exec", "--imds-endpoint", f.IMDS.URL, "--region", "eu-west-2", "--"}, testkit.Child("sdk")...)...)
	c.Env = append(c.Env, "AWS_PROFILE=foo")
	out, err := c.CombinedOutput()
	if want := "key " + f.IMDS.Current().AccessKeyID + " EnvConfigCredentials "; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("%v: the command said %q, want %q", err, out, want)
	}
}

func TestExecExitStatus(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	notExec := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for _, c := range []struct {
		name string
		argv []string
		code int
	}{
		{"status 0", testkit.Child("exit", "0"), 0},
		{"status 7", testkit.Child("exit", "7"), 7},
		{"status 255", testkit.Child("exit", "255"), 255},
		{"not found", []string{"no-such-command-kivuli"}, base.ExitNotFound},
		{"not executable", []string{notExec}, base.ExitCannotRun},
	} {
		for _, serve := range []bool{false, true} {
			name := c.name
			args := []string{"exec", "--imds-endpoint", f.IMDS.URL}
			if serve {
				name += " --serve"
				args = append(args, "--serve")
			}
			t.Run(name, func(t *testing.T) {
				cmd := testkit.Command(t, append(append(args, "--"), c.argv...)...)
				out, err := cmd.CombinedOutput()
				if code := cmd.ProcessState.ExitCode(); code != c.code {
					t.Errorf("exit %d (%v), want %d: %s", code, err, c.code, out)
				}
			})
		}
	}
	// Without credentials the command does not run.
	cmd := testkit.Command(t, append([]string{"exec", "--imds-endpoint", "http://127.0.0.1:1", "--"}, testkit.Child("exit", "0")...)...)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != base.ExitNoCreds {
		t.Errorf("no IMDS: exit %d: %s", code, out)
	}
}

// Signals reach the command, directly (execve) or passed on (--serve),
// and a command ended by a signal ends kivuli by the same signal.
func TestExecSignals(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	for _, serve := range []bool{false, true} {
		args := []string{"exec", "--imds-endpoint", f.IMDS.URL}
		name := "execve"
		if serve {
			args, name = append(args, "--serve"), "--serve"
		}
		t.Run(name+" handled", func(t *testing.T) {
			cmd := testkit.Command(t, append(append(args, "--"), testkit.Child("signals")...)...)
			out := startLines(t, cmd)
			expect(t, out, "ready")
			cmd.Process.Signal(syscall.SIGUSR1)
			expect(t, out, "usr1")
			cmd.Process.Signal(syscall.SIGUSR1)
			expect(t, out, "usr1")
			cmd.Process.Signal(syscall.SIGTERM)
			expect(t, out, "term")
			if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 42 {
				t.Errorf("exit %v, want 42", err)
			}
		})
		t.Run(name+" killed", func(t *testing.T) {
			cmd := testkit.Command(t, append(append(args, "--"), testkit.Child("wait")...)...)
			out := startLines(t, cmd)
			expect(t, out, "ready")
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("wait: %v", err)
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("kivuli ended %v, want killed by SIGTERM", cmd.ProcessState)
			}
		})
	}
}

func startLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return testkit.Lines(t, bufio.NewScanner(stdout))
}

func expect(t *testing.T, out <-chan string, want string) {
	t.Helper()
	select {
	case got := <-out:
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no %q in 20s", want)
	}
}

// exec --serve: a child's AWS SDK reads the endpoint by itself, and the
// endpoint refuses a request without the token.
func TestExecServeSDKChild(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	cmd := testkit.Command(t, append([]string{"exec", "--serve", "--imds-endpoint", f.IMDS.URL, "--region", "eu-west-2", "--"}, testkit.Child("sdk")...)...)
	cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID=AKIASTALE", "AWS_SECRET_ACCESS_KEY=stale", "AWS_PROFILE=other")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cur := f.IMDS.Current()
	for _, want := range []string{
		"key " + cur.AccessKeyID + " CredentialsEndpointProvider ",
		"without-token 401",
		"region eu-west-2",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child said %q, want %q", out, want)
		}
	}
}

// The endpoint of exec --serve, read by the SDK's endpointcreds provider
// through the SDK's cache (as config wraps it, five minutes ahead) across
// many rotations of the instance role's credentials, on fake time: every
// set the SDK holds is valid, and it follows the rotations.
func TestExecServeAcrossRotations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		imds, creds := testkit.InMemoryCredentials(t)
		h := newCredentialsHandler(creds, "tok3n")
		provider := endpointcreds.New("http://127.0.0.1"+credentialsPath, func(o *endpointcreds.Options) {
			o.AuthorizationToken = "tok3n"
			o.HTTPClient = &http.Client{Transport: testkit.HandlerTransport{Handler: h}}
		})
		cache := aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute })
		keys := map[string]bool{}
		for range 6 * 60 { // six hours, a minute at a time
			v, err := cache.Retrieve(context.Background())
			if err != nil {
				t.Fatalf("at %v: %v", time.Now(), err)
			}
			c, ok := imds.Lookup(v.AccessKeyID)
			if !ok || c.SecretAccessKey != v.SecretAccessKey || c.SessionToken != v.SessionToken {
				t.Fatalf("the SDK holds %s, which IMDS did not issue", v.AccessKeyID)
			}
			// The SDK's cache moves Expires five minutes ahead; what
			// matters is that the credentials are still valid.
			if !c.Expiration.After(time.Now()) {
				t.Fatalf("at %v the SDK holds credentials that expired at %v", time.Now(), c.Expiration)
			}
			keys[v.AccessKeyID] = true
			time.Sleep(time.Minute)
		}
		if len(keys) < 6 {
			t.Errorf("the SDK saw %d sets over six one-hour lifetimes", len(keys))
		}
		// Without the token, or with another, nothing is served.
		for _, tok := range []string{"", "tok3", "tok3n2"} {
			req := httptest.NewRequest("GET", "http://127.0.0.1"+credentialsPath, nil)
			req.RemoteAddr = "127.0.0.1:5000"
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "Secret") {
				t.Errorf("token %q: %d %s", tok, w.Code, w.Body)
			}
		}
		req := httptest.NewRequest("GET", "http://127.0.0.1"+credentialsPath, nil)
		req.RemoteAddr = "192.0.2.7:5000"
		req.Header.Set("Authorization", "tok3n")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden {
			t.Errorf("from a non-loopback peer: %d", w.Code)
		}
	})
}
