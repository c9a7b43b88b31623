package proxycmd

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The access log is written in batches: a write(2) per request was a
// sixteenth of the proxy's CPU on small GETs. Lines wait at most
// accessLogDelay, or until accessLogBatch bytes are waiting; every other
// line (start, warnings, errors) is written at once, after the access lines
// before it, so that the log keeps its order. What waits is lost only if
// the process is killed (SIGKILL, a crash): SIGTERM drains and flushes.
const (
	accessLogDelay = 100 * time.Millisecond
	accessLogBatch = 32 << 10
)

// logBuffer is standard error shared by the access log, which it batches,
// and the rest of the log, which it does not.
type logBuffer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // armed while buf holds lines
	delay time.Duration
}

func newLogBuffer(w io.Writer, delay time.Duration) *logBuffer {
	return &logBuffer{w: w, delay: delay}
}

// Write adds access log lines to the batch.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), b.queuedLocked()
}

// queuedLocked is called with lines just added to the batch: it writes a
// full batch, or makes sure that a timer will.
func (b *logBuffer) queuedLocked() error {
	if len(b.buf) >= accessLogBatch {
		return b.flushLocked(nil)
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.delay, b.Flush)
	}
	return nil
}

// Flush writes what waits.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked(nil)
}

// flushLocked writes what waits and then p, in one write.
func (b *logBuffer) flushLocked(p []byte) error {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		if len(p) == 0 {
			return nil
		}
		_, err := b.w.Write(p)
		return err
	}
	b.buf = append(b.buf, p...)
	_, err := b.w.Write(b.buf)
	if cap(b.buf) > 4*accessLogBatch {
		b.buf = nil // a burst of long lines: do not keep its memory
	}
	b.buf = b.buf[:0]
	return err
}

// direct is the writer of the lines that are not batched.
func (b *logBuffer) direct() io.Writer { return directWriter{b} }

type directWriter struct{ b *logBuffer }

func (d directWriter) Write(p []byte) (int, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if err := d.b.flushLocked(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// accessHandler sends the access log's records ("request" below WARN,
// as proxyObserver writes them at --access-log's level) to the batch, and
// the rest directly.
type accessHandler struct {
	batched, direct slog.Handler
}

func (h accessHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.direct.Enabled(ctx, l)
}

func (h accessHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && r.Message == accessLogMessage {
		return h.batched.Handle(ctx, r)
	}
	return h.direct.Handle(ctx, r)
}

func (h accessHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return accessHandler{h.batched.WithAttrs(as), h.direct.WithAttrs(as)}
}

func (h accessHandler) WithGroup(name string) slog.Handler {
	return accessHandler{h.batched.WithGroup(name), h.direct.WithGroup(name)}
}
