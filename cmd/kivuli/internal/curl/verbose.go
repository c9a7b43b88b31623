package curl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/kivuli-go/kivuli"
)

// signingLogger is the slog.Handler of -v: it prints the library's debug
// record of each signature (canonical request, string to sign, with the
// token already redacted by the library) as curl -v prints its steps.
type signingLogger struct {
	mu      *sync.Mutex
	w       io.Writer
	enabled bool
	attrs   []slog.Attr
}

func newSigningLogger(w io.Writer, enabled bool) *slog.Logger {
	return slog.New(&signingLogger{mu: &sync.Mutex{}, w: w, enabled: enabled})
}

func (h *signingLogger) Enabled(_ context.Context, l slog.Level) bool {
	return h.enabled || l >= slog.LevelWarn
}

func (h *signingLogger) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), attrs...)
	return &c
}

func (h *signingLogger) WithGroup(string) slog.Handler { return h }

func (h *signingLogger) Handle(_ context.Context, r slog.Record) error {
	fields := map[string]string{}
	var order []string
	add := func(a slog.Attr) bool {
		fields[a.Key] = a.Value.String()
		order = append(order, a.Key)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	var b strings.Builder
	if canon, ok := fields["canonical_request"]; ok {
		fmt.Fprintf(&b, "* signing %s %s for service %s in %s\n", fields["method"], fields["host"], fields["service"], fields["region"])
		b.WriteString("* canonical request:\n")
		writeIndented(&b, canon)
		b.WriteString("* string to sign:\n")
		writeIndented(&b, fields["string_to_sign"])
	} else {
		b.WriteString("* " + r.Message)
		for _, k := range order {
			fmt.Fprintf(&b, " %s=%s", k, redactText(fields[k]))
		}
		b.WriteByte('\n')
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func writeIndented(b *strings.Builder, s string) {
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString("*   " + line + "\n")
	}
}

// showingTransport is the Transport's Base with -v and --dry-run: it
// prints the signed request's head and the answer's, with secrets
// redacted, and with dry it sends nothing.
type showingTransport struct {
	next http.RoundTripper
	w    io.Writer
	show bool
	dry  bool
}

// ProxyURL tells the signer whether the request goes through a proxy,
// which a request in clear must not: as next says.
func (t *showingTransport) ProxyURL(req *http.Request) (*url.URL, error) {
	return kivuli.ProxyURLOf(t.next, req)
}

func (t *showingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.show {
		io.WriteString(t.w, requestHead(req))
	}
	if t.dry {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errDryRun
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil && t.show {
		var b strings.Builder
		fmt.Fprintf(&b, "< %s %s\n", resp.Proto, resp.Status)
		for _, kv := range sortedHeader(resp.Header) {
			fmt.Fprintf(&b, "< %s: %s\n", kv[0], redactHeader(kv[0], kv[1]))
		}
		b.WriteString("<\n")
		io.WriteString(t.w, b.String())
	}
	return resp, err
}

// requestHead is the signed request's line and headers, as -v prints
// them, with the signature, the token and the access key ID redacted.
func requestHead(req *http.Request) string {
	var b strings.Builder
	target := req.URL.EscapedPath()
	if req.URL.Opaque != "" {
		target = req.URL.Opaque
	}
	if target == "" {
		target = "/"
	}
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		target += "?" + redactQuery(req.URL.RawQuery)
	}
	fmt.Fprintf(&b, "> %s %s HTTP/1.1\n", req.Method, target)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	fmt.Fprintf(&b, "> Host: %s\n", host)
	if req.ContentLength > 0 {
		fmt.Fprintf(&b, "> Content-Length: %d\n", req.ContentLength)
	}
	for _, kv := range sortedHeader(req.Header) {
		fmt.Fprintf(&b, "> %s: %s\n", kv[0], redactHeader(kv[0], kv[1]))
	}
	b.WriteString(">\n")
	return b.String()
}

// sortedHeader lists h's values by name, for output that does not
// depend on map order.
func sortedHeader(h http.Header) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[k] {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

var signatureRE = regexp.MustCompile(`(?i)(Signature=)[0-9a-f]+`)

// redactHeader hides the signature and the access key ID of an
// Authorization header, and the session token, as the library does.
func redactHeader(name, value string) string { return kivuli.RedactHeader(name, value) }

// redactQuery hides the signature, the token and the access key ID of a
// presigned query, as the library does, SigV2's too.
func redactQuery(raw string) string { return kivuli.RedactQuery(redactSigV2(raw)) }

// redactText hides signatures in free text, such as a log message.
func redactText(s string) string { return signatureRE.ReplaceAllString(s, "${1}REDACTED") }
