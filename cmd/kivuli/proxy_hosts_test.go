package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kivuli-go/kivuli/imdstest"
)

// The client never chooses where a signed request goes: whatever its Host
// header, absolute-form URI, X-Forwarded-Host or Forwarded say, and
// whatever its path looks like, each request goes to --upstream, signed
// for --sign-host, and a canary server that the client names receives
// nothing.
func TestProxyHostileHosts(t *testing.T) {
	var canaryHits atomic.Int32
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { canaryHits.Add(1) }))
	defer canary.Close()
	evil := canary.Listener.Addr().String()

	pf := newProxyFixture(t, nil)
	const signHost = "search-logs-abc.eu-west-2.es.amazonaws.com"
	// The names are served, so that the requests meet the routing: the
	// guard refuses them otherwise (TestProxyBrowserRequests).
	p := startProxy(t, pf.fixture, "--sign-host", signHost,
		"--serve-host", "sts.amazonaws.com", "--serve-host", "x", "--serve-host", "sts.us-east-1.amazonaws.com")

	cases := []struct {
		name, req string
		wantURI   string // the request URI the upstream received
	}{
		{"Host names the canary", "GET /a HTTP/1.1\nHost: " + evil + "\n\n", "/a"},
		{"absolute-form URI to the canary", "GET http://" + evil + "/b?x=1 HTTP/1.1\nHost: " + evil + "\n\n", "/b?x=1"},
		{"absolute-form URI to IMDS", "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\nHost: 169.254.169.254\n\n", "/latest/meta-data/"},
		{"absolute-form https URI", "GET https://sts.amazonaws.com/?Action=GetCallerIdentity HTTP/1.1\nHost: sts.amazonaws.com\n\n", "/?Action=GetCallerIdentity"},
		{"forwarding headers", "GET /c HTTP/1.1\nHost: x\nX-Forwarded-Host: " + evil + "\nX-Forwarded-Proto: http\nX-Forwarded-For: 10.0.0.1\nForwarded: host=" + evil + ";proto=http\n\n", "/c"},
		{"a path naming a host", "GET //" + evil + "/d HTTP/1.1\nHost: " + evil + "\n\n", "/" + evil + "/d"},
		{"dot segments", "GET /e/../../../" + evil + "/f HTTP/1.1\nHost: " + evil + "\n\n", "/" + evil + "/f"},
		{"an AWS Host", "GET /g HTTP/1.1\nHost: sts.us-east-1.amazonaws.com\n\n", "/g"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(pf.requests())
			resp, body := rawRequest(t, p.host(), c.req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			reqs := pf.requests()
			if len(reqs) != before+1 {
				t.Fatalf("the upstream received %d requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if got.host != signHost {
				t.Errorf("Host %q, want %q", got.host, signHost)
			}
			if got.uri != c.wantURI {
				t.Errorf("request URI %q, want %q", got.uri, c.wantURI)
			}
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v := got.header.Get(h); v != "" {
					t.Errorf("%s: %q reached the upstream", h, v)
				}
			}
		})
	}
	// A CONNECT is not a request to forward.
	resp, _ := rawRequest(t, p.host(), "CONNECT "+evil+" HTTP/1.1\nHost: "+evil+"\n\n")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: status %d", resp.StatusCode)
	}
	recs := accepted(t, pf.aws)
	for _, r := range recs {
		if r.Service != "es" || r.Region != "eu-west-2" {
			t.Errorf("scope %s/%s, want es/eu-west-2 from --sign-host", r.Service, r.Region)
		}
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the canary received %d requests", n)
	}
}

// An upstream that is the proxy's own address is refused at start, under
// every name for it; a loop the start cannot see (through another proxy)
// is cut at the first request that comes back, with 508.
func TestProxySelfLoop(t *testing.T) {
	f := newFixture(t, imdstestConfig(), nil)
	port := freePort(t)
	for _, c := range []struct{ listen, upstream string }{
		{"127.0.0.1:" + port, "http://127.0.0.1:" + port},
		{"127.0.0.1:" + port, "http://localhost:" + port},
		{"127.0.0.1:" + port, "http://127.0.0.1:" + port + "/base"},
		{"0.0.0.0:" + port, "http://127.0.0.1:" + port},
	} {
		t.Run(c.listen+" "+c.upstream, func(t *testing.T) {
			host := strings.TrimPrefix(c.upstream, "http://")
			host, _, _ = strings.Cut(host, "/")
			r := runCmd(t, "", "proxy", "--listen", c.listen, "--allow-remote", "--admin", "",
				"--imds-endpoint", f.imds.URL, "--upstream", c.upstream, "--allow-host", host,
				"--sign-host", "sts.eu-west-2.amazonaws.com")
			if r.code != exitUsage || !strings.Contains(r.stderr, "this proxy's own address") {
				t.Errorf("exit %d, want %d:\n%s", r.code, exitUsage, r.stderr)
			}
		})
	}

	// Two proxies in a ring: a -> b -> a.
	pa, pb := freePort(t), freePort(t)
	ring := func(listen, next string) []string {
		return []string{"proxy", "--listen", "127.0.0.1:" + listen, "--admin", "", "--imds-endpoint", f.imds.URL,
			"--upstream", "http://127.0.0.1:" + next, "--allow-host", "127.0.0.1:" + next,
			"--sign-host", "sts.eu-west-2.amazonaws.com", "--serve-host", "sts.eu-west-2.amazonaws.com"}
	}
	b := startRaw(t, f, ring(pb, pa))
	a := startRaw(t, f, ring(pa, pb))
	resp, body := rawRequest(t, a.host(), "GET /?Action=GetCallerIdentity HTTP/1.1\nHost: localhost\n\n")
	if resp.StatusCode != http.StatusLoopDetected || !strings.Contains(body, "before") {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
	_ = b
}

// imdstestConfig is the emulator's default configuration.
func imdstestConfig() imdstest.Config { return imdstest.Config{} }

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
