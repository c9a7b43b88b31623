package proxy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// imdstestConfig is the emulator's default configuration.
func imdstestConfig() imdstest.Config { return imdstest.Config{} }

// proxyRun is a Proxy in front of a fixture's upstream, served on
// loopback as the kivuli command serves it (HTTP/1.1 only), with an
// observer that counts what the command's metrics count.
type proxyRun struct {
	url string // http://host:port
	p   *Proxy
	obs *testObserver
}

// startProxy serves a Proxy of cfg in front of f: its upstream (listed,
// in clear on loopback) unless cfg names one, credentials from f's IMDS.
// At the end of the test it is shut down, and what it told its observer
// must hold no secret.
func startProxy(t *testing.T, f *wiretest.Fixture, cfg Config) *proxyRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startProxyOn(t, f, cfg, ln)
}

// startProxyOn is startProxy, serving on ln.
func startProxyOn(t *testing.T, f *wiretest.Fixture, cfg Config, ln net.Listener) *proxyRun {
	t.Helper()
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint(f.IMDS.URL))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream == "" {
		cfg.Upstream = "http://" + f.Host()
	}
	cfg.AllowedHosts = append(cfg.AllowedHosts, f.Host())
	obs := &testObserver{series: map[string]float64{}}
	cfg.Credentials, cfg.Observer = creds, obs
	p, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	obs.p = p
	var http1 http.Protocols
	http1.SetHTTP1(true)
	srv := &http.Server{Handler: p, Protocols: &http1, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wiretest.FailAfter)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("the tunnels did not end: %v", err)
		}
		creds.Close()
		wiretest.NoSecrets(t, f, "what the observer was told", obs.messages())
	})
	return &proxyRun{url: "http://" + ln.Addr().String(), p: p, obs: obs}
}

// host is the proxy's host:port.
func (p *proxyRun) host() string { return strings.TrimPrefix(p.url, "http://") }

// waitRequests waits until the observer has been told of n requests: a
// request is, once its handler has returned, which may be after the
// client has read the whole answer.
func (p *proxyRun) waitRequests(t *testing.T, n int) {
	t.Helper()
	select {
	case <-p.obs.requests(n):
	case <-time.After(wiretest.FailAfter):
		t.Fatalf("the proxy did not finish %d requests", n)
	}
}

// metric is the value the kivuli command's metrics would show for series
// (`kivuli_proxy_request_bodies_total{mode="spooled"}`): counted from what
// the observer was told, or read from Stats; -1 if there is none.
func (p *proxyRun) metric(series string) float64 {
	s := p.p.Stats()
	switch series {
	case "kivuli_proxy_in_flight_requests":
		return float64(s.InFlight)
	case "kivuli_proxy_queued_requests":
		return float64(s.Queued)
	case "kivuli_proxy_body_memory_bytes":
		return float64(s.BodyMemory)
	case "kivuli_proxy_spool_bytes":
		return float64(s.Spool)
	}
	return p.obs.value(series)
}

