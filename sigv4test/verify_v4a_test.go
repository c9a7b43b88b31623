package sigv4test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestVerifyV4A: SigV4a requests are checked as SigV4 ones are, the
// signature with the public key derived from the secret, and the region
// set against the host: "*" reaches any endpoint, a region or a pattern
// only its own, and an endpoint of all regions (an S3 Multi-Region Access
// Point) takes "*" and SigV4a alone.
func TestVerifyV4A(t *testing.T) {
	const mrap = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"
	for _, tc := range []struct {
		name, host, set string
		presign         bool
		tamper          func(r *http.Request)
		want            []string // nil: accepted
	}{
		{"MRAP, *", mrap, "*", false, nil, nil},
		{"MRAP, *, presigned", mrap, "*", true, nil, nil},
		{"a regional endpoint, *", "sts.eu-west-2.amazonaws.com", "*", false, nil, nil},
		{"a regional endpoint, its region among others", "sts.eu-west-2.amazonaws.com", "us-east-1,eu-west-2", false, nil, nil},
		{"a regional endpoint, a pattern", "sts.eu-west-2.amazonaws.com", "eu-*", false, nil, nil},
		{"a regional endpoint, another region", "sts.eu-west-2.amazonaws.com", "us-east-1", false, nil, []string{"SignatureDoesNotMatch", `"us-east-1"`, "eu-west-2"}},
		{"MRAP, one region", mrap, "us-east-1", false, nil, []string{"SignatureDoesNotMatch", "does not cover"}},
		{"the region set changed", mrap, "*", false, func(r *http.Request) { r.Header.Set("X-Amz-Region-Set", "*,us-east-1") }, []string{"SignatureDoesNotMatch", "signature we calculated"}},
		{"the region set dropped", mrap, "*", false, func(r *http.Request) { r.Header.Del("X-Amz-Region-Set") }, []string{"IncompleteSignature", "X-Amz-Region-Set"}},
		{"a signed header changed", mrap, "*", false, func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "b") }, []string{"SignatureDoesNotMatch"}},
		{"the signature is not DER", mrap, "*", false, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature=30", "Signature=31", 1))
		}, []string{"SignatureDoesNotMatch"}},
		{"a region in the scope", mrap, "*", false, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/us-east-1/s3/", 1))
		}, []string{"IncompleteSignature", "<AccessKeyID>/<YYYYMMDD>/<service>/aws4_request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://"+tc.host+"/key", nil)
			r.Header.Set("X-Amz-Meta-A", "a")
			s := defaultSigner()
			s.service, s.regionSet, s.presign, s.contentSHA = "s3", tc.set, tc.presign, "body"
			if tc.presign {
				s.contentSHA = ""
			}
			if tc.host != mrap {
				s.service = "sts"
			}
			sig := s.sign(t, r, nil)
			if tc.tamper != nil {
				tc.tamper(r)
			}
			rec := testVerifier().Verify(r)
			noLeak(t, rec, sig)
			if tc.want == nil {
				if rec.Err != nil {
					t.Fatalf("refused: %v", rec.Err)
				}
				if rec.Algorithm != algorithmV4A || rec.Region != tc.set {
					t.Errorf("Record: algorithm %q, region %q", rec.Algorithm, rec.Region)
				}
				return
			}
			if rec.Err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, rec.Err)
				}
			}
		})
	}
	t.Run("SigV4 to an endpoint of all regions", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://"+mrap+"/key", nil)
		s := defaultSigner()
		s.service, s.region, s.contentSHA = "s3", "us-east-1", "body"
		s.sign(t, r, nil)
		rec := testVerifier().Verify(r)
		if rec.Err == nil || !strings.Contains(rec.Err.Error(), "takes "+algorithmV4A+" only") {
			t.Fatalf("want a refusal naming SigV4a: %v", rec.Err)
		}
	})
}
