package proxycmd

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// --custom-headers (aws-sigv4-proxy's NAME=VALUE list) sets headers on
// every upstream request, signed, in place of the client's; its values
// are never logged nor shown in a refusal.
func TestProxyCustomHeaders(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com",
		"--custom-headers", "X-Tenant=blue,X-Api-Key=key-secret-0123", "--custom-headers", "x-api-version = 2024-01-01")
	req, _ := http.NewRequest("GET", p.url+"/logs/_search", nil)
	req.Header.Set("X-Tenant", "red")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := pf.Accepted(t)
	got := pf.Requests()
	if resp.StatusCode != http.StatusOK || len(got) != 1 {
		t.Fatalf("status %d, %d requests", resp.StatusCode, len(got))
	}
	h := got[0].Header
	if !slices.Equal(h.Values("X-Tenant"), []string{"blue"}) || h.Get("X-Api-Key") != "key-secret-0123" || h.Get("X-Api-Version") != "2024-01-01" {
		t.Errorf("headers upstream: %v", h)
	}
	for _, k := range []string{"x-tenant", "x-api-key", "x-api-version"} {
		if !slices.Contains(rec.SignedHeaders, k) {
			t.Errorf("%s not signed: %v", k, rec.SignedHeaders)
		}
	}
	p.waitRequests(t, 1)
	if log := p.logs.String(); strings.Contains(log, "key-secret") || !strings.Contains(log, "set: X-Api-Key,X-Api-Version,X-Tenant") {
		t.Errorf("the log:\n%s", log)
	}
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	for _, c := range []struct{ spec, want string }{
		{"Authorization=Bearer-secret-0123", "--custom-headers Authorization"},
		{"X-Amz-Security-Token=secret-0123", "--custom-headers X-Amz-Security-Token"},
		{"Host=evil.example", "--custom-headers Host"},
		{"Connection=close", "--custom-headers Connection"},
		{"X-Forwarded-For=10.0.0.1", "--custom-headers X-Forwarded-For"},
		{"X-A=1,Bearer secret-0123", "entry 2 is not NAME=VALUE"},
		{"bad name=secret-0123", "--custom-headers \"bad name\""},
	} {
		r := runCmd(t, "", append(proxyArgs(f), "--custom-headers", c.spec)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, c.want) || strings.Contains(r.Stderr, "secret-0123") {
			t.Errorf("%s: exit %d, want %q and no value:\n%s", c.spec, r.Code, c.want, r.Stderr)
		}
	}
}
