package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/imdstest"
)

// Paths that the emulator of kivuli imds serves besides imdstest's.
const (
	zonePath     = "/latest/meta-data/placement/availability-zone"
	identityPath = "/latest/dynamic/instance-identity/document"
	credsPrefix  = "/latest/meta-data/iam/security-credentials/"
	controlPath  = "/kivuli/"
	// controlHeader must be on every request to the control endpoint.
	controlHeader = "Kivuli-Control"
)

// imdsServer is kivuli imds's handler: imdstest's emulator (tokens, modes,
// roles, rotation, faults), with the instance's region and identity
// document, real credentials in place of the fake ones with --from, HEAD
// answered as GET without a body, and a control endpoint under /kivuli/.
// It stays a thin wrapper, so that it can move onto imdstest's own
// server when imdstest has one.
type imdsServer struct {
	emu    *imdstest.Server
	region string
	real   aws.CredentialsProvider // nil: the emulator's fake credentials
	start  time.Time
	guard  *guard // the Host and browser checks, of the control endpoint, and of every path with real credentials
}

func (s *imdsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPath) {
		s.control(w, r)
		return
	}
	if s.real != nil {
		if rf := s.guard.check(r); rf != nil {
			http.Error(w, rf.msg, rf.status)
			return
		}
		if len(r.Header.Values("X-Forwarded-For")) > 0 {
			// EC2 refuses a token PUT that a proxy relayed; with real
			// credentials every path does, so that --v1 GETs do not leak
			// them through an open proxy either.
			http.Error(w, "kivuli: a request relayed by a proxy (X-Forwarded-For) is refused", http.StatusForbidden)
			return
		}
	}
	head := r.Method == http.MethodHead
	if head {
		// IMDS answers HEAD as GET, without the body (EC2 User Guide).
		r = r.Clone(r.Context())
		r.Method = http.MethodGet
	}
	rec := httptest.NewRecorder()
	s.emu.ServeHTTP(rec, r) // panics with http.ErrAbortHandler to drop a connection
	status, body := rec.Code, rec.Body.Bytes()
	header := rec.Header()
	if extra, ok := s.extra(r.URL.Path); ok && r.Method == http.MethodGet && status == http.StatusNotFound {
		// imdstest checked the token and the faults, and knows no such
		// path: the answer is ours.
		status, body = http.StatusOK, []byte(extra)
		header.Set("Content-Type", "text/plain")
		if strings.HasSuffix(r.URL.Path, "/document") {
			header.Set("Content-Type", "application/json")
		}
	}
	if s.real != nil && status == http.StatusOK && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, credsPrefix) && len(r.URL.Path) > len(credsPrefix) {
		var err error
		if body, err = s.realDocument(r, body); err != nil {
			status, body = http.StatusInternalServerError, []byte(message(err))
			header.Set("Content-Type", "text/plain")
		}
	}
	header.Set("Content-Length", strconv.Itoa(len(body)))
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	if !head {
		w.Write(body)
	}
}

// extra returns what the emulator serves at path beyond imdstest.
func (s *imdsServer) extra(path string) (string, bool) {
	switch path {
	case zonePath:
		return s.region + "a", true
	case identityPath:
		doc, _ := json.MarshalIndent(map[string]any{
			"accountId":        "123456789012",
			"architecture":     "x86_64",
			"availabilityZone": s.region + "a",
			"imageId":          "ami-0123456789abcdef0",
			"instanceId":       "i-0123456789abcdef0",
			"instanceType":     "t3.micro",
			"pendingTime":      s.start.UTC().Format(time.RFC3339),
			"privateIp":        "127.0.0.1",
			"region":           s.region,
			"version":          "2017-09-30",
		}, "", "  ")
		return string(doc), true
	}
	return "", false
}

// credentialDocument is IMDS's credential document, in its field order.
type credentialDocument struct {
	Code            string
	Message         string `json:",omitempty"`
	LastUpdated     string
	Type            string `json:",omitempty"`
	AccessKeyID     string `json:"AccessKeyId,omitempty"`
	SecretAccessKey string `json:",omitempty"`
	Token           string `json:",omitempty"`
	Expiration      string `json:",omitempty"`
}

// realDocument puts the real credentials in a document the emulator
// served, keeping a fault's doing: a document that is not a success is
// left alone, and an Expiration a fault put in the past stays.
func (s *imdsServer) realDocument(r *http.Request, body []byte) ([]byte, error) {
	var doc credentialDocument
	if json.Unmarshal(body, &doc) != nil || doc.Code != "Success" || doc.AccessKeyID == "" {
		return body, nil
	}
	v, err := s.real.Retrieve(r.Context())
	if err != nil {
		return nil, err
	}
	doc.AccessKeyID, doc.SecretAccessKey, doc.Token = v.AccessKeyID, v.SecretAccessKey, v.SessionToken
	exp, err := time.Parse(time.RFC3339, doc.Expiration)
	if err != nil || exp.After(time.Now()) { // not an expired fault
		if v.CanExpire {
			doc.Expiration = v.Expires.UTC().Truncate(time.Second).Format(time.RFC3339)
		} else {
			doc.Expiration = time.Now().Add(6 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// control is the endpoint that switches faults at run time:
//
//	POST   /kivuli/faults   a fault spec a line: queue them
//	DELETE /kivuli/faults   clear every fault
//	POST   /kivuli/rotate   issue new credentials now
//	GET    /kivuli/stats    the requests counted, as JSON
//
// It answers loopback clients only, and requests with the Kivuli-Control
// header, which a web page cannot send to another origin without asking
// first (a CORS preflight, which the emulator never grants), under the
// guard's Host rule.
func (s *imdsServer) control(w http.ResponseWriter, r *http.Request) {
	if !loopbackPeer(r.RemoteAddr) {
		http.Error(w, "kivuli: the control endpoint answers loopback clients only", http.StatusForbidden)
		return
	}
	if rf := s.guard.check(r); rf != nil {
		http.Error(w, rf.msg, rf.status)
		return
	}
	if r.Header.Get(controlHeader) == "" {
		http.Error(w, "kivuli: the control endpoint wants the header "+controlHeader+": 1 (a web page cannot send it)", http.StatusForbidden)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /kivuli/faults":
		var faults []imdstest.Fault
		sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, 64<<10))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				f, err := parseFault(line)
				if err != nil {
					http.Error(w, "kivuli: "+err.Error(), http.StatusBadRequest)
					return
				}
				faults = append(faults, f)
			}
		}
		if err := sc.Err(); err != nil || len(faults) == 0 {
			http.Error(w, "kivuli: send fault specs, one a line", http.StatusBadRequest)
			return
		}
		for _, f := range faults {
			s.emu.Inject(f)
		}
		w.WriteHeader(http.StatusNoContent)
	case "DELETE /kivuli/faults":
		s.emu.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "POST /kivuli/rotate":
		s.emu.Rotate()
		w.WriteHeader(http.StatusNoContent)
	case "GET /kivuli/stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.emu.Stats())
	default:
		http.Error(w, fmt.Sprintf("kivuli: %s %s: the control endpoint has POST and DELETE /kivuli/faults, POST /kivuli/rotate, GET /kivuli/stats", r.Method, r.URL.Path), http.StatusNotFound)
	}
}
