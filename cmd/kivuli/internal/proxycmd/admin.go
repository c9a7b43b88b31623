package proxycmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/guard"
)

// The admin listener: /healthz (the process is alive), /readyz (it can
// sign: credentials in hand and valid, not draining) and /metrics (the
// Prometheus text format). It is a listener of its own so that health
// checks and scrapes never queue behind proxied requests, and are never
// forwarded.

// proxyMetrics are the proxy's metrics.
type proxyMetrics struct {
	reg              registry
	requests         *counterVec // by code and method
	duration         *histogram
	upstreamSeconds  *histogram
	upstreamRequests *counterVec // by code, or "error"
	signingErrors    *counterVec // by reason
	bodies           *counterVec // by mode
	bodyBytes        *counterVec // by mode
	responseBytes    atomic.Uint64
	limited          *counterVec // by limit
	refreshes        *counterVec // by result
	refused          *counterVec // by the guard, by reason
}

func newProxyMetrics(s *proxyServer) *proxyMetrics {
	// With routes, the series of requests have a route label too: the
	// operator's list of routes bounds them.
	rl := func(labels ...string) []string {
		if s.routes != nil {
			return append(labels, "route")
		}
		return labels
	}
	m := &proxyMetrics{
		requests: newCounterVec("kivuli_proxy_requests_total",
			"Requests answered, by status code (499: the client went away) and method.", rl("code", "method")...),
		duration: newHistogram("kivuli_proxy_request_duration_seconds",
			"Time from a request's arrival to the end of its answer.", latencyBuckets),
		upstreamSeconds: newHistogram("kivuli_proxy_upstream_response_seconds",
			"Time from sending a request upstream to its answer's headers, per attempt.", latencyBuckets),
		upstreamRequests: newCounterVec("kivuli_proxy_upstream_requests_total",
			"Requests sent upstream (retries included), by the answer's status code, or error.", rl("code")...),
		signingErrors: newCounterVec("kivuli_proxy_signing_errors_total",
			"Requests the signer refused or could not sign, by reason.", rl("reason")...),
		bodies: newCounterVec("kivuli_proxy_request_bodies_total",
			"Request bodies, by how they were sent: none, buffered (in memory), spooled (to a file) or streamed.", rl("mode")...),
		bodyBytes: newCounterVec("kivuli_proxy_request_body_bytes_total",
			"Bytes of request bodies received, by how they were sent.", rl("mode")...),
		limited: newCounterVec("kivuli_proxy_limited_requests_total",
			"Requests refused or dropped by a limit: max_requests (503), max_spool (503 or 413), body_idle_timeout (408).", rl("limit")...),
		refreshes: newCounterVec("kivuli_credentials_refreshes_total",
			"Credential refreshes, by result (success or failure).", "result"),
		refused: newCounterVec("kivuli_proxy_refused_requests_total",
			"Requests refused before anything was signed: a Host the proxy does not serve (host), a web page of another origin (origin); with routes, a request no route takes (no_route) or whose path reads as another route's (path).", "reason"),
	}
	// Series known in advance start at 0, so that a rate over them is
	// defined before the first event.
	m.refreshes.add(0, "success")
	m.refreshes.add(0, "failure")
	m.refused.add(0, "host")
	m.refused.add(0, "origin")
	routes := [][]string{nil}
	if s.routes != nil {
		m.refused.add(0, "no_route")
		m.refused.add(0, "path")
		routes = routes[:0]
		for _, r := range s.routes {
			routes = append(routes, []string{r})
		}
	}
	for _, l := range []string{"max_requests", "max_spool", "body_idle_timeout"} {
		for _, r := range routes {
			m.limited.add(0, append([]string{l}, r...)...)
		}
	}
	m.register(s)
	return m
}

