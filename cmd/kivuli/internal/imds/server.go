package imds

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/guard"
)

const (
	controlPath = "/kivuli/"
	// controlHeader must be on every request to the control endpoint.
	controlHeader = "Kivuli-Control"
)

// imdsServer is kivuli imds's handler: imdstest's emulator (tokens, modes,
// roles, rotation, faults, the instance's metadata, real credentials with
// --from), behind the guard when it serves real credentials, and a
// control endpoint under /kivuli/.
type imdsServer struct {
	emu   *imdstest.Server
	real  bool         // the emulator serves real credentials (--from)
	guard *guard.Guard // the Host and browser checks, of the control endpoint, and of every path with real credentials
}

func (s *imdsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPath) {
		s.control(w, r)
		return
	}
	if s.real {
		if rf := s.guard.Check(r); rf != nil {
			http.Error(w, rf.Msg, rf.Status)
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
	s.emu.ServeHTTP(w, r) // panics with http.ErrAbortHandler to drop a connection
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
	if !base.LoopbackAddr(r.RemoteAddr) {
		http.Error(w, "kivuli: the control endpoint answers loopback clients only", http.StatusForbidden)
		return
	}
	if rf := s.guard.Check(r); rf != nil {
		http.Error(w, rf.Msg, rf.Status)
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
