package proxycmd

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// accessStrings are values that slog quotes, or does not, for a reason
// each: empty, spaces and '=', quotes and backslashes, controls, invalid
// UTF-8, non-ASCII spaces and unprintables, and plain non-ASCII.
var accessStrings = []string{
	"", "request", "/logs-2026.12.01/_search", "q=status:500&size=10", "a b", "x=y", `"q"`, `back\slash`,
	"tab\there", "nl\n", "\x00", "\x7f", "\xff", "é", "µs", "日本語", "\u00a0", "\u2028", "\u200b", "\U0001F600",
	"%2F..%5C", "X-Amz-Signature=REDACTED", strings.Repeat("long ", 40),
}

// slogText is the line slog.TextHandler writes for r.
func slogText(t testing.TB, r slog.Record) string {
	var buf bytes.Buffer
	if err := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// accessRecord is an access line's record, with s in every string.
func accessRecord(tm time.Time, level slog.Level, msg, s string, n int64, d time.Duration) slog.Record {
	r := slog.NewRecord(tm, level, msg, 0)
	r.AddAttrs(slog.String("method", s), slog.String("path", s), slog.String(s+"k", s), slog.Int64("bytes_in", n),
		slog.Int("status", int(n%600)), slog.Duration("duration", d), slog.String("remote", "127.0.0.1:5"))
	return r
}

// TestTextAccessMatchesSlog: the access log's own text writer writes
// every line as slog.TextHandler does, byte for byte.
func TestTextAccessMatchesSlog(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 7, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 5*3600+1800)),
		time.Date(2026, 6, 1, 0, 0, 0, 100_000, time.FixedZone("y", -7*3600)),
		{}, // no time: slog writes no time= key
	}
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2}
	durations := []time.Duration{0, 412 * time.Microsecond, 1500 * time.Millisecond, -3 * time.Nanosecond, 3 * time.Hour}
	for i, s := range accessStrings {
		r := accessRecord(times[i%len(times)], levels[i%len(levels)], accessStrings[(i+1)%len(accessStrings)], s, int64(i*1000-7), durations[i%len(durations)])
		if !plainRecord(r) {
			t.Fatalf("%q: not a plain record", s)
		}
		if got, want := string(appendTextRecord(nil, r)), slogText(t, r); got != want {
			t.Errorf("%q:\n got %q\nwant %q", s, got, want)
		}
	}
}

// TestTextAccessFallsBack: a record the writer does not know (another
// kind, a group, an empty key) is written by slog's handler, the same way,
// and into the same batch.
func TestTextAccessFallsBack(t *testing.T) {
	out := &writeLog{wrote: make(chan struct{}, 1)}
	log, b := newLogger(out, "text", false)
	b.delay = time.Hour
	tm := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	for _, a := range []slog.Attr{slog.Bool("ok", true), slog.Float64("f", 1.5), slog.Group("g", slog.Int("n", 1)), slog.String("", "x"), slog.Any("e", context.Canceled)} {
		r := slog.NewRecord(tm, slog.LevelInfo, accessLogMessage, 0)
		r.AddAttrs(slog.String("method", "GET"), a)
		if plainRecord(r) {
			t.Fatalf("%v: a plain record", a)
		}
		want := slogText(t, r)
		if err := log.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		b.Flush()
		got := out.all()
		if got[len(got)-1] != want {
			t.Errorf("%v:\n got %q\nwant %q", a, got[len(got)-1], want)
		}
	}
}

// FuzzTextAccess: whatever the strings, numbers and durations, the writer
// and slog.TextHandler agree.
func FuzzTextAccess(f *testing.F) {
	for i, s := range accessStrings {
		f.Add(s, int64(i)*-97, int64(i)*123456789, int64(i)*1e12)
	}
	f.Fuzz(func(t *testing.T, s string, n, d, unix int64) {
		tm := time.Unix(0, unix).In(time.FixedZone("z", int(n%50000)))
		if tm.Year() < 0 || tm.Year() > 9999 {
			return // RFC 3339 has four-digit years
		}
		r := accessRecord(tm, slog.Level(n%13), s, s, n, time.Duration(d))
		if got, want := string(appendTextRecord(nil, r)), slogText(t, r); got != want {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}
