package proxycmd

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

const (
	esName  = "search-logs-abc.eu-west-2.es.amazonaws.com"
	apsName = "aps-workspaces.eu-west-2.amazonaws.com"
)

// upstreamOf is an upstream that checks every signature with the keys
// secrets knows, and records what it accepts.
func upstreamOf(t *testing.T, secrets func(string) (sigv4test.Credentials, bool)) (*sigv4test.Server, *wiretest.Recorder) {
	t.Helper()
	rec := wiretest.NewRecorder(nil)
	s := sigv4test.NewServer(&sigv4test.Verifier{Secrets: secrets}, rec)
	t.Cleanup(s.Close)
	return s, rec
}

// imdsKeys are the keys f's IMDS issued.
func imdsKeys(f *wiretest.Fixture) func(string) (sigv4test.Credentials, bool) {
	return func(id string) (sigv4test.Credentials, bool) {
		c, ok := f.IMDS.Lookup(id)
		return sigv4test.Credentials(c), ok
	}
}

// routeArgs are the arguments of a proxy with routes and no --upstream,
// its credentials from f's IMDS.
func routeArgs(f *wiretest.Fixture, args ...string) []string {
	return append([]string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--imds-endpoint", f.IMDS.URL}, args...)
}

// kivuli proxy --route and --routes: each request goes to its route's
// upstream by Host or by path prefix (removed), signed for that route's
// scope, with that route's body limit; a request no route takes gets 404
// and reaches nothing; the metrics and the access log carry the route.
func TestProxyRoutes(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	es, esRec := upstreamOf(t, imdsKeys(f))
	aps, apsRec := upstreamOf(t, imdsKeys(f))
	esHost, apsHost := es.Listener.Addr().String(), aps.Listener.Addr().String()
	file := filepath.Join(t.TempDir(), "routes.json")
	os.WriteFile(file, []byte(`{"routes": [{"name": "es", "host": "es.localhost", "upstream": "http://`+esHost+`",
		"sign-host": "`+esName+`", "allow-host": ["`+esHost+`"], "max-body": "10B", "header-allow": ["X-Opensearch-*"]}]}`), 0o600)
	p := startRaw(t, f, routeArgs(f, "--routes", file,
		"--route", "/aps/=http://"+apsHost+"/workspaces/ws-1,sign-host="+apsName+",allow-host="+apsHost))

	get := func(host, path string) (*http.Response, string) {
		return wiretest.RawRequest(t, p.host(), "GET "+path+" HTTP/1.1\nHost: "+host+"\n\n")
	}
	if resp, body := get("es.localhost", "/_cluster/health"); resp.StatusCode != 200 {
		t.Fatalf("es: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("localhost", "/aps/api/v1/query?query=up"); resp.StatusCode != 200 {
		t.Fatalf("aps: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("localhost", "/_cluster/health"); resp.StatusCode != 404 || !strings.Contains(body, "--route and --routes") {
		t.Errorf("no route: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("localhost", "/aps/../x"); resp.StatusCode != 400 {
		t.Errorf("a path that climbs out of /aps/: %d %q", resp.StatusCode, body)
	}
	resp, body := wiretest.RawRequest(t, p.host(), "POST /_doc HTTP/1.1\nHost: es.localhost\nContent-Length: 11\n\n01234567890")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("11 bytes to es (max-body 10B): %d %q", resp.StatusCode, body)
	}
	resp, body = wiretest.RawRequest(t, p.host(), "POST /aps/api/v1/write HTTP/1.1\nHost: localhost\nContent-Length: 11\n\n01234567890")
	if resp.StatusCode != 200 {
		t.Errorf("11 bytes to aps: %d %q", resp.StatusCode, body)
	}
	if got := esRec.Requests(); len(got) != 1 || got[0].URI != "/_cluster/health" || got[0].Host != esName {
		t.Errorf("es received %v", got)
	}
	if got := apsRec.Requests(); len(got) != 2 || got[0].URI != "/workspaces/ws-1/api/v1/query?query=up" {
		t.Errorf("aps received %v", got)
	}
	for _, r := range wiretest.Accepted(t, es) {
		if r.Service != "es" {
			t.Errorf("es signed for %s", r.Service)
		}
	}
	for _, r := range wiretest.Accepted(t, aps) {
		if r.Service != "aps" {
			t.Errorf("aps signed for %s", r.Service)
		}
	}
	<-p.logs.requests(6)
	for series, want := range map[string]float64{
		`kivuli_proxy_requests_total{code="200",method="GET",route="es"}`:      1,
		`kivuli_proxy_requests_total{code="200",method="GET",route="/aps/"}`:   1,
		`kivuli_proxy_requests_total{code="404",method="GET",route=""}`:        1,
		`kivuli_proxy_requests_total{code="413",method="POST",route="es"}`:     1,
		`kivuli_proxy_upstream_requests_total{code="200",route="/aps/"}`:       2,
		`kivuli_proxy_refused_requests_total{reason="no_route"}`:               1,
		`kivuli_proxy_refused_requests_total{reason="path"}`:                   1,
		`kivuli_proxy_limited_requests_total{limit="max_requests",route="es"}`: 0,
	} {
		if got := metricValue(t, p.admin, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	logs := p.logs.String()
	for _, want := range []string{"msg=request route=es method=GET path=/_cluster/health", "msg=request route=/aps/ method=GET", `msg=request route="" method=GET path=/_cluster/health query="" status=404`, "route.es.host=es.localhost", "route./aps/.path_prefix=/aps/"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log has no %q:\n%s", want, logs)
		}
	}
}

// A route's role-arn: its requests are signed with the role, assumed once
// (for two routes) with the instance role's credentials at a loopback STS
// that checks that signature; its upstream knows the assumed keys only.
// Another route signs with the instance role.
func TestProxyRouteRoleARN(t *testing.T) {
	testkit.ChainEnv(t)
	var mu sync.Mutex
	var calls []string
	sts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		calls = append(calls, r.Form.Get("Action")+" "+r.Form.Get("RoleArn"))
		mu.Unlock()
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAASSUMEDROLE12345</AccessKeyId><SecretAccessKey>assumed/secret</SecretAccessKey>
<SessionToken>assumed/token+AQ==</SessionToken><Expiration>` + exp + `</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/prom/x</Arn></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`))
	})
	f := wiretest.NewFixture(t, imdstest.Config{}, sts) // the IMDS, and STS checking the instance role's signature
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://"+f.Host())
	assumed := func(id string) (sigv4test.Credentials, bool) {
		return sigv4test.Credentials{AccessKeyID: id, SecretAccessKey: "assumed/secret", SessionToken: "assumed/token+AQ=="}, id == "ASIAASSUMEDROLE12345"
	}
	role, roleRec := upstreamOf(t, assumed)
	plain, plainRec := upstreamOf(t, imdsKeys(f))
	rh, ph := role.Listener.Addr().String(), plain.Listener.Addr().String()
	const arn = "arn:aws:iam::123456789012:role/prom"
	p := startRaw(t, f, routeArgs(f, "--region", "eu-west-2",
		"--route", "/ws1/=http://"+rh+"/workspaces/ws-1,sign-host="+apsName+",allow-host="+rh+",role-arn="+arn,
		"--route", "/ws2/=http://"+rh+"/workspaces/ws-2,sign-host="+apsName+",allow-host="+rh+",role-arn="+arn,
		"--route", "es.localhost=http://"+ph+",sign-host="+esName+",allow-host="+ph))
	for _, c := range []struct{ host, path string }{{"localhost", "/ws1/api/v1/query"}, {"localhost", "/ws2/api/v1/query"}, {"es.localhost", "/_search"}} {
		if resp, body := wiretest.RawRequest(t, p.host(), "GET "+c.path+" HTTP/1.1\nHost: "+c.host+"\n\n"); resp.StatusCode != 200 {
			t.Errorf("%s%s: %d %s", c.host, c.path, resp.StatusCode, body)
		}
	}
	for _, r := range wiretest.Accepted(t, role) {
		if r.AccessKeyID != "ASIAASSUMEDROLE12345" || r.Service != "aps" {
			t.Errorf("the role's upstream got %s signed for %s with %s", r.Path, r.Service, r.AccessKeyID)
		}
	}
	if n := len(roleRec.Requests()); n != 2 {
		t.Errorf("the role's upstream accepted %d requests, want 2", n)
	}
	for _, r := range wiretest.Accepted(t, plain) {
		if r.AccessKeyID != f.IMDS.Current().AccessKeyID {
			t.Errorf("the other route signed with %s", r.AccessKeyID)
		}
	}
	if n := len(plainRec.Requests()); n != 1 {
		t.Errorf("the other upstream accepted %d requests, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || calls[0] != "AssumeRole "+arn {
		t.Errorf("STS was asked %q, want one AssumeRole", calls)
	}
	for _, r := range wiretest.Accepted(t, f.AWS) {
		if r.Service != "sts" || r.Region != "eu-west-2" || r.AccessKeyID != f.IMDS.Current().AccessKeyID {
			t.Errorf("AssumeRole signed for %s/%s with %s", r.Service, r.Region, r.AccessKeyID)
		}
	}
	if strings.Contains(p.logs.String(), "assumed/secret") {
		t.Error("the log holds the assumed role's secret")
	}
}

// Wrong routes are refused before anything is served, in the flags'
// words: exit 2, or 4 for an upstream the signer refuses, 3 for a role
// STS refuses.
func TestProxyRouteErrors(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>`, http.StatusForbidden)
	}))
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"routes": [{"match": "/a/", "upstream": "https://sqs.us-east-1.amazonaws.com", "role": "x"}]}`), 0o600)
	both := filepath.Join(dir, "both.json")
	os.WriteFile(both, []byte(`{"routes": [{"match": "/a/", "path-prefix": "/a/", "upstream": "https://sqs.us-east-1.amazonaws.com"}]}`), 0o600)
	const sqs = "https://sqs.us-east-1.amazonaws.com"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--route", "es.localhost"}, 2, `--route "es.localhost": want MATCH=URL`},
		{[]string{"--route", "/aps=" + sqs}, 2, `route "/aps": the route's path prefix "/aps": want a path that begins and ends with '/'`},
		{[]string{"--route", "/a/=" + sqs + ",foo=bar"}, 2, `unknown option "foo"`},
		{[]string{"--route", "/a/=" + sqs + ",max-body=lots"}, 2, `--route /a/=` + sqs + `,max-body=lots: max-body "lots"`},
		{[]string{"--route", "/a/=" + sqs + ",max-attempts=0"}, 2, `max-attempts="0": want a number, at least 1`},
		{[]string{"--route", "/a/=" + sqs, "--upstream", sqs}, 2, "--upstream and --route (or --routes) do not go together"},
		{[]string{"--route", "/a/=" + sqs, "--service", "sqs"}, 2, "are one upstream's: give them to its route"},
		{[]string{"--route", "/a/=" + sqs, "--no-verify-ssl"}, 2, "--no-verify-ssl is for one upstream"},
		{[]string{"--route", "/a/=" + sqs, "--custom-headers", "Authorization=x"}, 2, "--custom-headers"},
		{[]string{"--route", "/a/=" + sqs, "--port", "8080", "--service", "sqs"}, 2, "2 problems"},
		{[]string{"--route", "/a/=" + sqs, "--route", "/a/=" + sqs}, 2, `routes "/a/" and "/a/" both take`},
		{[]string{"--route", "/a/=" + sqs + ",name=x", "--route", "/a/b/=" + sqs + ",name=y"}, 2, "nest"},
		{[]string{"--route", "x.localhost=" + sqs, "--serve-host", "x.localhost"}, 2, `--serve-host "x.localhost" is a route's Host`},
		{[]string{"--route", "/a/=" + sqs + ",max-buffer=2MiB,max-body=1MiB"}, 2, `route "/a/": --max-buffer (2MiB) is over --max-body (1MiB)`},
		{[]string{"--routes", filepath.Join(dir, "none.json")}, 2, "--routes: open"},
		{[]string{"--routes", unknown}, 2, `unknown field "role"`},
		{[]string{"--routes", both}, 2, "give match, or host and path-prefix, not both"},
		{[]string{"--route", "/a/=https://example.com"}, 4, `route "/a/": "example.com" is not an AWS endpoint`},
		{[]string{"--route", "/a/=" + sqs + ",role-arn=arn:aws:iam::123456789012:role/x"}, 3, `route "/a/": role-arn arn:aws:iam::123456789012:role/x`},
	}
	testkit.ChainEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://"+f.Host())
	for _, c := range cases {
		r := runCmd(t, "", append(routeArgs(f), c.args...)...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%q: exit %d %q, want %d and %q", c.args, r.Code, r.Stderr, c.code, c.want)
		}
		if strings.Contains(r.Stderr, "Config.") || strings.Contains(r.Stderr, "Route.") {
			t.Errorf("%q: a Go name in %q", c.args, r.Stderr)
		}
	}
}
