package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// asKivuli, set in the environment, makes the test binary run as the
// kivuli command (its arguments after "--"), so that the tests that need
// a process of their own (exec's signals and exit statuses, a child
// reading credentials) do not build a binary each.
const asKivuli = "KIVULI_TEST_AS_COMMAND"

// childArg, as the first argument, makes the test binary a command that
// kivuli exec runs (see childMain).
const childArg = "kivuli-test-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(childMain(os.Args[2:]))
	}
	if os.Getenv(asKivuli) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// run runs kivuli's command line args, as runContext does.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(context.Background(), newRoot, args, stdin, stdout, stderr, env)
}

// runContext runs kivuli's command line args in this process, until ctx
// ends, and returns the exit status.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return base.Execute(ctx, newRoot, args, stdin, stdout, stderr, env)
}

// result is what one run of the command gave.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the command in process with stdin and the test process's
// environment.
func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb, os.Environ())
	return result{out.String(), errb.String(), code}
}

// fixture is an emulated IMDS and a checking endpoint that knows its keys.
type fixture struct {
	imds *imdstest.Server
	aws  *sigv4test.Server
}

func newFixture(t *testing.T, cfg imdstest.Config, next http.Handler) *fixture {
	t.Helper()
	imds := imdstest.NewServer(cfg)
	t.Cleanup(imds.Close)
	v := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
		c, ok := imds.Lookup(id)
		return sigv4test.Credentials(c), ok
	}}
	aws := sigv4test.NewServer(v, next)
	t.Cleanup(aws.Close)
	return &fixture{imds: imds, aws: aws}
}

// host is the checking endpoint's host:port.
func (f *fixture) host() string { return f.aws.Listener.Addr().String() }

// secrets are the strings that must never appear in output other than
// the credentials printed on purpose: every secret key and token issued.
func (f *fixture) secrets() []string {
	c := f.imds.Current()
	return []string{c.SecretAccessKey, c.SessionToken}
}

// noSecrets fails t if s holds a secret of f or a signature.
func noSecrets(t *testing.T, f *fixture, what, s string) {
	t.Helper()
	for _, sec := range f.secrets() {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s holds a secret:\n%s", what, s)
		}
	}
	if m := signatureRE.FindString(s); m != "" && !strings.HasSuffix(m, "REDACTED") {
		t.Errorf("%s holds a signature %q", what, m)
	}
	for _, m := range sigParamRE.FindAllString(s, -1) {
		if !strings.HasSuffix(m, "=REDACTED") {
			t.Errorf("%s holds %q", what, m)
		}
	}
}

var sigParamRE = regexp.MustCompile(`X-Amz-Signature=[^&\s]*`)

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

// inMemoryCredentials returns an in-memory IMDS emulator of one-hour
// credentials, rotated 15 minutes before they expire, and kivuli
// credentials read from it, for tests on fake time (testing/synctest);
// both are closed when the test ends.
func inMemoryCredentials(t *testing.T) (*imdstest.Server, *kivuli.Credentials) {
	t.Helper()
	imds := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour, RotateBefore: 15 * time.Minute})
	t.Cleanup(imds.Close)
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint("http://imds.test"),
		kivuli.WithHTTPClient(&http.Client{Transport: imds.RoundTripper()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { creds.Close() })
	return imds, creds
}
