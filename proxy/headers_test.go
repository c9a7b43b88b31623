package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// The client's signing headers are dropped, the proxy signs Host, x-amz-*,
// Content-MD5, Content-Type and SignHeaders', sends the others
// unsigned, never signs hop-by-hop, forwarding, Accept-Encoding and
// tracing headers, drops DropHeaders' and the headers the client named
// in Connection, and the upstream accepts the signature.
func TestProxyHeaders(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, Config{SignHost: "search-logs-abc.eu-west-2.es.amazonaws.com", ServeHosts: []string{"client.example"},
		SignHeaders: []string{"X-Custom", "x-opensearch-*"}, DropHeaders: []string{"Cookie,X-Internal-*"}})
	body := `{"index":{}}` + "\n" + `{"message":"hello"}` + "\n"
	sum := md5.Sum([]byte(body))
	const (
		staleSig   = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		staleToken = "STALE-TOKEN-FROM-THE-CLIENT-0123456789"
		cookie     = "session=cookie-secret-0123456789"
	)
	req := "POST /logs/_bulk HTTP/1.1\n" +
		"Host: client.example\n" +
		fmt.Sprintf("Content-Length: %d\n", len(body)) +
		"Content-Type: application/x-ndjson\n" +
		"Content-MD5: " + base64.StdEncoding.EncodeToString(sum[:]) + "\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDSTALE/20000101/eu-west-2/es/aws4_request, SignedHeaders=host, " + staleSig + "\n" +
		"X-Amz-Date: 20000101T000000Z\n" +
		"X-Amz-Security-Token: " + staleToken + "\n" +
		"X-Amz-Content-Sha256: 0000000000000000000000000000000000000000000000000000000000000000\n" +
		"Connection: keep-alive, X-Hop, X-Amz-Meta-Hop\n" +
		"X-Hop: 1\nX-Amz-Meta-Hop: 1\nKeep-Alive: timeout=5\nTe: trailers\n" +
		"X-Forwarded-For: 10.0.0.1\nVia: 1.1 corporate-proxy\nAccept-Encoding: gzip, br\n" +
		"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n" +
		"X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\nX-B3-Traceid: 463ac35c9f6413ad\nX-Request-Id: req-1\n" +
		"X-Amz-Meta-Color: blue\nX-Custom: yes\nX-Opensearch-Product-Origin: opensearch-dashboards\n" +
		"X-Internal-Route: a\nAccept: application/json\nCookie: " + cookie + "\nUser-Agent: grafana/11.0\n" +
		"\n" + body
	resp, answer := wiretest.RawRequest(t, p.host(), req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	recs := wiretest.Accepted(t, pf.AWS)
	got := pf.Requests()
	if len(recs) != 1 || len(got) != 1 {
		t.Fatalf("%d records, %d requests", len(recs), len(got))
	}
	wantSigned := []string{"content-length", "content-md5", "content-type", "host", "x-amz-content-sha256",
		"x-amz-date", "x-amz-meta-color", "x-amz-security-token", "x-custom", "x-opensearch-product-origin"}
	if signed := slices.Sorted(slices.Values(recs[0].SignedHeaders)); !slices.Equal(signed, wantSigned) {
		t.Errorf("signed headers\n got %v\nwant %v", signed, wantSigned)
	}
	h := got[0].Header
	for _, k := range []string{"X-Hop", "X-Amz-Meta-Hop", "Keep-Alive", "Cookie", "X-Internal-Route", "X-Forwarded-For", "Connection"} {
		if v, ok := h[k]; ok {
			t.Errorf("%s: %q reached the upstream", k, v)
		}
	}
	for k, want := range map[string]string{
		"Te": "trailers", "Accept-Encoding": "gzip, br", "Accept": "application/json", "User-Agent": "grafana/11.0",
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-B3-Traceid": "463ac35c9f6413ad",
		"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793", "X-Request-Id": "req-1",
		"Content-Type": "application/x-ndjson", "X-Amz-Meta-Color": "blue",
	} {
		if v := h.Get(k); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	if via := strings.Join(h.Values("Via"), ", "); !strings.Contains(via, "1.1 corporate-proxy") || !strings.Contains(via, "kivuli-") {
		t.Errorf("Via %q: want the client's entry and the proxy's", via)
	}
	if a := h.Get("Authorization"); strings.Contains(a, "AKIDSTALE") || strings.Contains(a, staleSig) {
		t.Errorf("the client's Authorization reached the upstream: %s", a)
	}
	if d := h.Get("X-Amz-Date"); strings.HasPrefix(d, "2000") || h.Get("X-Amz-Security-Token") == staleToken {
		t.Errorf("the client's X-Amz-Date or token reached the upstream")
	}
	if recs[0].PayloadHash != fmt.Sprintf("%x", sha256Sum(body)) {
		t.Errorf("payload hash %s", recs[0].PayloadHash)
	}
	// Connection may name any header, a signing one or a signed one
	// included: it is gone before signing, and the signer's own is sent.
	resp, answer = wiretest.RawRequest(t, p.host(), "GET /logs/_count HTTP/1.1\nHost: client.example\nConnection: X-Amz-Date, Authorization, Content-Type, X-Amz-Meta-Color\n"+
		"X-Amz-Date: 20000101T000000Z\nContent-Type: text/plain\nX-Amz-Meta-Color: red\n\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Connection naming signed headers: status %d: %s", resp.StatusCode, answer)
	}
	recs = wiretest.Accepted(t, pf.AWS)
	if signed := recs[len(recs)-1].SignedHeaders; slices.Contains(signed, "content-type") || slices.Contains(signed, "x-amz-meta-color") || !slices.Contains(signed, "x-amz-date") {
		t.Errorf("signed %v", signed)
	}
}

