package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
)

// The upstream accepts what kivuli signs (a small GET, a streamed
// UNSIGNED-PAYLOAD upload, a hashed one) and refuses a body that does not
// match its signed hash: the benchmark's check is a real one.
func TestUpstreamChecks(t *testing.T) {
	up := &upstream{size: 1 << 20, verifier: newVerifier()}
	srv := httptest.NewServer(up)
	defer srv.Close()
	host := srv.Listener.Addr().String()
	tr := &kivuli.Transport{Credentials: staticProvider{}, AllowedHosts: []string{host}, Service: "s3", Region: region}
	send := func(method, path string, body io.Reader, n int64) int {
		req, _ := http.NewRequest(method, "http://"+host+path, body)
		req.Host = s3Host
		req.ContentLength = n
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send("GET", "/objects/x", nil, 0); c != 200 {
		t.Errorf("GET: %d", c)
	}
	if c := send("PUT", "/objects/x", io.NopCloser(&patternReader{n: 3 << 20}), 3<<20); c != 200 { // one-shot: UNSIGNED-PAYLOAD
		t.Errorf("streamed PUT: %d", c)
	}
	if c := send("PUT", "/objects/x", strings.NewReader(strings.Repeat("a", 2<<20)), 2<<20); c != 200 { // hashed
		t.Errorf("hashed PUT: %d", c)
	}
	if up.rejected.Load() != 0 {
		t.Fatalf("rejected: %s", up.firstRejection())
	}
	// A body changed after signing.
	req, _ := http.NewRequest("PUT", "http://"+host+"/objects/x", strings.NewReader(strings.Repeat("b", 2<<20)))
	req.Host = s3Host
	req.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
	resp, err := (&kivuli.Transport{Credentials: staticProvider{}, AllowedHosts: []string{host}, Service: "s3", Region: region,
		Base: rewriteHash{}}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || up.rejected.Load() != 1 {
		t.Errorf("a body that does not match its hash: %d, %d rejected", resp.StatusCode, up.rejected.Load())
	}
}

// rewriteHash replaces the body after signing.
type rewriteHash struct{}

func (rewriteHash) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Body = io.NopCloser(strings.NewReader(strings.Repeat("c", 2<<20)))
	return http.DefaultTransport.RoundTrip(r)
}

func TestSummary(t *testing.T) {
	if m, lo, hi, _ := summary([]float64{5, 1, 3}); m != 3 || lo != 1 || hi != 5 {
		t.Errorf("%v %v %v", m, lo, hi)
	}
	if m, _, _, _ := summary([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("%v", m)
	}
	if _, _, _, ok := summary(nil); ok {
		t.Error("ok for nothing")
	}
	if n, err := parseSize("1GiB"); err != nil || n != 1<<30 {
		t.Errorf("%v %v", n, err)
	}
}

// staticProvider gives the benchmark's credentials.
type staticProvider struct{}

func (staticProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, nil
}
