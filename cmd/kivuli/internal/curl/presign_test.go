package curl

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// presignedExpires is the X-Amz-Expires of the URL that --presign printed.
func presignedExpires(t *testing.T, stdout string) int {
	t.Helper()
	u, err := url.Parse(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("not a URL: %q", stdout)
	}
	n, err := strconv.Atoi(u.Query().Get("X-Amz-Expires"))
	if err != nil {
		t.Fatalf("no X-Amz-Expires in %q", stdout)
	}
	return n
}

// A lifetime is seconds (as aws s3 presign --expires-in) or a duration
// with days, 1s to 7d, given with --expires-in or in --presign's older
// spellings; every other value is a usage error that states the range.
func TestCurlPresignLifetime(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	bucket := "my-bucket.s3.eu-west-2.amazonaws.com"
	target := "http://" + f.Host() + "/k"
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--presign"}, 300},
		{[]string{"--presign", "15"}, 15},
		{[]string{"--presign", "--expires-in", "3600"}, 3600},
		{[]string{"--presign", "--expires-in", "1d12h"}, 129600},
		{[]string{"--presign", "--expires-in=7d"}, 604800},
		{[]string{"--presign=15m"}, 900},
		{[]string{"--presign", "2h"}, 7200},
	} {
		r := runCmd(t, "", curlArgs(f, bucket, append(c.args, target)...)...)
		if r.Code != 0 {
			t.Errorf("%v: exit %d: %s", c.args, r.Code, r.Stderr)
			continue
		}
		if got := presignedExpires(t, r.Stdout); got != c.want {
			t.Errorf("%v: X-Amz-Expires=%d, want %d", c.args, got, c.want)
		}
	}
	for _, bad := range [][]string{
		{"--presign", "abc"}, {"--presign", "0"}, {"--presign", "1w"}, {"--presign", "-1m"},
		{"--presign", "8d"}, {"--presign=8d"}, {"--presign=0"},
		{"--presign", "--expires-in", "abc"}, {"--presign", "--expires-in", "0"},
		{"--presign", "--expires-in", "1w"}, {"--presign", "--expires-in", "-1m"},
		{"--presign", "--expires-in", "8d"}, {"--presign", "--expires-in", "604801"},
	} {
		r := runCmd(t, "", curlArgs(f, bucket, append(bad, target)...)...)
		if r.Code != base.ExitUsage || r.Stdout != "" || !strings.Contains(r.Stderr, "1s to 7d") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and the range", bad, r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, bad := range [][]string{
		{"--expires-in", "1h"}, {"--cap-to-credentials"},
		{"--presign=1h", "--expires-in", "2h"},
	} {
		r := runCmd(t, "", curlArgs(f, bucket, append(bad, target)...)...)
		if r.Code != base.ExitUsage || r.Stdout != "" || len(f.AWS.Records()) != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2", bad, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// A URL asked to outlive the credentials that sign it (6 h, as on EC2)
// dies with them: standard error says so, and --cap-to-credentials
// makes the URL say so itself.
func TestCurlPresignOutlivesCredentials(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{Lifetime: 6 * time.Hour}, nil)
	bucket := "my-bucket.s3.eu-west-2.amazonaws.com"
	target := "http://" + f.Host() + "/k"
	sixHours := int((6 * time.Hour).Seconds())

	r := runCmd(t, "", curlArgs(f, bucket, "--presign", "7d", target)...)
	if r.Code != 0 || presignedExpires(t, r.Stdout) != 604800 {
		t.Fatalf("7d: exit %d, %q: %s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"warning: the URL says it lives 168h0m0s, but it stops working in ", "when the credentials that sign it expire", "--cap-to-credentials"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("7d: stderr lacks %q: %s", want, r.Stderr)
		}
	}

	r = runCmd(t, "", curlArgs(f, bucket, "--presign", "--expires-in", "7d", "--cap-to-credentials", target)...)
	if r.Code != 0 {
		t.Fatalf("--cap-to-credentials: exit %d: %s", r.Code, r.Stderr)
	}
	if got := presignedExpires(t, r.Stdout); got > sixHours || got < sixHours-60 {
		t.Errorf("--cap-to-credentials: X-Amz-Expires=%d, want the credentials' %d s left", got, sixHours)
	}
	if !strings.Contains(r.Stderr, "until the credentials that sign it expire at") {
		t.Errorf("--cap-to-credentials: stderr %q", r.Stderr)
	}

	// A URL that dies before the credentials, or -s: nothing said.
	for _, args := range [][]string{{"--presign", "--expires-in", "1h"}, {"--presign", "--expires-in", "1h", "--cap-to-credentials"}, {"-s", "--presign", "--expires-in", "7d"}} {
		r = runCmd(t, "", curlArgs(f, bucket, append(args, target)...)...)
		if r.Code != 0 || r.Stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
}
