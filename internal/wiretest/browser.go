package wiretest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BrowserRequest is one request a test sends, as a browser would: its method, path, headers
// (Host among them) and body.
type BrowserRequest struct {
	Name, Method, Path string
	Header             map[string]string
	Body               string
}

// Send sends br to base (http://host:port) and returns the status and
// the body of the answer.
func (br BrowserRequest) Send(t *testing.T, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(br.Method, base+br.Path, strings.NewReader(br.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range br.Header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", br.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// CrossSite are the headers of a cross-site request from evil.example.
func CrossSite(h map[string]string) map[string]string {
	out := map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	for k, v := range h {
		out[k] = v
	}
	return out
}
