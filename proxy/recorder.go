package proxy

import (
	"net/http"
	"sync"
)

// statusRecorder records the status and the bytes of an answer; it keeps
// the ResponseWriter's Flush and Hijack reachable (through Unwrap, as
// http.ResponseController finds them).
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// responseBuffers are ReverseProxy's copy buffers, pooled: 64 KiB, so that
// a large download is copied in few writes.
type responseBuffers struct{}

var responsePool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (responseBuffers) Get() []byte  { return *responsePool.Get().(*[]byte) }
func (responseBuffers) Put(b []byte) { responsePool.Put(&b) }
