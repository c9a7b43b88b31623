package proxycmd

import (
	"bufio"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// verifyingUpstream is sigv4test's check as an in-memory upstream, for a
// synctest bubble, where sockets would keep fake time from advancing.
func verifyingUpstream(v *sigv4test.Verifier) http.RoundTripper {
	return testkit.HandlerTransport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := v.Verify(r); rec.Err != nil {
			http.Error(w, rec.Err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	})}
}

// testProxyConfig is a proxy configuration as the flags' defaults make
// it, sending the signed requests with upstream.
func testProxyConfig(t *testing.T, url string, upstream http.RoundTripper) proxy.Config {
	return proxy.Config{Upstream: url, SpoolDir: t.TempDir(), Transport: upstream}
}

// /readyz is 200 while the credentials are valid, also while IMDS fails
// (the credentials in hand still serve); 503 once they have expired, when
// requests get 503 too; 200 again once IMDS recovers. On fake time, an
// hour of it.
func TestProxyReadyz(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		imds, creds := testkit.InMemoryCredentials(t)
		v := &sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}
		s, err := newProxyServer(t.Context(), testProxyConfig(t, "https://sts.eu-west-2.amazonaws.com", verifyingUpstream(v)), creds,
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		admin, p := s.adminHandler(), s.p
		get := func(h http.Handler, path string) (int, string) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil))
			return w.Code, w.Body.String()
		}
		expect := func(when string, ready bool) {
			t.Helper()
			code, body := get(admin, "/readyz")
			want := http.StatusServiceUnavailable
			if ready {
				want = http.StatusOK
			}
			if code != want {
				t.Errorf("%s: /readyz %d %q, want %d", when, code, body, want)
			}
			code, body = get(p, "/?Action=GetCallerIdentity&Version=2011-06-15")
			if ready && code != http.StatusOK || !ready && code != http.StatusServiceUnavailable {
				t.Errorf("%s: a request got %d %q", when, code, body)
			}
			if c, _ := get(admin, "/healthz"); c != http.StatusOK {
				t.Errorf("%s: /healthz %d", when, c)
			}
		}
		expect("at start", true)
		expires := creds.Expires()
		imds.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Status: http.StatusInternalServerError})
		time.Sleep(time.Until(expires) - time.Minute)
		expect("IMDS failing, a minute before the expiry", true)
		time.Sleep(2 * time.Minute)
		expect("IMDS failing, a minute after the expiry", false)
		if _, body := get(admin, "/readyz"); !strings.Contains(body, "credentials") {
			t.Errorf("/readyz says %q", body)
		}
		if m := scrape(t, admin); m[`kivuli_proxy_ready`] != 0 || m[`kivuli_credentials_refreshes_total{result="failure"}`] < 1 {
			t.Errorf("ready %v, failed refreshes %v", m[`kivuli_proxy_ready`], m[`kivuli_credentials_refreshes_total{result="failure"}`])
		}
		imds.ClearFaults()
		time.Sleep(10 * time.Minute) // the longest backoff between retries is 5
		expect("IMDS back", true)
		if m := scrape(t, admin); m[`kivuli_credentials_expiry_timestamp_seconds`] <= float64(time.Now().Unix()) {
			t.Errorf("expiry %v, now %v", m[`kivuli_credentials_expiry_timestamp_seconds`], time.Now().Unix())
		}
		s.draining.Store(true)
		if code, body := get(admin, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
			t.Errorf("draining: /readyz %d %q", code, body)
		}
	})
}

