package curl

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// mrap is an S3 Multi-Region Access Point, which takes only SigV4a,
// signed for every region.
const mrap = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"

// TestCurlSigV4A (issue 22): kivuli curl signs a request to a Multi-Region
// Access Point with SigV4a for the region set "*", shows it with -v as it
// shows SigV4, and presigns it; the endpoint checks the ECDSA signature.
func TestCurlSigV4A(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	r := runCmd(t, "", curlArgs(f, mrap, "-v", "http://"+f.Host()+"/report.csv")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	rec := f.Accepted(t)
	if rec.Algorithm != "AWS4-ECDSA-P256-SHA256" || rec.Region != "" && rec.Region != "*" {
		t.Errorf("signed %s for %q", rec.Algorithm, rec.Region)
	}
	for _, want := range []string{"x-amz-region-set:*", "AWS4-ECDSA-P256-SHA256", "canonical request", "string to sign"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("-v does not show %q:\n%s", want, r.Stderr)
		}
	}
	f.AWS.Reset()
	r = runCmd(t, "", curlArgs(f, mrap, "--presign", "10m", "http://"+f.Host()+"/report.csv")...)
	if r.Code != 0 {
		t.Fatalf("--presign: exit %d: %s", r.Code, r.Stderr)
	}
	u := strings.TrimSpace(r.Stdout)
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Host = mrap
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rec := f.Accepted(t); !rec.Presigned || rec.Algorithm != "AWS4-ECDSA-P256-SHA256" {
		t.Errorf("the presigned URL: %+v", rec)
	}
}
