package proxycmd

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// TestProxyLogHidesQuerySecrets (issue 18, point 3): the access log hides
// a client's signature, token and access key ID however the client
// escapes the parameter names, as AWS reads them, in a query with other
// X-Amz- parameters or none; the credential's scope is kept.
func TestProxyLogHidesQuerySecrets(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	p := startProxy(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com")
	queries := []string{
		"q=1&X%2DAmz%2DSignature=abcdef0123456789",
		"q=2&x-amz-security-token=IQoJsecrettoken&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fes%2Faws4_request",
	}
	for _, q := range queries {
		resp, err := http.Get(p.url + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	p.waitRequests(t, len(queries))
	logs := p.logs.String()
	for _, secret := range []string{"abcdef0123456789", "IQoJsecrettoken", "AKIAIOSFODNN7EXAMPLE"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the access log holds %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{
		`query="q=1&X%2DAmz%2DSignature=REDACTED"`,
		`query="q=2&x-amz-security-token=REDACTED&X-Amz-Credential=REDACTED%2F20240101%2Fus-east-1%2Fes%2Faws4_request"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log lacks %s:\n%s", want, logs)
		}
	}
}

// The access log holds no header value: a client's stale signature,
// token and cookie stay out of it (the header split itself is the proxy
// package's TestProxyHeaders).
func TestProxyLogHidesHeaderSecrets(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	p := startProxy(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com")
	const (
		staleSig   = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		staleToken = "STALE-TOKEN-FROM-THE-CLIENT-0123456789"
		cookie     = "session=cookie-secret-0123456789"
	)
	resp, answer := wiretest.RawRequest(t, p.host(), "GET /logs/_search HTTP/1.1\nHost: localhost\n"+
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDSTALE/20000101/eu-west-2/es/aws4_request, SignedHeaders=host, "+staleSig+"\n"+
		"X-Amz-Security-Token: "+staleToken+"\nCookie: "+cookie+"\n\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	p.waitRequests(t, 1)
	logs := p.logs.String()
	for _, s := range []string{staleSig, staleToken, "cookie-secret", "AKIDSTALE"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}
