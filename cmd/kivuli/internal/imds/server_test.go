package imds

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// imdsToken gets a session token from the emulator at url, with host as
// the Host header ("" for the URL's).
func imdsToken(t *testing.T, url, host string) (int, string) {
	t.Helper()
	return wiretest.BrowserRequest{Name: "token PUT", Method: "PUT", Path: "/latest/api/token",
		Header: map[string]string{"Host": host, "X-aws-ec2-metadata-token-ttl-seconds": "60"}}.Send(t, url)
}

// kivuli imds --from serves real credentials: IMDSv2 is required, a
// rebound Host, a cross-site page and a relayed request are refused, and
// no refusal carries a secret.
func TestIMDSFromRefusesBrowsers(t *testing.T) {
	upstream := imdstest.NewServer(imdstest.Config{})
	defer upstream.Close()
	url := startIMDS(t, "--from", "imds", "--imds-endpoint", upstream.URL)
	port := url[strings.LastIndexByte(url, ':')+1:]
	secret := upstream.Current().SecretAccessKey
	const creds = "/latest/meta-data/iam/security-credentials/kivuli-test-role"

	code, tok := imdsToken(t, url, "")
	if code != http.StatusOK {
		t.Fatalf("token PUT: %d %s", code, tok)
	}
	withToken := func(h map[string]string) map[string]string {
		h["X-aws-ec2-metadata-token"] = tok
		return h
	}
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "an IMDSv1 GET", Method: "GET", Path: creds}, http.StatusUnauthorized},
		{wiretest.BrowserRequest{Name: "an IMDSv1 GET from a rebound page", Method: "GET", Path: creds,
			Header: map[string]string{"Host": "evil.example:" + port}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a token PUT with a rebound Host", Method: "PUT", Path: "/latest/api/token",
			Header: map[string]string{"Host": "evil.example:" + port, "X-aws-ec2-metadata-token-ttl-seconds": "60"}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a GET with the token and a rebound Host", Method: "GET", Path: creds,
			Header: withToken(map[string]string{"Host": "evil.example:" + port})}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a GET with the token from a cross-site page", Method: "GET", Path: creds,
			Header: withToken(wiretest.CrossSite(nil))}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a GET with the token through a proxy", Method: "GET", Path: creds,
			Header: withToken(map[string]string{"X-Forwarded-For": "192.0.2.1"})}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a token PUT through a proxy", Method: "PUT", Path: "/latest/api/token",
			Header: map[string]string{"X-Forwarded-For": "192.0.2.1", "X-aws-ec2-metadata-token-ttl-seconds": "60"}}, http.StatusForbidden},
		// The names a client on this machine uses.
		{wiretest.BrowserRequest{Name: "Host localhost", Method: "GET", Path: creds, Header: withToken(map[string]string{"Host": "localhost:" + port})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "Host localhost, no port", Method: "GET", Path: creds, Header: withToken(map[string]string{"Host": "localhost"})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "Host [::1]", Method: "GET", Path: creds, Header: withToken(map[string]string{"Host": "[::1]:" + port})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "Host 169.254.169.254", Method: "GET", Path: creds, Header: withToken(map[string]string{"Host": "169.254.169.254"})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "the URL's Host", Method: "GET", Path: creds, Header: withToken(map[string]string{})}, http.StatusOK},
	} {
		code, body := c.br.Send(t, url)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
		if c.want != http.StatusOK && strings.Contains(body, secret) {
			t.Errorf("%s: the refusal holds the secret", c.br.Name)
		}
	}
}

// --v1 serves real credentials without a token when told to, and
// --serve-host names a Host besides IP addresses and localhost.
func TestIMDSFromFlags(t *testing.T) {
	upstream := imdstest.NewServer(imdstest.Config{})
	defer upstream.Close()
	url := startIMDS(t, "--from", "imds", "--imds-endpoint", upstream.URL, "--v1", "--serve-host", "Host.Docker.Internal")
	const creds = "/latest/meta-data/iam/security-credentials/kivuli-test-role"
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "--v1: an IMDSv1 GET", Method: "GET", Path: creds}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "--serve-host", Method: "GET", Path: creds, Header: map[string]string{"Host": "host.docker.internal:1338"}}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "another name", Method: "GET", Path: creds, Header: map[string]string{"Host": "docker.internal:1338"}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "--v1: a GET through a proxy", Method: "GET", Path: creds, Header: map[string]string{"X-Forwarded-For": "192.0.2.1"}}, http.StatusForbidden},
	} {
		if code, body := c.br.Send(t, url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
	for _, bad := range []string{"a/b", "*.example", "http://x"} {
		if r := runCmd(t, "", "imds", "--serve-host", bad); r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--serve-host") {
			t.Errorf("--serve-host %q: exit %d %q", bad, r.Code, r.Stderr)
		}
	}
}

// The control endpoint changes nothing for a web page: a cross-site
// text/plain or form POST, or a request without Kivuli-Control, gets 403;
// a rebound page, which may send any header to its own origin, gets 421;
// and the credentials are served as before.
func TestIMDSControlRefusesBrowsers(t *testing.T) {
	url := startIMDS(t)
	port := url[strings.LastIndexByte(url, ':')+1:]
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "a cross-site text/plain POST", Method: "POST", Path: "/kivuli/faults",
			Header: wiretest.CrossSite(map[string]string{"Content-Type": "text/plain"}), Body: "credentials:503"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a cross-site form POST", Method: "POST", Path: "/kivuli/faults",
			Header: wiretest.CrossSite(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), Body: "credentials:503"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a text/plain POST from a browser without Sec-Fetch-Site", Method: "POST", Path: "/kivuli/faults",
			Header: map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, Body: "credentials:503"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a POST without Kivuli-Control", Method: "POST", Path: "/kivuli/faults",
			Header: map[string]string{"Content-Type": "text/plain"}, Body: "credentials:503"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a rotation without Kivuli-Control", Method: "POST", Path: "/kivuli/rotate"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "the stats without Kivuli-Control", Method: "GET", Path: "/kivuli/stats"}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a rebound page's POST", Method: "POST", Path: "/kivuli/faults",
			Header: map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin",
				"Kivuli-Control": "1", "Content-Type": "text/plain"}, Body: "credentials:503"}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a cross-site page with the header", Method: "POST", Path: "/kivuli/faults",
			Header: wiretest.CrossSite(map[string]string{"Kivuli-Control": "1"}), Body: "credentials:503"}, http.StatusForbidden},
	} {
		if code, body := c.br.Send(t, url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
	for range 2 {
		code, body := wiretest.BrowserRequest{Name: "credentials", Method: "GET", Path: "/latest/meta-data/iam/security-credentials/kivuli-test-role"}.Send(t, url)
		if code != http.StatusOK || !strings.Contains(body, `"Success"`) {
			t.Fatalf("after the refused requests, the credentials path answers %d %q", code, body)
		}
	}
	// A loopback client that sends the header still switches faults on.
	if code, body := (wiretest.BrowserRequest{Name: "with the header", Method: "POST", Path: "/kivuli/faults",
		Header: map[string]string{"Kivuli-Control": "1", "Host": "localhost:" + port}, Body: "credentials:503,times=1"}).Send(t, url); code != http.StatusNoContent {
		t.Errorf("a POST with Kivuli-Control: %d %q", code, body)
	}
}
