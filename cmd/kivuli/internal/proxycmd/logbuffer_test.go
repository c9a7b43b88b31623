package proxycmd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/proxy"
)

// writeLog is standard error as the log buffer sees it: each write kept
// apart, and a channel told of each.
type writeLog struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *writeLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// TestAccessLogBatches: access log lines reach standard error in batches,
// the other lines at once and after the access lines before them, and
// nothing is lost when the log is flushed at the end.
func TestAccessLogBatches(t *testing.T) {
	out := &writeLog{wrote: make(chan struct{}, 1)}
	log, b := newLogger(out, "text", false)
	b.delay = time.Hour // flushed by the test, a warning, or size
	ctx := context.Background()
	for i := range 100 {
		log.LogAttrs(ctx, slog.LevelInfo, accessLogMessage, slog.Int("n", i))
	}
	if got := out.all(); len(got) != 0 {
		t.Fatalf("%d writes before a flush, want the lines batched", len(got))
	}
	log.Warn("upstream slow")
	got := out.all()
	if len(got) != 1 {
		t.Fatalf("%d writes, want the batch and the warning in one", len(got))
	}
	lines := strings.Split(strings.TrimSuffix(got[0], "\n"), "\n")
	if len(lines) != 101 || !strings.Contains(lines[0], "n=0") || !strings.Contains(lines[99], "n=99") || !strings.Contains(lines[100], "upstream slow") {
		t.Fatalf("lines out of order or missing: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	log.LogAttrs(ctx, slog.LevelInfo, accessLogMessage, slog.Int("n", 100))
	b.Flush()
	if got := out.all(); len(got) != 2 || !strings.Contains(got[1], "n=100") {
		t.Fatalf("after Flush: %q", got)
	}
	b.Flush()
	if got := out.all(); len(got) != 2 {
		t.Fatalf("an empty Flush wrote: %q", got[2:])
	}
	long := strings.Repeat("x", accessLogBatch)
	log.LogAttrs(ctx, slog.LevelInfo, accessLogMessage, slog.String("long", long))
	if got := out.all(); len(got) != 3 {
		t.Fatalf("%d writes: a batch of %d bytes waited", len(got), accessLogBatch)
	}
}

// TestAccessLogDelay: a lone access line is written within the delay,
// without a flush.
func TestAccessLogDelay(t *testing.T) {
	out := &writeLog{wrote: make(chan struct{}, 1)}
	log, b := newLogger(out, "json", false)
	b.delay = time.Millisecond
	log.LogAttrs(context.Background(), slog.LevelInfo, accessLogMessage, slog.String("path", "/x"))
	select {
	case <-out.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the access line was never written")
	}
	if got := out.all(); len(got) != 1 || !bytes.Contains([]byte(got[0]), []byte(`"path":"/x"`)) {
		t.Fatalf("%q", got)
	}
}

// BenchmarkAccessLog is one request's metrics and access log line, as
// kivuli proxy writes them (the log batched, to io.Discard).
func BenchmarkAccessLog(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		b.Run("format="+format, func(b *testing.B) {
			log, buf := newLogger(io.Discard, format, false)
			defer buf.Flush()
			o := &proxyObserver{m: newProxyMetrics(&proxyServer{}), log: log}
			r := httptest.NewRequest("GET", "/logs-2026.12.01/_search?q=status:500&size=10", nil)
			x := proxy.Exchange{Status: 200, Body: "none", BytesOut: 38, Attempts: 1, Duration: 412 * time.Microsecond}
			b.ReportAllocs()
			for b.Loop() {
				o.Done(r, x)
			}
		})
	}
}
