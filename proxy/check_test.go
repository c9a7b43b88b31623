package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The client never chooses where a signed request goes: whatever its Host
// header, absolute-form URI, X-Forwarded-Host or Forwarded say, and
// whatever its path looks like, each request goes to Upstream, signed
// for SignHost, and a canary server that the client names receives
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
	p := startProxy(t, pf.fixture, Config{SignHost: signHost,
		ServeHosts: []string{"sts.amazonaws.com", "x", "sts.us-east-1.amazonaws.com"}})

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
			t.Errorf("scope %s/%s, want es/eu-west-2 from SignHost", r.Service, r.Region)
		}
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the canary received %d requests", n)
	}
}

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

// The proxy refuses a rebound Host and browser requests from other
// origins, signs and sends nothing for them, and counts them; the
// requests of programs that are not browsers, and of the proxy's own
// origin, go through.
func TestProxyRefusesBrowsers(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.fixture, Config{SignHost: "sqs.eu-west-2.amazonaws.com"})
	port := p.url[strings.LastIndexByte(p.url, ':')+1:]
	const purge = "Action=PurgeQueue&QueueUrl=https%3A%2F%2Fsqs.eu-west-2.amazonaws.com%2F123456789012%2Fjobs"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	refused := []struct {
		br   browserRequest
		want int
	}{
		{browserRequest{name: "a GET with a rebound Host", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Host": "evil.example:8080"}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a rebound page's same-origin POST", method: "POST", path: "/", body: purge,
			header: map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin", "Content-Type": form["Content-Type"]}}, http.StatusMisdirectedRequest},
		{browserRequest{name: "a cross-site form POST", method: "POST", path: "/", body: purge, header: crossSite(form)}, http.StatusForbidden},
		{browserRequest{name: "a cross-site text/plain POST", method: "POST", path: "/", body: purge,
			header: crossSite(map[string]string{"Content-Type": "text/plain"})}, http.StatusForbidden},
		{browserRequest{name: "a form POST from a browser without Sec-Fetch-Site", method: "POST", path: "/", body: purge,
			header: map[string]string{"Origin": "http://evil.example", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{browserRequest{name: "a cross-site GET without Origin (an img)", method: "GET", path: "/?Action=PurgeQueue",
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{browserRequest{name: "a same-site page on another port", method: "POST", path: "/", body: purge,
			header: map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{browserRequest{name: "a sandboxed page (Origin null)", method: "POST", path: "/", body: purge,
			header: map[string]string{"Origin": "null", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{browserRequest{name: "an https Origin for the http listener", method: "POST", path: "/", body: purge,
			header: map[string]string{"Origin": "https://127.0.0.1:" + port, "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{browserRequest{name: "a cross-site WebSocket handshake", method: "GET", path: "/gremlin",
			header: crossSite(map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})}, http.StatusForbidden},
	}
	for _, c := range refused {
		if code, body := c.br.send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
	}
	if n := len(pf.requests()); n != 0 {
		t.Fatalf("the upstream received %d requests from web pages", n)
	}
	allowed := []browserRequest{
		{name: "curl", method: "GET", path: "/?Action=ListQueues"},
		{name: "an SDK's form POST", method: "POST", path: "/", body: "Action=ListQueues", header: form},
		{name: "Host localhost", method: "GET", path: "/?Action=ListQueues", header: map[string]string{"Host": "localhost:" + port}},
		{name: "Host [::1]", method: "GET", path: "/?Action=ListQueues", header: map[string]string{"Host": "[::1]:" + port}},
		{name: "typed in the address bar", method: "GET", path: "/?Action=ListQueues", header: map[string]string{"Sec-Fetch-Site": "none"}},
		{name: "a page the proxy served", method: "POST", path: "/", body: "Action=ListQueues",
			header: map[string]string{"Origin": "http://127.0.0.1:" + port, "Sec-Fetch-Site": "same-origin", "Content-Type": form["Content-Type"]}},
	}
	for _, br := range allowed {
		if code, body := br.send(t, p.url); code != http.StatusOK {
			t.Errorf("%s: %d %q, want 200", br.name, code, body)
		}
	}
	if n := len(pf.requests()); n != len(allowed) {
		t.Errorf("the upstream received %d requests, want %d", n, len(allowed))
	}
	p.waitRequests(t, len(refused)+len(allowed))
	if v := p.metric(`kivuli_proxy_refused_requests_total{reason="host"}`); v != 2 {
		t.Errorf("refused for their Host: %v, want 2", v)
	}
	if v := p.metric(`kivuli_proxy_refused_requests_total{reason="origin"}`); v != float64(len(refused)-2) {
		t.Errorf("refused for their origin: %v, want %d", v, len(refused)-2)
	}
}

// AllowOrigins lets the pages of one origin through, and ServeHosts
// serves a name.
func TestProxyAllowOrigin(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.fixture, Config{SignHost: "sqs.eu-west-2.amazonaws.com",
		AllowOrigins: []string{"https://Grafana.example"}, ServeHosts: []string{"kivuli-proxy:8080"}})
	for _, c := range []struct {
		br   browserRequest
		want int
	}{
		{browserRequest{name: "the allowed origin, cross-site", method: "POST", path: "/", body: "Action=ListQueues",
			header: map[string]string{"Origin": "https://grafana.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}}, http.StatusOK},
		{browserRequest{name: "the allowed origin, default port", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Origin": "https://grafana.example:443", "Sec-Fetch-Site": "cross-site"}}, http.StatusOK},
		{browserRequest{name: "another port", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Origin": "https://grafana.example:8443", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{browserRequest{name: "another scheme", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Origin": "http://grafana.example", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{browserRequest{name: "a served name, another port", method: "GET", path: "/?Action=ListQueues",
			header: map[string]string{"Host": "kivuli-proxy:9000"}}, http.StatusOK},
	} {
		if code, body := c.br.send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.name, code, body, c.want)
		}
	}
}
