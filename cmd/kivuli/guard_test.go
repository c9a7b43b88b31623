package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
)

// The requests a web page on the same machine makes, as a browser sends
// them: simple cross-site requests (a form or text/plain POST, a GET),
// with Origin and Sec-Fetch-Site, and, after DNS rebinding, requests
// with the page's own name as Host.

// browserRequest is one request a test sends: its method, path, headers
// (Host among them) and body.
type browserRequest struct {
	name, method, path string
	header             map[string]string
	body               string
}

// send sends br to base (http://host:port) and returns the status and
// the body of the answer.
func (br browserRequest) send(t *testing.T, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(br.method, base+br.path, strings.NewReader(br.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range br.header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", br.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// crossSite are the headers of a cross-site request from evil.example.
func crossSite(h map[string]string) map[string]string {
	out := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// imdsToken gets a session token from the emulator at url, with host as
// the Host header ("" for the URL's).
func imdsToken(t *testing.T, url, host string) (int, string) {
	t.Helper()
	return browserRequest{name: "token PUT", method: "PUT", path: "/latest/api/token",
		header: map[string]string{"Host": host, "X-aws-ec2-metadata-token-ttl-seconds": "60"}}.send(t, url)
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
		br   browserRequest
		want int
	}{
		{browserRequest{name: "an IMDSv1 GET", method: "GET", path: creds}, http.StatusUnauthorized},
		{browserRequest{name: "an IMDSv1 GET from a rebound page", method: "GET", path: creds,
			header: map[string]string{"Host": "evil.example:" + port}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a token PUT with a rebound Host", method: "PUT", path: "/latest/api/token",
			header: map[string]string{"Host": "evil.example:" + port, "X-aws-ec2-metadata-token-ttl-seconds": "60"}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a GET with the token and a rebound Host", method: "GET", path: creds,
			header: withToken(map[string]string{"Host": "evil.example:" + port})}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a GET with the token from a cross-site page", method: "GET", path: creds,
			header: withToken(crossSite(nil))}, http.StatusForbidden},
		{browserRequest{name: "a GET with the token through a proxy", method: "GET", path: creds,
			header: withToken(map[string]string{"X-Forwarded-For": "192.0.2.1"})}, http.StatusForbidden},
		{browserRequest{name: "a token PUT through a proxy", method: "PUT", path: "/latest/api/token",
			header: map[string]string{"X-Forwarded-For": "192.0.2.1", "X-aws-ec2-metadata-token-ttl-seconds": "60"}}, http.StatusForbidden},
		// The names a client on this machine uses.
		{browserRequest{name: "Host localhost", method: "GET", path: creds, header: withToken(map[string]string{"Host": "localhost:" + port})}, http.StatusOK},
		{browserRequest{name: "Host localhost, no port", method: "GET", path: creds, header: withToken(map[string]string{"Host": "localhost"})}, http.StatusOK},
		{browserRequest{name: "Host [::1]", method: "GET", path: creds, header: withToken(map[string]string{"Host": "[::1]:" + port})}, http.StatusOK},
		{browserRequest{name: "Host 169.254.169.254", method: "GET", path: creds, header: withToken(map[string]string{"Host": "169.254.169.254"})}, http.StatusOK},
		{browserRequest{name: "the URL's Host", method: "GET", path: creds, header: withToken(map[string]string{})}, http.StatusOK},
	} {
		code, body := c.br.send(t, url)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
		if c.want != http.StatusOK && strings.Contains(body, secret) {
			t.Errorf("%s: the refusal holds the secret", c.br.name)
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
		br   browserRequest
		want int
	}{
		{browserRequest{name: "--v1: an IMDSv1 GET", method: "GET", path: creds}, http.StatusOK},
		{browserRequest{name: "--serve-host", method: "GET", path: creds, header: map[string]string{"Host": "host.docker.internal:1338"}}, http.StatusOK},
		{browserRequest{name: "another name", method: "GET", path: creds, header: map[string]string{"Host": "docker.internal:1338"}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "--v1: a GET through a proxy", method: "GET", path: creds, header: map[string]string{"X-Forwarded-For": "192.0.2.1"}}, http.StatusForbidden},
	} {
		if code, body := c.br.send(t, url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
	}
	for _, bad := range []string{"a/b", "*.example", "http://x"} {
		if r := runCmd(t, "", "imds", "--serve-host", bad); r.code != base.ExitUsage || !strings.Contains(r.stderr, "--serve-host") {
			t.Errorf("--serve-host %q: exit %d %q", bad, r.code, r.stderr)
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
		br   browserRequest
		want int
	}{
		{browserRequest{name: "a cross-site text/plain POST", method: "POST", path: "/kivuli/faults",
			header: crossSite(map[string]string{"Content-Type": "text/plain"}), body: "credentials:503"}, http.StatusForbidden},
		{browserRequest{name: "a cross-site form POST", method: "POST", path: "/kivuli/faults",
			header: crossSite(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), body: "credentials:503"}, http.StatusForbidden},
		{browserRequest{name: "a text/plain POST from a browser without Sec-Fetch-Site", method: "POST", path: "/kivuli/faults",
			header: map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, body: "credentials:503"}, http.StatusForbidden},
		{browserRequest{name: "a POST without Kivuli-Control", method: "POST", path: "/kivuli/faults",
			header: map[string]string{"Content-Type": "text/plain"}, body: "credentials:503"}, http.StatusForbidden},
		{browserRequest{name: "a rotation without Kivuli-Control", method: "POST", path: "/kivuli/rotate"}, http.StatusForbidden},
		{browserRequest{name: "the stats without Kivuli-Control", method: "GET", path: "/kivuli/stats"}, http.StatusForbidden},
		{browserRequest{name: "a rebound page's POST", method: "POST", path: "/kivuli/faults",
			header: map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin",
				"Kivuli-Control": "1", "Content-Type": "text/plain"}, body: "credentials:503"}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a cross-site page with the header", method: "POST", path: "/kivuli/faults",
			header: crossSite(map[string]string{"Kivuli-Control": "1"}), body: "credentials:503"}, http.StatusForbidden},
	} {
		if code, body := c.br.send(t, url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
	}
	for range 2 {
		code, body := browserRequest{name: "credentials", method: "GET", path: "/latest/meta-data/iam/security-credentials/kivuli-test-role"}.send(t, url)
		if code != http.StatusOK || !strings.Contains(body, `"Success"`) {
			t.Fatalf("after the refused requests, the credentials path answers %d %q", code, body)
		}
	}
	// A loopback client that sends the header still switches faults on.
	if code, body := (browserRequest{name: "with the header", method: "POST", path: "/kivuli/faults",
		header: map[string]string{"Kivuli-Control": "1", "Host": "localhost:" + port}, body: "credentials:503,times=1"}).send(t, url); code != http.StatusNoContent {
		t.Errorf("a POST with Kivuli-Control: %d %q", code, body)
	}
}

// exec --serve's endpoint answers a rebound Host and a cross-site page
// with neither credentials nor the token's check; on top of the token.
func TestExecServeRefusesBrowsers(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: secret, SessionToken: "token", CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	})
	srv := httptest.NewServer(newCredentialsHandler(creds, "tok3n"))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	auth := func(h map[string]string) map[string]string {
		h["Authorization"] = "tok3n"
		return h
	}
	for _, c := range []struct {
		br   browserRequest
		want int
	}{
		{browserRequest{name: "a rebound Host", method: "GET", path: credentialsPath, header: auth(map[string]string{"Host": "evil.example:" + port})}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a cross-site page", method: "GET", path: credentialsPath, header: auth(crossSite(nil))}, http.StatusForbidden},
		{browserRequest{name: "the URL's Host", method: "GET", path: credentialsPath, header: auth(map[string]string{})}, http.StatusOK},
		{browserRequest{name: "Host localhost", method: "GET", path: credentialsPath, header: auth(map[string]string{"Host": "localhost:" + port})}, http.StatusOK},
		{browserRequest{name: "no token", method: "GET", path: credentialsPath}, http.StatusUnauthorized},
	} {
		code, body := c.br.send(t, srv.URL)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
		if c.want != http.StatusOK && strings.Contains(body, secret) {
			t.Errorf("%s: the refusal holds the secret", c.br.name)
		}
	}
}

// kivuli proxy logs and counts what the handler refuses to web pages (the
// rules themselves are the proxy package's TestProxyRefusesBrowsers), and
// its admin listener has the same rules.
func TestProxyAdminRefusesBrowsers(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.fixture, "--sign-host", "sqs.eu-west-2.amazonaws.com")
	for _, c := range []struct {
		br   browserRequest
		want int
	}{
		{browserRequest{name: "a GET with a rebound Host", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Host": "evil.example:8080"}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a cross-site form POST", method: "POST", path: "/", body: "Action=PurgeQueue",
			header: crossSite(map[string]string{"Content-Type": "application/x-www-form-urlencoded"})}, http.StatusForbidden},
	} {
		if code, body := c.br.send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
	}
	if n := len(pf.requests()); n != 0 {
		t.Fatalf("the upstream received %d requests from web pages", n)
	}
	p.waitRequests(t, 2)
	if v := metricValue(t, p.admin, `kivuli_proxy_refused_requests_total{reason="host"}`); v != 1 {
		t.Errorf("refused for their Host: %v, want 1", v)
	}
	if v := metricValue(t, p.admin, `kivuli_proxy_refused_requests_total{reason="origin"}`); v != 1 {
		t.Errorf("refused for their origin: %v, want 1", v)
	}
	logs := p.logs.String()
	for _, want := range []string{"status=421", "status=403", "evil.example:8080"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log has no %q:\n%s", want, logs)
		}
	}
	// The admin listener has the same rules.
	for _, c := range []struct {
		br   browserRequest
		want int
	}{
		{browserRequest{name: "metrics, rebound", method: "GET", path: "/metrics", header: map[string]string{"Host": "evil.example:8081"}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "metrics, cross-site", method: "GET", path: "/metrics", header: crossSite(nil)}, http.StatusForbidden},
		{browserRequest{name: "readyz", method: "GET", path: "/readyz"}, http.StatusOK},
	} {
		if code, body := c.br.send(t, p.admin); code != c.want {
			t.Errorf("admin: %s: %d %q, want %d", c.br.name, code, body, c.want)
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
		if r.code != base.ExitUsage || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("%v: exit %d %q", bad, r.code, r.stderr)
		}
	}
}
