package sigv4test

import (
	"encoding/json"
	"encoding/xml"
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
	rec := s.Verifier.Verify(r)
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.mu.Unlock()

	w.Header().Set("Date", s.Verifier.now().UTC().Format(http.TimeFormat))
	if rec.Err != nil {
		writeError(w, rec)
		return
	}
	if next != nil {
		next.ServeHTTP(w, r)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK      bool   `json:"ok"`
		Service string `json:"service"`
		Bytes   int64  `json:"bytes"`
		Method  string `json:"method"`
		Path    string `json:"path"`
	}{true, rec.Service, rec.BodyLen, rec.Method, rec.Path})
}

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