// SetHeaders are set on every request, signed, in place of the client's
// own under those names; the names that cannot be signed or are the
// signer's are refused.
func TestProxySetHeaders(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, Config{SignHost: "search-logs-abc.eu-west-2.es.amazonaws.com",
		SetHeaders: http.Header{"x-tenant": {"blue"}, "X-Api-Version": {"2024-01-01"}}})
	req, _ := http.NewRequest("GET", "http://"+p.host()+"/logs/_search", nil)
	req.Header.Set("X-Tenant", "red")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recs := wiretest.Accepted(t, pf.AWS)
	got := pf.Requests()
	if resp.StatusCode != http.StatusOK || len(recs) != 1 || len(got) != 1 {
		t.Fatalf("status %d, %d records, %d requests", resp.StatusCode, len(recs), len(got))
	}
	h := got[0].Header
	if v := h.Values("X-Tenant"); !slices.Equal(v, []string{"blue"}) || h.Get("X-Api-Version") != "2024-01-01" {
		t.Errorf("X-Tenant %q, X-Api-Version %q", v, h.Get("X-Api-Version"))
	}
	for _, k := range []string{"x-tenant", "x-api-version"} {
		if !slices.Contains(recs[0].SignedHeaders, k) {
			t.Errorf("%s not signed: %v", k, recs[0].SignedHeaders)
		}
	}
	for _, bad := range []string{"Connection", "Transfer-Encoding", "Host", "Authorization", "X-Amz-Date", "x-amz-security-token",
		"X-Amz-Acl", "Content-Length", "X-Forwarded-For", "Traceparent", "Accept-Encoding", "bad name"} {
		cfg := Config{Upstream: "https://sts.eu-west-2.amazonaws.com", SetHeaders: http.Header{bad: {"v"}}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Config.SetHeaders") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	cfg := Config{Upstream: "https://sts.eu-west-2.amazonaws.com", SetHeaders: http.Header{"X-Tenant": {"a\r\nX-Evil: 1"}}}
	if err := cfg.Validate(); err == nil {
		t.Error("a value with a line break was let through")
	}
}