// sampleRE is a sample line of the text format: name{labels} value.
var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? ([-+]?[0-9.eE+-]+|\+Inf|-Inf|NaN)$`)

// scrape reads /metrics, checks that it is the Prometheus text format
// (every sample after its family's HELP and TYPE, histograms cumulative
// and ending in +Inf = _count), and returns the samples by series.
func scrape(t *testing.T, admin http.Handler) map[string]float64 {
	t.Helper()
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := w.Header().Get("Content-Type"); ct != metricsContentType {
		t.Errorf("Content-Type %q", ct)
	}
	samples := map[string]float64{}
	types := map[string]string{}
	helped := map[string]bool{}
	var lastBucket float64
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(rest, " ")
			helped[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if !helped[name] || types[name] != "" {
				t.Errorf("TYPE %s: no HELP before it, or twice", name)
			}
			types[name] = typ
			lastBucket = 0
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a sample: %q", line)
			continue
		}
		family := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(family, suffix); ok && types[f] == "histogram" {
				family = f
			}
		}
		if types[family] == "" {
			t.Errorf("%s: a sample before its TYPE", line)
		}
		v, _ := strconv.ParseFloat(strings.Replace(m[len(m)-1], "+Inf", "Inf", 1), 64)
		key, _, _ := strings.Cut(line, " ")
		samples[key] = v
		if strings.HasPrefix(key, family+"_bucket") {
			if v < lastBucket {
				t.Errorf("%s: buckets not cumulative", line)
			}
			lastBucket = v
		}
		if key == family+"_count" && types[family] == "histogram" && samples[family+`_bucket{le="+Inf"}`] != v {
			t.Errorf("%s: _count is not the +Inf bucket", family)
		}
	}
	return samples
}

// The metrics count what happened, by status, method, body mode and
// upstream answer, and parse as the text format.
func TestProxyMetrics(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "no such index", http.StatusNotFound)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"acknowledged":true}`)
	}))
	p := startProxy(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--max-buffer", "1KiB", "--max-body", "1MiB")
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		do("GET", "/logs/_search", "")
	}
	do("PUT", "/logs/_doc/1", `{"a":1}`)             // buffered
	do("POST", "/_bulk", strings.Repeat("x", 4<<10)) // spooled
	do("GET", "/missing", "")
	do("GET", "/a/%2e%2e/b", "") // refused by the signer: 400
	p.waitRequests(t, 7)
	m := scrape(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(p.admin + r.URL.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		io.Copy(w, resp.Body)
	}))
	for series, want := range map[string]float64{
		`kivuli_proxy_requests_total{code="200",method="GET"}`:    3,
		`kivuli_proxy_requests_total{code="200",method="PUT"}`:    1,
		`kivuli_proxy_requests_total{code="200",method="POST"}`:   1,
		`kivuli_proxy_requests_total{code="404",method="GET"}`:    1,
		`kivuli_proxy_requests_total{code="400",method="GET"}`:    1,
		`kivuli_proxy_request_bodies_total{mode="buffered"}`:      1,
		`kivuli_proxy_request_bodies_total{mode="spooled"}`:       1,
		`kivuli_proxy_request_body_bytes_total{mode="spooled"}`:   4 << 10,
		`kivuli_proxy_upstream_requests_total{code="200"}`:        5,
		`kivuli_proxy_upstream_requests_total{code="404"}`:        1,
		`kivuli_proxy_signing_errors_total{reason="bad_request"}`: 1,
		`kivuli_proxy_request_duration_seconds_count`:             7,
		`kivuli_proxy_upstream_response_seconds_count`:            6,
		`kivuli_proxy_ready`:                                           1,
		`kivuli_proxy_in_flight_requests`:                              0,
		`kivuli_proxy_body_memory_bytes`:                               0,
		`kivuli_credentials_refreshes_total{result="success"}`:         -1, // present; the count depends on timing
		`kivuli_credentials_expiry_timestamp_seconds`:                  -1,
		`go_goroutines`:                                                -1,
		`go_sched_gomaxprocs_threads`:                                  -1,
		`kivuli_proxy_response_body_bytes_total`:                       -1,
		`kivuli_proxy_request_duration_seconds_bucket{le="+Inf"}`:      7,
		`kivuli_proxy_upstream_response_seconds_bucket{le="0.001"}`:    -1,
		`kivuli_proxy_request_body_bytes_total{mode="buffered"}`:       7,
		`kivuli_proxy_requests_total{code="413",method="POST"}`:        -2, // absent
		`kivuli_proxy_signing_errors_total{reason="host_not_allowed"}`: -2,
	} {
		got, ok := m[series]
		switch {
		case want == -2 && ok:
			t.Errorf("%s = %v, want absent", series, got)
		case want == -1 && !ok:
			t.Errorf("%s absent", series)
		case want >= 0 && got != want:
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if m[`kivuli_proxy_body_memory_peak_bytes`] > 1<<10 {
		t.Errorf("peak body memory %v over --max-buffer", m[`kivuli_proxy_body_memory_peak_bytes`])
	}
	// A body over --max-body: 413.
	if code := do("POST", "/_bulk", strings.Repeat("y", 2<<20)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d", code)
	}
}

// kivuli proxy logs and counts what the handler refuses to web pages (the
// rules themselves are the proxy package's TestProxyRefusesBrowsers), and
// its admin listener has the same rules.
func TestProxyAdminRefusesBrowsers(t *testing.T) {
	pf := newProxyFixture(t, nil)
	p := startProxy(t, pf.Fixture, "--sign-host", "sqs.eu-west-2.amazonaws.com")
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "a GET with a rebound Host", Method: "GET", Path: "/?Action=ListQueues",
			Header: map[string]string{"Host": "evil.example:8080"}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a cross-site form POST", Method: "POST", Path: "/", Body: "Action=PurgeQueue",
			Header: wiretest.CrossSite(map[string]string{"Content-Type": "application/x-www-form-urlencoded"})}, http.StatusForbidden},
	} {
		if code, body := c.br.Send(t, p.url); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
	if n := len(pf.Requests()); n != 0 {
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
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "metrics, rebound", Method: "GET", Path: "/metrics", Header: map[string]string{"Host": "evil.example:8081"}}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "metrics, cross-site", Method: "GET", Path: "/metrics", Header: wiretest.CrossSite(nil)}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "readyz", Method: "GET", Path: "/readyz"}, http.StatusOK},
	} {
		if code, body := c.br.Send(t, p.admin); code != c.want {
			t.Errorf("admin: %s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
	}
}
