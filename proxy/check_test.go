package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kivuli-go/kivuli/internal/wiretest"
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
	p := startProxy(t, pf.Fixture, Config{SignHost: signHost,
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
			before := len(pf.Requests())
			resp, body := wiretest.RawRequest(t, p.host(), c.req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			reqs := pf.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("the upstream received %d requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if got.Host != signHost {
				t.Errorf("Host %q, want %q", got.Host, signHost)
			}
			if got.URI != c.wantURI {
				t.Errorf("request URI %q, want %q", got.URI, c.wantURI)
			}
			for _, h := range []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("%s: %q reached the upstream", h, v)
				}
			}
		})
	}
	// A CONNECT is not a request to forward.
	resp, _ := wiretest.RawRequest(t, p.host(), "CONNECT "+evil+" HTTP/1.1\nHost: "+evil+"\n\n")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("CONNECT: status %d", resp.StatusCode)
	}
	recs := wiretest.Accepted(t, pf.AWS)
	for _, r := range recs {
		if r.Service != "es" || r.Region != "eu-west-2" {
			t.Errorf("scope %s/%s, want es/eu-west-2 from SignHost", r.Service, r.Region)
		}
	}
	if n := canaryHits.Load(); n != 0 {
		t.Errorf("the canary received %d requests", n)
	}
}

// The proxy refuses a rebound Host and browser requests from other
// origins, signs and sends nothing for them, and counts them; the
// requests of programs that are not browsers, and of the proxy's own
// origin, go through.
func TestProxyRefusesBrowsers(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, Config{SignHost: "sqs.eu-west-2.amazonaws.com"})
	port := p.url[strings.LastIndexByte(p.url, ':')+1:]
	const purge = "Action=PurgeQueue&QueueUrl=https%3A%2F%2Fsqs.eu-west-2.amazonaws.com%2F123456789012%2Fjobs"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	refused := []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "a GET with a rebound Host", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Host": "evil.example:8080"}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a rebound page's same-origin POST", Method: "POST", Path: "/", Body: purge,
			Header: map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin", "Content-Type": form["Content-Type"]}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a cross-site form POST", Method: "POST", Path: "/", Body: purge, Header: wiretest.CrossSite(form)}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a cross-site text/plain POST", Method: "POST", Path: "/", Body: purge,
			Header: wiretest.CrossSite(map[string]string{"Content-Type": "text/plain"})}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a form POST from a browser without Sec-Fetch-Site", Method: "POST", Path: "/", Body: purge,
			Header: map[string]string{"Origin": "http://evil.example", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a cross-site GET without Origin (an img)", Method: "GET", Path: "/?Action=PurgeQueue",
			Header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a same-site page on another port", Method: "POST", Path: "/", Body: purge,
			Header: map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a sandboxed page (Origin null)", Method: "POST", Path: "/", Body: purge,
			Header: map[string]string{"Origin": "null", "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "an https Origin for the http listener", Method: "POST", Path: "/", Body: purge,
			Header: map[string]string{"Origin": "https://127.0.0.1:" + port, "Content-Type": form["Content-Type"]}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a cross-site WebSocket handshake", Method: "GET", Path: "/gremlin",
			Header: wiretest.CrossSite(map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})}, http.StatusForbidden},
	}
	for _, c := range refused {
		if code, body := c.br.Send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
	if n := len(pf.Requests()); n != 0 {
		t.Fatalf("the upstream received %d requests from web pages", n)
	}
	allowed := []wiretest.BrowserRequest{
		{Name: "curl", Method: "GET", Path: "/?Action=ListQueues"},
		{Name: "an SDK's form POST", Method: "POST", Path: "/", Body: "Action=ListQueues", Header: form},
		{Name: "Host localhost", Method: "GET", Path: "/?Action=ListQueues", Header: map[string]string{"Host": "localhost:" + port}},
		{Name: "Host [::1]", Method: "GET", Path: "/?Action=ListQueues", Header: map[string]string{"Host": "[::1]:" + port}},
		{Name: "typed in the address bar", Method: "GET", Path: "/?Action=ListQueues", Header: map[string]string{"Sec-Fetch-Site": "none"}},
		{Name: "a page the proxy served", Method: "POST", Path: "/", Body: "Action=ListQueues",
			Header: map[string]string{"Origin": "http://127.0.0.1:" + port, "Sec-Fetch-Site": "same-origin", "Content-Type": form["Content-Type"]}},
	}
	for _, br := range allowed {
		if code, body := br.Send(t, p.url); code != http.StatusOK {
			t.Errorf("%s: %d %q, want 200", br.Name, code, body)
		}
	}
	if n := len(pf.Requests()); n != len(allowed) {
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
	p := startProxy(t, pf.Fixture, Config{SignHost: "sqs.eu-west-2.amazonaws.com",
		AllowOrigins: []string{"https://Grafana.example"}, ServeHosts: []string{"kivuli-proxy:8080"}})
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "the allowed origin, cross-site", Method: "POST", Path: "/", Body: "Action=ListQueues",
			Header: map[string]string{"Origin": "https://grafana.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "the allowed origin, default port", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Origin": "https://grafana.example:443", "Sec-Fetch-Site": "cross-site"}}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "another port", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Origin": "https://grafana.example:8443", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "another scheme", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Origin": "http://grafana.example", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "a served name, another port", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Host": "kivuli-proxy:9000"}}, http.StatusOK},
	} {
		if code, body := c.br.Send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
}
