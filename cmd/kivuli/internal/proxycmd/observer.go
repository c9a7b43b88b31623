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
	m   *proxyMetrics
	log *slog.Logger
	// routed: the proxy has routes, each request's a label of the
	// metrics and a field of the access log.
	routed    bool
	access    slog.Level // the access log's level (--access-log); 5xx at WARN at least
	accessOff bool       // --access-log off
}

// labels are the label values vs, and the route's with routes.
func (o *proxyObserver) labels(route string, vs ...string) []string {
	if o.routed {
		return append(vs, route)
	}
	return vs
}

// Attempted counts a request sent upstream, by its answer's status.
func (o *proxyObserver) Attempted(r *http.Request, status int, err error, d time.Duration) {
	o.m.upstreamSeconds.observe(d.Seconds())
	if err != nil {
		o.m.upstreamRequests.inc(o.labels(proxy.RouteOf(r), "error")...)
		return
	}
	o.m.upstreamRequests.inc(o.labels(proxy.RouteOf(r), codeLabel(status))...)
}

// Done counts the request, and what refused it, and logs it.
func (o *proxyObserver) Done(r *http.Request, x proxy.Exchange) {
	m := o.m
	m.requests.inc(o.labels(x.Route, codeLabel(x.Status), methodLabel(r.Method))...)
	m.duration.observe(x.Duration.Seconds())
	m.bodies.inc(o.labels(x.Route, x.Body)...)
	m.bodyBytes.add(uint64(x.BytesIn), o.labels(x.Route, x.Body)...)
	m.responseBytes.Add(uint64(x.BytesOut))
	if e := x.Err; e != nil {
		switch e.Stage {
		case "guard", "route":
			m.refused.inc(e.Reason)
		case "limit":
			m.limited.inc(o.labels(x.Route, e.Reason)...)
		case "signer":
			m.signingErrors.inc(o.labels(x.Route, e.Reason)...)
		}
	}
	o.accessLog(r, x)
}

// accessLogMessage is the access log's message: its lines are batched.
const accessLogMessage = "request"

// accessLog writes the request's line: no header value, the query's
// secrets redacted.
func (o *proxyObserver) accessLog(r *http.Request, x proxy.Exchange) {
	level := o.access
	if x.Status >= 500 {
		level = max(level, slog.LevelWarn)
	}
	ctx, h := r.Context(), o.log.Handler()
	if o.accessOff || !h.Enabled(ctx, level) {
		return
	}
	// A record of its own, without the caller's PC that Logger.LogAttrs
	// takes (runtime.Callers: a tenth of the line's cost), which no
	// handler here writes.
	rec := slog.NewRecord(time.Now(), level, accessLogMessage, 0)
	if o.routed {
		rec.AddAttrs(slog.String("route", x.Route))
	}
	rec.AddAttrs(
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
	)
	if x.Err != nil {
		rec.AddAttrs(slog.String("error", base.FlagWords(x.Err.Msg)))
	}
	h.Handle(ctx, rec)
}

// codeLabels are the status codes' labels, made once: strconv.Itoa
// allocates for codes over 99.
var codeLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// codeLabel is status's label.
func codeLabel(status int) string {
	if status >= 0 && status < len(codeLabels) {
		return codeLabels[status]
	}
	return strconv.Itoa(status)
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT":
		return m
	}
	return "other"
}
