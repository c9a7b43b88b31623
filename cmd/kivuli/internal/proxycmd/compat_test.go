package proxycmd

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// aws-sigv4-proxy's command line is refused with each of its flags'
// kivuli equivalents in one message (exit 2), not "unknown flag" for the
// first one.
func TestProxyPeerFlags(t *testing.T) {
	r := runCmd(t, "", "proxy", "--imds-endpoint", noIMDS,
		"--name", "es", "--region", "eu-west-2", "--host", "search-x.eu-west-2.es.amazonaws.com", "--port", ":8080",
		"-s", "X-Api-Key", "--strip", "Cookie", "--upstream-url-scheme", "http", "--log-signing-process",
		"--duplicate-headers", "Authorization", "--transport.idle-conn-timeout", "40s")
	if r.Code != base.ExitUsage {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	for _, want := range []string{
		"--name es is aws-sigv4-proxy's flag: use --service es",
		"--host search-x.eu-west-2.es.amazonaws.com is aws-sigv4-proxy's flag: use --upstream https://search-x.eu-west-2.es.amazonaws.com",
		"--port :8080 is aws-sigv4-proxy's flag: leave it out: kivuli proxy listens on 127.0.0.1:8080",
		"--listen 0.0.0.0:8080 --allow-remote",
		"--strip X-Api-Key is aws-sigv4-proxy's flag: use --header-deny X-Api-Key",
		"--strip Cookie is aws-sigv4-proxy's flag: use --header-deny Cookie",
		"--upstream-url-scheme http is aws-sigv4-proxy's flag: use the scheme of --upstream: --upstream http://HOST",
		"--log-signing-process is aws-sigv4-proxy's flag: use -v (--verbose)",
		"--duplicate-headers Authorization is aws-sigv4-proxy's flag: kivuli proxy has none",
		"--transport.idle-conn-timeout 40s is aws-sigv4-proxy's flag: use --idle-conn-timeout 40s",
		"--upstream is required",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("no %q in:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "--region") {
		t.Errorf("--region is kivuli's too, yet refused:\n%s", r.Stderr)
	}
	for _, c := range []struct{ args, want string }{
		{"--port 127.0.0.1:9000", "use --listen 127.0.0.1:9000"},
		{"--port :9000", "use --listen 127.0.0.1:9000, for this machine's programs"},
	} {
		r := runCmd(t, "", append([]string{"proxy", "--upstream", "https://sts.eu-west-2.amazonaws.com"}, strings.Fields(c.args)...)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%s: exit %d, want %q:\n%s", c.args, r.Code, c.want, r.Stderr)
		}
	}
}

// The flags that kivuli proxy shares with aws-sigv4-proxy, name and
// meaning, just work.
func TestProxySharedPeerFlags(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	p := startProxy(t, f, "--sign-host", "my-bucket.s3.eu-west-2.amazonaws.com", "--region", "eu-west-2",
		"--unsigned-payload", "-v")
	resp, err := http.Get(p.url + "/key")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := f.Accepted(t)
	if resp.StatusCode != http.StatusOK || rec.Region != "eu-west-2" || rec.PayloadHash != "UNSIGNED-PAYLOAD" {
		t.Errorf("%d, %s, %s", resp.StatusCode, rec.Region, rec.PayloadHash)
	}
	if !strings.Contains(p.logs.String(), "canonical") {
		t.Errorf("-v logged no canonical request:\n%s", p.logs.String())
	}
}