// waitMetric polls metric until series has the value want.
func (p *proxyRun) waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(wiretest.FailAfter)
	for {
		got := p.metric(series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testObserver counts what it is told by the names of the kivuli
// command's metrics, keeps the messages, and wakes waiters.
type testObserver struct {
	p       *Proxy
	mu      sync.Mutex
	series  map[string]float64
	msgs    []string
	done    int
	waiters map[int][]chan struct{}
}

func (o *testObserver) Attempted(_ *http.Request, status int, err error, _ time.Duration) {
	code := strconv.Itoa(status)
	if err != nil {
		code = "error"
	}
	o.add(`kivuli_proxy_upstream_requests_total{code="` + code + `"}`)
}

func (o *testObserver) Done(r *http.Request, x Exchange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.series[fmt.Sprintf(`kivuli_proxy_requests_total{code="%d",method="%s"}`, x.Status, r.Method)]++
	o.series[`kivuli_proxy_request_bodies_total{mode="`+x.Body+`"}`]++
	o.series[`kivuli_proxy_request_body_bytes_total{mode="`+x.Body+`"}`] += float64(x.BytesIn)
	if e := x.Err; e != nil {
		o.msgs = append(o.msgs, e.Msg)
		switch e.Stage {
		case "guard":
			o.series[`kivuli_proxy_refused_requests_total{reason="`+e.Reason+`"}`]++
		case "limit":
			o.series[`kivuli_proxy_limited_requests_total{limit="`+e.Reason+`"}`]++
		case "signer":
			o.series[`kivuli_proxy_signing_errors_total{reason="`+e.Reason+`"}`]++
		}
	}
	o.done++
	for _, c := range o.waiters[o.done] {
		close(c)
	}
	delete(o.waiters, o.done)
}

func (o *testObserver) add(series string) {
	o.mu.Lock()
	o.series[series]++
	o.mu.Unlock()
}

// value is a counted series, 0 if never counted.
func (o *testObserver) value(series string) float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.series[series]
}

// messages are the RequestErrors' messages, a line each.
func (o *testObserver) messages() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.msgs, "\n")
}

// requests returns a channel closed once n requests are done.
func (o *testObserver) requests(n int) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := make(chan struct{})
	if o.done >= n {
		close(c)
		return c
	}
	if o.waiters == nil {
		o.waiters = map[int][]chan struct{}{}
	}
	o.waiters[n] = append(o.waiters[n], c)
	return c
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// ErrorHandler words the answers the proxy gives itself, after the
// headers they need are set; the observer is told the RequestError; the
// default answer is its Msg, in plain text.
func TestErrorHandler(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	var got []*RequestError
	p := startProxy(t, f, Config{SignHost: esHost, MaxRequests: 1, QueueTimeout: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *RequestError) {
			got = append(got, e) // one request at a time: MaxRequests 1
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			fmt.Fprintf(w, `{"stage":%q,"reason":%q}`, e.Stage, e.Reason)
		}})
	resp, body := wiretest.RawRequest(t, p.host(), "GET / HTTP/1.1\nHost: evil.example\n\n")
	if resp.StatusCode != http.StatusMisdirectedRequest || body != `{"stage":"guard","reason":"host"}` {
		t.Errorf("a rebound Host: %d %s", resp.StatusCode, body)
	}
	resp, body = wiretest.RawRequest(t, p.host(), "GET / HTTP/1.1\nHost: localhost\nVia: 1.1 "+p.p.via+"\n\n")
	if resp.StatusCode != http.StatusLoopDetected || body != `{"stage":"","reason":""}` {
		t.Errorf("a loop: %d %s", resp.StatusCode, body)
	}
	p.waitRequests(t, 2)
	if len(got) != 2 || !strings.Contains(got[1].Msg, "Config.Upstream") {
		t.Errorf("the handler got %v", got)
	}
	if v := p.metric(`kivuli_proxy_refused_requests_total{reason="host"}`); v != 1 {
		t.Errorf("the observer was told of %v refusals", v)
	}
}

// LogValue says where the proxy forwards, signed how, and holds no
// secret of the upstream's URL.
func TestLogValue(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	p := startProxy(t, f, Config{Upstream: "http://" + f.Host() + "/base", SignHost: esHost, SignHeaders: []string{"X-Custom"}})
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("listening", slog.Any("", p.p))
	for _, want := range []string{"upstream=http://" + f.Host() + "/base", "sign_host=" + esHost, "service=es", "region=eu-west-2",
		"X-Custom", "max_buffer=1MiB", "max_body=5GiB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in %s", want, b.String())
		}
	}
}

// proxyFixture is a fixture whose upstream records the headers and the
// Host each accepted request arrived with.
type proxyFixture struct {
	*wiretest.Fixture
	*wiretest.Recorder
}

func newProxyFixture(t *testing.T, next http.Handler) *proxyFixture {
	t.Helper()
	rec := wiretest.NewRecorder(next)
	return &proxyFixture{wiretest.NewFixture(t, imdstest.Config{}, rec), rec}
}
