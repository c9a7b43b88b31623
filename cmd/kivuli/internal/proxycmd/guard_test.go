package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// kivuli proxy logs and counts what the handler refuses to web pages (the
// rules themselves are the proxy package's TestProxyRefusesBrowsers), and
// its admin listener has the same rules.
func TestProxyAdminRefusesBrowsers(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, "--sign-host", "sqs.eu-west-2.amazonaws.com")
	for _, c := range []struct {
		br   testkit.BrowserRequest
		want int
	}{
		{testkit.BrowserRequest{Name: "a GET with a rebound Host", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Host": "evil.example:8080"}}, http.StatusMisdirectedRequest},
		{testkit.BrowserRequest{Name: "a cross-site form POST", Method: "POST", Path: "/", Body: "Action=PurgeQueue",
			Header: testkit.CrossSite(map[string]string{"Content-Type": "application/x-www-form-urlencoded"})}, http.StatusForbidden},
	} {
		if code, body := c.br.Send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
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
		br   testkit.BrowserRequest
		want int
	}{
		{testkit.BrowserRequest{Name: "metrics, rebound", Method: "GET", Path: "/metrics", Header: map[string]string{"Host": "evil.example:8081"}}, http.StatusMisdirectedRequest},
		{testkit.BrowserRequest{Name: "metrics, cross-site", Method: "GET", Path: "/metrics", Header: testkit.CrossSite(nil)}, http.StatusForbidden},
		{testkit.BrowserRequest{Name: "readyz", Method: "GET", Path: "/readyz"}, http.StatusOK},
	} {
		if code, body := c.br.Send(t, p.admin); code != c.want {
			t.Errorf("admin: %s: %d %q, want %d", c.br.Name, code, body, c.want)
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
