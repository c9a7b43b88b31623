package proxycmd

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
)

// --log-failed-requests (aws-sigv4-proxy's flag, and implied by -v as
// there): the start of an upstream's answer of 400 or more, logged once
// the answer is done. The answer itself goes to the client as it comes,
// unchanged: the body is copied on its way, not held. An AWS error body
// can echo what signed the request (S3's SignatureDoesNotMatch quotes the
// string to sign and the canonical request, with the session token, and
// their bytes in hex), so it is logged redacted.

// failedBodyMax is how much of an error body is logged.
const failedBodyMax = 8 << 10

// logFailed wraps the proxy's handler so that the upstream's error answers
// are logged.
func (s *proxyServer) logFailed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fw := &failedWriter{ResponseWriter: w}
		next.ServeHTTP(fw, r)
		if fw.status >= http.StatusBadRequest && !fw.own {
			s.logFailedAnswer(r, fw)
		}
	})
}

// failedWriter keeps the start of an answer of 400 or more.
type failedWriter struct {
	http.ResponseWriter
	status int
	own    bool   // the proxy's own answer (a refusal), not the upstream's
	body   []byte // the first failedBodyMax bytes
	more   bool   // the body went on past them
}

func (w *failedWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *failedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= http.StatusBadRequest && !w.own {
		keep := min(len(b), failedBodyMax-len(w.body))
		w.body = append(w.body, b[:keep]...)
		w.more = w.more || keep < len(b)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController find Flush and Hijack.
func (w *failedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// markOwn tells the failedWriter under w, if any, that the proxy answers
// itself: its refusals are in the access log already.
func markOwn(w http.ResponseWriter) {
	for {
		if fw, ok := w.(*failedWriter); ok {
			fw.own = true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// logFailedAnswer logs the upstream's error answer, its body redacted.
func (s *proxyServer) logFailedAnswer(r *http.Request, fw *failedWriter) {
	body := "(encoded: " + fw.Header().Get("Content-Encoding") + ")"
	if enc := fw.Header().Get("Content-Encoding"); enc == "" || strings.EqualFold(enc, "identity") {
		v, _ := s.creds.Retrieve(r.Context()) // the cached credentials: nothing is fetched
		body = redactBody(fw.body, v)
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "kivuli proxy: upstream error answer",
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("query", kivuli.RedactQuery(r.URL.RawQuery)),
		slog.Int("status", fw.status),
		slog.String("content_type", fw.Header().Get("Content-Type")),
		slog.String("body", body),
		slog.Bool("truncated", fw.more))
}

var (
	// signingElements are the elements of S3's SignatureDoesNotMatch
	// (and its kin) that hold the request's bytes in hex: the token
	// among them. An element cut by failedBodyMax is hidden to the end.
	signingElements = regexp.MustCompile(`(?s)<(CanonicalRequestBytes|StringToSignBytes)>.*?(</(CanonicalRequestBytes|StringToSignBytes)>|$)`)
	// hexBytes is any other long run of bytes in hex, as the elements
	// above write them.
	hexBytes = regexp.MustCompile(`(?i)([0-9a-f]{2} ){16,}[0-9a-f]{2}`)
)

// redactBody is an error body fit to log: the elements and runs of bytes
// in hex hidden, the credentials in hand hidden as they are, escaped for a
// URL or in JSON, and every run that looks like a key, a token or a
// signature hidden as the library hides them in errors.
func redactBody(b []byte, v aws.Credentials) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = signingElements.ReplaceAllString(s, "<$1>"+kivuliRedacted+"</$1>")
	s = hexBytes.ReplaceAllString(s, kivuliRedacted)
	for _, secret := range []string{v.SessionToken, v.SecretAccessKey, v.AccessKeyID} {
		if len(secret) < 4 {
			continue
		}
		for _, form := range []string{secret, url.QueryEscape(secret), strings.ReplaceAll(secret, "/", `\/`)} {
			s = strings.ReplaceAll(s, form, kivuliRedacted)
		}
	}
	return redactRuns(s)
}

// kivuliRedacted stands where something is hidden, as in the library.
const kivuliRedacted = "REDACTED"

// keyIDPrefixes are those of AWS access key IDs and unique IDs.
var keyIDPrefixes = []string{"AKIA", "ASIA", "AROA", "AIDA", "AGPA", "ANPA", "ANVA", "APKA", "ABIA", "ACCA", "AIPA"}

// redactRuns hides each run of base64 characters that looks like a
// credential or a signature, by the library's rule (redact.go's
// secretLike): an access key ID, a run of 20 or more with a digit, + or =,
// or any run of 32 or more (a signature, a token, a secret key, a hash).
// Unlike the library's, a '/' alone does not make a run of 20 a secret: an
// XML closing tag has one.
func redactRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && keyChar(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		if run := s[i:j]; secretLike(run) {
			b.WriteString(kivuliRedacted)
		} else {
			b.WriteString(run)
		}
		i = j
	}
	return b.String()
}

func keyChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

func secretLike(run string) bool {
	if len(run) >= 16 {
		for _, p := range keyIDPrefixes {
			if strings.HasPrefix(run, p) {
				return true
			}
		}
	}
	return len(run) >= 32 || len(run) >= 20 && strings.ContainsAny(run, "0123456789+=")
}
