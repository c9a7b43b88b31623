package proxycmd

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
)

// proxyObserver is kivuli proxy's proxy.Observer: each request counted in
// the metrics and written to the access log.
type proxyObserver struct {
	m         *proxyMetrics
	log       *slog.Logger
	access    slog.Level // the access log's level (--access-log); 5xx at WARN at least
	accessOff bool       // --access-log off
}

// Attempted counts a request sent upstream, by its answer's status.
func (o *proxyObserver) Attempted(_ *http.Request, status int, err error, d time.Duration) {
	o.m.upstreamSeconds.observe(d.Seconds())
	if err != nil {
		o.m.upstreamRequests.inc("error")
		return
	}
	o.m.upstreamRequests.inc(strconv.Itoa(status))
}

// Done counts the request, and what refused it, and logs it.
func (o *proxyObserver) Done(r *http.Request, x proxy.Exchange) {
	m := o.m
	m.requests.inc(strconv.Itoa(x.Status), methodLabel(r.Method))
	m.duration.observe(x.Duration.Seconds())
	m.bodies.inc(x.Body)
	m.bodyBytes.add(uint64(x.BytesIn), x.Body)
	m.responseBytes.Add(uint64(x.BytesOut))
	if e := x.Err; e != nil {
		switch e.Stage {
		case "guard":
			m.refused.inc(e.Reason)
		case "limit":
			m.limited.inc(e.Reason)
		case "signer":
			m.signingErrors.inc(e.Reason)
		}
	}
	o.accessLog(r, x)
}

// accessLog writes the request's line: no header value, the query's
// secrets redacted.
func (o *proxyObserver) accessLog(r *http.Request, x proxy.Exchange) {
	level := o.access
	if x.Status >= 500 {
		level = max(level, slog.LevelWarn)
	}
	if o.accessOff || !o.log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("query", kivuli.RedactQuery(r.URL.RawQuery)),
		slog.Int("status", x.Status),
		slog.String("body", x.Body),
		slog.Int64("bytes_in", x.BytesIn),
		slog.Int64("bytes_out", x.BytesOut),
		slog.Int("attempts", x.Attempts),
		slog.Duration("duration", x.Duration),
		slog.String("remote", r.RemoteAddr),
	}
	if x.Err != nil {
		attrs = append(attrs, slog.String("error", base.FlagWords(x.Err.Msg)))
	}
	o.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT":
		return m
	}
	return "other"
}
