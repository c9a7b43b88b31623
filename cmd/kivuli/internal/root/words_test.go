package root

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// goNameRE is a Go name of the library's API in a message: a field of its
// types, one of its options or types, or a field of net/http's.
var goNameRE = regexp.MustCompile(`\b(Transport|Config|Policy|Request|URL|Options)\.[A-Z]|\bkivuli\.[A-Z]|\bContentLength\b|\bGetBody\b|\bAlgorithmSigV4`)

// TestNoGoNames (issue 19, point 5): every refusal of every command names
// a flag or an environment variable, never a Go field of the library.
func TestNoGoNames(t *testing.T) {
	testkit.ChainEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("data"), 0o600)
	imds := []string{"--imds-endpoint", f.IMDS.URL}
	tunnel := func(host string, args ...string) []string {
		return append(append([]string{"curl", "--allow-host", f.Host(), "-H", "Host: " + host}, imds...), args...)
	}
	proxy := func(args ...string) []string {
		return append(append([]string{"proxy", "--admin", "", "--listen", "127.0.0.1:0"}, imds...), args...)
	}
	// An IMDS that does not tell the region, which kivuli proxy asks for
	// when nothing else names it.
	regionless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/placement/") || strings.Contains(r.URL.Path, "/instance-identity/") {
			http.NotFound(w, r)
			return
		}
		f.IMDS.ServeHTTP(w, r)
	}))
	t.Cleanup(regionless.Close)
	for _, c := range []struct {
		args  []string
		stdin string
		want  string // a word the message must hold
	}{
		{append([]string{"curl", "https://example.com/"}, imds...), "", "--allow-host"},
		{append([]string{"curl", "--allow-host", "10.0.0.1", "https://10.0.0.1/"}, imds...), "", "--service"},
		{append([]string{"curl", "--allow-host", "x.example", "--service", "es", "https://x.example/"}, imds...), "", "--region"},
		{append([]string{"curl", "--allow-host", "*.com", "https://x.com/"}, imds...), "", "--allow-host"},
		{append([]string{"curl", "-H", "Host: evil.example", "https://sts.amazonaws.com/"}, imds...), "", "-H 'Host:'"},
		{append([]string{"curl", "-H", "Host: s3.amazonaws.com", "https://sts.amazonaws.com/"}, imds...), "", "-H 'Host:'"},
		{append([]string{"curl", "http://sts.amazonaws.com/"}, imds...), "", "--allow-host"},
		{tunnel("b.s3.eu-west-2.amazonaws.com", "-T", "-", "--size", "100", "http://"+f.Host()+"/k"), "short", "--size"},
		{tunnel("b.s3.eu-west-2.amazonaws.com", "-T", file, "-H", "X-Amz-Sdk-Checksum-Algorithm: md5", "http://"+f.Host()+"/k"), "", "--checksum"},
		{[]string{"curl", "--imds-endpoint", "127.0.0.1:1338", "https://sts.amazonaws.com/"}, "", "--imds-endpoint"},
		{append([]string{"curl", "--presign", "--expires-in", "8d", "https://b.s3.eu-west-2.amazonaws.com/k"}, imds...), "", "--expires-in"},
		{append([]string{"curl", "--dry-run", "--region", "eu-west2", "https://search-x.eu-west-2.es.amazonaws.com/"}, imds...), "", "--region"},
		{append([]string{"curl", "--presign", "https://b.s3.eu-west-2.amazonaws.com/k?X-Amz-Signature=abc"}, imds...), "", "--presign"},
		{append([]string{"curl", "--role", "no role!", "https://sts.amazonaws.com/"}, imds...), "", "--role"},
		{[]string{"creds", "--imds-endpoint", "localhost"}, "", "--imds-endpoint"},
		{append([]string{"creds", "--role", "no role!"}, imds...), "", "--role"},
		{[]string{"exec", "--imds-endpoint", "ftp://x", "--", "true"}, "", "--imds-endpoint"},
		{[]string{"imds", "--lifetime", "1s", "--rotate-before", "1h"}, "", "--"},
		{proxy(), "", "--upstream"},
		{proxy("--upstream", "https://search.example.com"), "", "--allow-host"},
		{proxy("--upstream", "https://search.example.com", "--allow-host", "search.example.com"), "", "--service"},
		{proxy("--upstream", "https://search.example.com", "--allow-host", "search.example.com", "--service", "es", "--imds-endpoint", regionless.URL), "", "--region"},
		{proxy("--upstream", "https://sqs.eu-west-2.amazonaws.com", "--max-buffer", "2GiB", "--max-body", "1GiB"), "", "--max-buffer"},
		{proxy("--upstream", "https://sqs.eu-west-2.amazonaws.com", "--header-allow", "Connection"), "", "--header-allow"},
		{proxy("--upstream", "https://sqs.eu-west-2.amazonaws.com", "--sign-host", "a b"), "", "--sign-host"},
		{proxy("--upstream", "https://sqs.eu-west-2.amazonaws.com", "--spool-dir", file), "", "--spool-dir"},
		{proxy("--upstream", "https://sqs.eu-west-2.amazonaws.com/a/../b"), "", "--upstream"},
		{proxy("--upstream", "http://sqs.eu-west-2.amazonaws.com"), "", "--allow-host"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCmd(t, c.stdin, c.args...)
			t.Logf("exit %d: %s", r.Code, r.Stderr)
			if r.Code == 0 {
				t.Fatalf("exit 0: %s", r.Stdout)
			}
			if m := goNameRE.FindString(r.Stderr); m != "" {
				t.Errorf("exit %d: the message names %q, a Go name:\n%s", r.Code, m, r.Stderr)
			}
			if !strings.Contains(r.Stderr, c.want) {
				t.Errorf("exit %d: the message does not name %s:\n%s", r.Code, c.want, r.Stderr)
			}
			if r.Code == base.ExitFailure {
				t.Errorf("exit 1 for a refusal: %s", r.Stderr)
			}
		})
	}
}
