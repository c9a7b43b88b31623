package proxycmd

import (
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// --header-allow refuses what must never be signed, and bad names.
func TestProxyHeaderFlags(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	for _, args := range [][]string{
		{"--header-allow", "Connection"},
		{"--header-allow", "accept-encoding"},
		{"--header-allow", "X-Forwarded-For"},
		{"--header-allow", "Traceparent"},
		{"--header-allow", "Authorization"},
		{"--header-allow", "bad header"},
		{"--header-deny", "*"},
		{"--max-buffer", "2GiB", "--max-body", "1GiB"},
		{"--max-body", "lots"},
		{"--listen", "0.0.0.0:0"},
		{"--tls-cert", "x.pem"},
		{"--log-format", "xml"},
	} {
		r := runCmd(t, "", append(proxyArgs(f), args...)...)
		if r.Code != base.ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, r.Code, base.ExitUsage, r.Stderr)
		}
	}
	for _, up := range []string{"ftp://x", "https://", "https://user:pw@sts.amazonaws.com", "https://sts.amazonaws.com/?a=1", "sts.amazonaws.com"} {
		r := runCmd(t, "", "proxy", "--admin", "", "--imds-endpoint", f.IMDS.URL, "--upstream", up)
		if r.Code != base.ExitUsage {
			t.Errorf("--upstream %s: exit %d: %s", up, r.Code, r.Stderr)
		}
	}
	// The signer's refusals, at start, before listening.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "https://search.example.com"}, "--allow-host"},
		{[]string{"--upstream", "http://search-x.eu-west-2.es.amazonaws.com"}, "in clear"},
		{[]string{"--upstream", "https://ec2-203-0-113-25.compute-1.amazonaws.com"}, "not an AWS endpoint"},
		{[]string{"--upstream", "https://search.example.com", "--allow-host", "search.example.com"}, "--service"},
	} {
		r := runCmd(t, "", append([]string{"proxy", "--admin", "", "--imds-endpoint", f.IMDS.URL}, c.args...)...)
		if r.Code != base.ExitRefused || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%v: exit %d, want %d and %q: %s", c.args, r.Code, base.ExitRefused, c.want, r.Stderr)
		}
	}
}

// An --upstream path with a dot segment is refused at start: the prefix
// clients are held under is the one written.
func TestProxyUpstreamDotSegments(t *testing.T) {
	for _, u := range []string{"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/../ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/./ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/%2e%2e/ws-1"} {
		// A loopback IMDS that is not there: nothing leaves this machine
		// if the flag is let through.
		r := runCmd(t, "", "proxy", "--upstream", u, "--imds-endpoint", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "")
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--upstream") || !strings.Contains(r.Stderr, "'..'") {
			t.Errorf("%s: exit %d: %s", u, r.Code, r.Stderr)
		}
	}
}

// --allow-origin and --serve-host are checked as flags (what they let
// through is the proxy package's TestProxyAllowOrigin).
func TestProxyAllowOriginFlags(t *testing.T) {
	for _, bad := range [][]string{
		{"--allow-origin", "null"}, {"--allow-origin", "https://grafana.example/d"}, {"--allow-origin", "grafana.example"},
		{"--allow-origin", "ftp://grafana.example"}, {"--serve-host", "a/b"}, {"--serve-host", ""},
	} {
		r := runCmd(t, "", append([]string{"proxy", "--upstream", "https://sqs.eu-west-2.amazonaws.com"}, bad...)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, bad[0]) {
			t.Errorf("%v: exit %d %q", bad, r.Code, r.Stderr)
		}
	}
}
