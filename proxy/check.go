package proxy

import (
	"net/http"
	"strings"

	"github.com/kivuli-go/kivuli/internal/guard"
)

// check refuses a request that is not forwarded at all, before it takes a
// turn or its body is read.
func (p *Proxy) check(r *http.Request) *RequestError {
	if p.guard != nil { // a Router's route: the Router checked
		if rf := p.guard.Check(r); rf != nil {
			return guardError(rf)
		}
	}
	switch {
	case seenBefore(r.Header, p.via):
		return &RequestError{Status: http.StatusLoopDetected, Msg: "kivuli proxy: this request has come through this proxy before: Config.Upstream leads back to it"}
	case r.Method == http.MethodConnect:
		return &RequestError{Status: http.StatusMethodNotAllowed, Msg: "kivuli proxy: CONNECT is not forwarded: this is a reverse proxy to " + p.upstream.Host}
	case r.RequestURI == "*":
		return &RequestError{Status: http.StatusBadRequest, Msg: "kivuli proxy: a request for * is not forwarded"}
	case p.prefixed && climbs(strings.TrimPrefix(r.URL.EscapedPath(), p.strip)):
		return &RequestError{Status: http.StatusBadRequest, Msg: "kivuli proxy: the path climbs out of the Config.Upstream's path " + p.upstream.EscapedPath() + " (a '..' segment, or one encoded, above it): the client never chooses where a request goes"}
	case awsChunked(r.Header) && !p.s3:
		// aws-chunked framing is S3's (awschunked.go): forwarded as a
		// plain body elsewhere, the framing would be taken for the
		// content (aws-sigv4-proxy#87).
		return &RequestError{Status: http.StatusBadRequest, Msg: "kivuli proxy: the body is aws-chunked (X-Amz-Content-Sha256: STREAMING-...), which only S3 takes: configure the client to send a plain body, which the proxy signs"}
	}
	return nil
}

// guardError is the answer to a request the guard refuses.
func guardError(rf *guard.Refusal) *RequestError {
	return &RequestError{Status: rf.Status, Stage: "guard", Reason: rf.Reason, Msg: rf.Msg}
}

// upgradeType is the protocol a request asks to switch to, or "".
func upgradeType(h http.Header) string {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}
