package testkit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
)

// inMemoryCredentials returns an in-memory IMDS emulator of one-hour
// credentials, rotated 15 minutes before they expire, and kivuli
// credentials read from it, for tests on fake time (testing/synctest);
// both are closed when the test ends.
func InMemoryCredentials(t *testing.T) (*imdstest.Server, *kivuli.Credentials) {
	t.Helper()
	imds := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour, RotateBefore: 15 * time.Minute})
	t.Cleanup(imds.Close)
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint("http://imds.test"),
		kivuli.WithHTTPClient(&http.Client{Transport: imds.RoundTripper()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { creds.Close() })
	return imds, creds
}

// HandlerTransport hands requests to a handler, as from loopback.
type HandlerTransport struct{ Handler http.Handler }

// RoundTrip serves req with the handler and returns what it wrote.
func (t HandlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr = "127.0.0.1:40000"
	if r.Method == "" {
		r.Method = http.MethodGet // as a client sends it, and a server sees it
	}
	r.RequestURI = req.URL.RequestURI()
	w := httptest.NewRecorder()
	t.Handler.ServeHTTP(w, r)
	return w.Result(), nil
}