// register lists the families in the order /metrics writes them: the
// requests, their bodies and limits, the credentials, the process.
func (m *proxyMetrics) register(s *proxyServer) {
	r := &m.reg
	r.add(m.requests)
	r.add(m.duration)
	r.add(gaugeFunc("kivuli_proxy_in_flight_requests", "Requests being served, or waiting for their turn (kivuli_proxy_queued_requests).", func() float64 { return float64(s.p.Stats().InFlight) }))
	r.add(m.upstreamRequests)
	r.add(m.upstreamSeconds)
	r.add(m.signingErrors)
	r.add(m.refused)
	r.add(m.bodies)
	r.add(m.bodyBytes)
	r.add(counterFunc("kivuli_proxy_response_body_bytes_total", "Bytes of answers written to clients.", func() float64 { return float64(m.responseBytes.Load()) }))
	r.add(gaugeFunc("kivuli_proxy_body_memory_bytes", "Bytes of request bodies held in memory now.", func() float64 { return float64(s.p.Stats().BodyMemory) }))
	r.add(gaugeFunc("kivuli_proxy_body_memory_peak_bytes", "The most bytes of request bodies held in memory at once.", func() float64 { return float64(s.p.Stats().BodyMemoryPeak) }))
	r.add(m.limited)
	r.add(gaugeFunc("kivuli_proxy_queued_requests", "Requests waiting for their turn (--max-requests).", func() float64 { return float64(s.p.Stats().Queued) }))
	r.add(gaugeFunc("kivuli_proxy_open_connections", "Client connections open (--max-conns).", func() float64 {
		if l := s.conns.Load(); l != nil {
			return float64(l.open())
		}
		return 0
	}))
	r.add(gaugeFunc("kivuli_proxy_spool_bytes", "Bytes of request bodies spooled to disk now (--max-spool).", func() float64 { return float64(s.p.Stats().Spool) }))
	r.add(gaugeFunc("kivuli_proxy_spool_peak_bytes", "The most bytes of request bodies spooled at once.", func() float64 { return float64(s.p.Stats().SpoolPeak) }))
	r.add(m.refreshes)
	r.add(gaugeFunc("kivuli_credentials_expiry_timestamp_seconds", "When the credentials in hand expire, in Unix seconds (0: they never do).", func() float64 {
		if t := s.creds.Expires(); !t.IsZero() {
			return float64(t.UnixMilli()) / 1e3
		}
		return 0
	}))
	r.add(gaugeFunc("kivuli_proxy_ready", "1 when /readyz answers 200.", func() float64 {
		if s.ready(context.Background()) == nil {
			return 1
		}
		return 0
	}))
	registerProcess(r)
}

// registerProcess adds the Go runtime's and the process's memory gauges.
func registerProcess(r *registry) {
	r.add(gaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 { return float64(runtime.NumGoroutine()) }))
	r.add(gaugeFunc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting: 1 while kivuli proxy serves one request at a time, unless GOMAXPROCS is set.", func() float64 { return float64(runtime.GOMAXPROCS(0)) }))
	r.add(gaugeFunc("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", func() float64 { return runtimeMetric("/memory/classes/heap/objects:bytes") }))
	r.add(gaugeFunc("go_memstats_sys_bytes", "Bytes of memory obtained from the OS by the Go runtime.", func() float64 { return runtimeMetric("/memory/classes/total:bytes") }))
	if _, ok := procStatus("VmHWM"); ok {
		r.add(gaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 { v, _ := procStatus("VmRSS"); return v }))
		r.add(gaugeFunc("kivuli_process_resident_memory_peak_bytes", "The largest resident memory size since the start, in bytes (VmHWM).", func() float64 { v, _ := procStatus("VmHWM"); return v }))
	}
}

// watchCredentials counts the credentials' refreshes until the returned
// function is called.
func (m *proxyMetrics) watchCredentials(c *kivuli.Credentials) func() {
	events, cancel := c.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			if ev.Err != nil {
				m.refreshes.inc("failure")
			} else {
				m.refreshes.inc("success")
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func runtimeMetric(name string) float64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return float64(s[0].Value.Uint64())
	}
	return 0
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
			n, err := strconv.ParseFloat(string(v), 64)
			return n * 1024, err == nil
		}
	}
	return 0, false
}

// refusedBy counts a refusal of the admin listener's guard.
func (m *proxyMetrics) refusedBy(rf *guard.Refusal) { m.refused.inc(rf.Reason) }

// adminHandler serves /healthz, /readyz and /metrics.
func (s *proxyServer) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		if s.noVerify {
			w.Write([]byte("ready (--no-verify-ssl: the upstream's certificate is not verified)\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metricsContentType)
		var b bytes.Buffer
		s.m.reg.writeTo(&b)
		w.Write(b.Bytes())
	})
	return mux
}

// ready reports why the proxy cannot sign requests now, or nil: it is
// draining, or the credentials cannot be had or have expired.
func (s *proxyServer) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("draining: shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("no credentials: %s", strings.TrimPrefix(err.Error(), "kivuli: "))
	}
	if v.CanExpire && !time.Now().Before(v.Expires) {
		return fmt.Errorf("the credentials expired at %s", v.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}
