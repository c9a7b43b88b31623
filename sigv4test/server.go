package sigv4test

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
)

// Server is a loopback HTTP server that verifies the SigV4 signature of
// every request it receives. Close it when done, as with httptest.Server.
type Server struct {
	*httptest.Server
	// Verifier checks each request. Do not change it while requests are
	// in flight.
	Verifier *Verifier

	mu      sync.Mutex
	records []Record
}

// NewServer starts a loopback server that verifies every request with v
// (nil: a zero Verifier, which knows no key and so rejects every request).
//
// An accepted request is passed to next, whose r.Body still holds the body.
// With next nil the server answers 200 with a small JSON body
// {"ok":true,"service":...,"bytes":N,"method":...,"path":...}.
//
// With [Verifier.Stream] set, a request's head is checked before next is
// called and its body as next reads it ([Verifier.VerifyStream]): r.Body
// is the [Stream], which returns an *[Error] where the body fails a check
// (a handler should then answer with an error, or return without
// answering: the server then answers it with the error below). After next
// returns, the server reads what next left of the body, so that the
// request's [Record], added to Records then, holds the verdict on all of
// it. Without a handler, the server reads the body before it answers.
//
// A rejected request gets 403 with the header X-Amzn-ErrorType: Code and an
// AWS-style JSON error body {"__type": Code, "message": Message}, or, when the
// signing service is "s3", the S3 XML error form
// <Error><Code>..</Code><Message>..</Message><CanonicalRequest>..</CanonicalRequest>...</Error>.
// For SignatureDoesNotMatch the JSON message, like AWS's, ends with the
// canonical request and string to sign the server computed (never the token).
//
// Every response, accepted or not, carries a Date header with the
// verifier's time, so clients can correct their clock skew.
func NewServer(v *Verifier, next http.Handler) *Server {
	if v == nil {
		v = &Verifier{}
	}
	s := &Server{Verifier: v}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, next)
	}))
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	w.Header().Set("Date", s.Verifier.now().UTC().Format(http.TimeFormat))
	if s.Verifier.Stream {
		s.serveStream(w, r, next)
		return
	}
	rec := s.Verifier.Verify(r)
	s.record(rec)
	if rec.Err != nil {
		writeError(w, rec)
		return
	}
	if next != nil {
		next.ServeHTTP(w, r)
		return
	}
	writeOK(w, rec)
}

// serveStream checks the request's head, then passes it on with the
// checked body as r.Body. After the handler, it reads what is left so
// that the Record holds the verdict on the whole body, and answers a
// rejection the handler did not.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, next http.Handler) {
	st, err := s.Verifier.VerifyStream(r)
	if err != nil {
		rec := st.Record()
		s.record(rec)
		writeError(w, rec)
		return
	}
	tw := &trackingWriter{ResponseWriter: w}
	if next != nil {
		next.ServeHTTP(tw, r)
	}
	io.Copy(io.Discard, st)
	rec := st.Record()
	s.record(rec)
	switch {
	case tw.wrote:
	case rec.Err != nil:
		writeError(w, rec)
	case next == nil:
		writeOK(w, rec)
	}
}

func (s *Server) record(rec Record) {
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.mu.Unlock()
}

// writeOK is the answer of a Server without a handler to an accepted request.
func writeOK(w http.ResponseWriter, rec Record) {
	writeJSON(w, http.StatusOK, struct {
		OK      bool   `json:"ok"`
		Service string `json:"service"`
		Bytes   int64  `json:"bytes"`
		Method  string `json:"method"`
		Path    string `json:"path"`
	}{true, rec.Service, rec.BodyLen, rec.Method, rec.Path})
}

// trackingWriter notes whether the handler began its answer.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(p)
}

// Flush lets a handler that streams its answer flush it.
func (t *trackingWriter) Flush() {
	t.wrote = true
	http.NewResponseController(t.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func writeError(w http.ResponseWriter, rec Record) {
	e, ok := rec.Err.(*Error)
	if !ok {
		e = &Error{Code: "InternalFailure", Message: rec.Err.Error()}
	}
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	if rec.Service == "s3" {
		body, _ := xml.Marshal(struct {
			XMLName          xml.Name `xml:"Error"`
			Code             string
			Message          string
			AWSAccessKeyID   string `xml:"AWSAccessKeyId,omitempty"`
			CanonicalRequest string `xml:",omitempty"`
			StringToSign     string `xml:",omitempty"`
		}{Code: e.Code, Message: e.Message, AWSAccessKeyID: rec.AccessKeyID,
			CanonicalRequest: e.CanonicalRequest, StringToSign: e.StringToSign})
		body = append([]byte(xml.Header), body...)
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusForbidden)
		w.Write(body)
		return
	}
	msg := e.Message
	if e.Code == "SignatureDoesNotMatch" && e.CanonicalRequest != "" {
		msg += "\n\nThe Canonical String for this request should have been\n'" + e.CanonicalRequest +
			"'\n\nThe String-to-Sign should have been\n'" + e.StringToSign + "'\n"
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	writeJSON(w, http.StatusForbidden, struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Code, msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// Records returns copies of the records of the requests received since the
// server started or was last Reset, in the order they were verified.
func (s *Server) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(s.records))
	for i, r := range s.records {
		r.SignedHeaders = slices.Clone(r.SignedHeaders)
		if e, ok := r.Err.(*Error); ok {
			c := *e
			r.Err = &c
		}
		out[i] = r
	}
	return out
}

// Reset forgets the records received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	s.records = nil
	s.mu.Unlock()
}
