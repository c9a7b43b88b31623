package proxycmd

import (
	"context"
	"log/slog"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// textAccess writes the access log's lines in the text format, byte for
// byte as slog.TextHandler writes them, straight into the batch: slog's
// per-record state, its quoting checks through a table and its buffer
// pool were a fortieth of the proxy's CPU on small GETs. A record with an
// attribute of a kind the access log does not use goes to slow, slog's
// own handler on the same batch.
type textAccess struct {
	b    *logBuffer
	slow slog.Handler // slog.NewTextHandler on b, with the same options
}

func (h textAccess) Enabled(ctx context.Context, l slog.Level) bool { return h.slow.Enabled(ctx, l) }

func (h textAccess) WithAttrs(as []slog.Attr) slog.Handler { return h.slow.WithAttrs(as) }

func (h textAccess) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

func (h textAccess) Handle(ctx context.Context, r slog.Record) error {
	if !plainRecord(r) {
		return h.slow.Handle(ctx, r)
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.b.buf = appendTextRecord(h.b.buf, r)
	return h.b.queuedLocked()
}

// plainRecord reports whether every attribute of r is named and a
// string, an integer or a duration: what appendTextRecord writes.
func plainRecord(r slog.Record) bool {
	plain := true
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindDuration:
			plain = a.Key != ""
		default:
			plain = false
		}
		return plain
	})
	return plain
}

// appendTextRecord appends r as slog.TextHandler writes a record without
// source, groups or ReplaceAttr (log/slog's handler.go, commonHandler.handle).
func appendTextRecord(buf []byte, r slog.Record) []byte {
	if !r.Time.IsZero() {
		buf = append(buf, "time="...)
		buf = appendRFC3339Millis(buf, r.Time.Round(0))
		buf = append(buf, ' ')
	}
	buf = append(buf, "level="...)
	buf = appendTextString(buf, r.Level.String())
	buf = append(buf, " msg="...)
	buf = appendTextString(buf, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		buf = append(buf, ' ')
		buf = appendTextString(buf, a.Key)
		buf = append(buf, '=')
		switch a.Value.Kind() {
		case slog.KindString:
			buf = appendTextString(buf, a.Value.String())
		case slog.KindInt64:
			buf = strconv.AppendInt(buf, a.Value.Int64(), 10)
		case slog.KindDuration:
			buf = append(buf, a.Value.Duration().String()...)
		}
		return true
	})
	return append(buf, '\n')
}

// appendTextString is log/slog's text appendString: s as it is, or
// quoted where slog's needsQuoting says.
func appendTextString(buf []byte, s string) []byte {
	if textNeedsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

// textNeedsQuoting is log/slog's needsQuoting (text_handler.go): an empty
// string; an ASCII byte JSON would escape, but for the backslash, or a
// space or '='; an invalid, space or unprintable rune.
func textNeedsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == ' ' || b == '=' || b == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendRFC3339Millis is log/slog's: RFC 3339 with exactly three digits
// of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the fourth digit
}
