package curl

import (
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// A URL whose query is signed already is sent exactly as typed, not
// signed again, and standard error says so; the flags that would sign it
// are refused.
func TestCurlSignedURLSentAsIs(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	bucket := "my-bucket.s3.eu-west-2.amazonaws.com"
	origin := "http://" + f.Host()

	// A URL kivuli presigned, pasted back: the endpoint takes its
	// presignature, and no credentials are needed (the IMDS here is
	// dead).
	r := runCmd(t, "", curlArgs(f, bucket, "--presign", origin+"/report.pdf?versionId=3")...)
	if r.Code != 0 {
		t.Fatalf("--presign: exit %d: %s", r.Code, r.Stderr)
	}
	presigned := strings.TrimSpace(r.Stdout)
	r = runCmd(t, "", "curl", "--imds-endpoint", "http://127.0.0.1:1", "-H", "Host: "+bucket, presigned)
	if r.Code != 0 || !strings.Contains(r.Stderr, "kivuli: the URL is signed already (its query holds X-Amz-Algorithm): sending it as it is, not signed again") {
		t.Fatalf("presigned URL: exit %d: %s", r.Code, r.Stderr)
	}
	if rec := f.Accepted(t); !rec.Presigned || rec.Path != "/report.pdf" {
		t.Errorf("presigned URL: the endpoint got %+v", rec)
	}

	// Signing parameters in any case or escaping, SigV4's and SigV2's:
	// the query arrives as typed (the recorder redacts the values).
	for _, q := range []string{
		"a=1&X-Amz-Signature=abc&X-Amz-Security-Token=T",
		"a=1&x-amz-signature=abc",
		"X-AMZ-CREDENTIAL=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&a=1",
		"a=1&%58-Amz-Date=20260101T000000Z",
		"a=1&X-Amz-Expires=60",
		"AWSAccessKeyId=AKIDEXAMPLE&Signature=c2lnbmF0dXJl%3D&Expires=1",
	} {
		f.AWS.Reset()
		r := runCmd(t, "", curlArgs(f, bucket, origin+"/k?"+q)...)
		if r.Code != 0 || !strings.Contains(r.Stderr, "signed already") {
			t.Errorf("%s: exit %d: %s", q, r.Code, r.Stderr)
			continue
		}
		recs := f.AWS.Records()
		if len(recs) != 1 {
			t.Fatalf("%s: %d requests", q, len(recs))
		}
		if got, want := queryKeys(recs[0].RawQuery), queryKeys(q); got != want {
			t.Errorf("%s: sent %q: keys %s, typed %s", q, recs[0].RawQuery, got, want)
		}
	}

	// -v shows the request, the query's secrets redacted, SigV2's too.
	f.AWS.Reset()
	r = runCmd(t, "", curlArgs(f, bucket, "-v", origin+"/k?AWSAccessKeyId=AKIDSECRET&Signature=SIGSECRET&x-amz-security-token=TOKSECRET")...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "> GET /k?") {
		t.Fatalf("-v: exit %d: %s", r.Code, r.Stderr)
	}
	for _, secret := range []string{"AKIDSECRET", "SIGSECRET", "TOKSECRET"} {
		if strings.Contains(r.Stderr, secret) {
			t.Errorf("-v shows %s: %s", secret, r.Stderr)
		}
	}

	// The flags that sign are refused, before anything is sent.
	f.AWS.Reset()
	for _, args := range [][]string{{"--presign"}, {"--presign", "--expires-in", "1h"}, {"--region", "eu-west-2"}, {"--service", "s3"}, {"--checksum", "crc32"}, {"--aws-retry"}} {
		r := runCmd(t, "", curlArgs(f, bucket, append(args, origin+"/k?X-Amz-Signature=abc")...)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "signed already") || r.Stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	if n := len(f.AWS.Records()); n != 0 {
		t.Errorf("refused flags: %d requests sent", n)
	}
}

// queryKeys is the keys of a raw query, in order.
func queryKeys(raw string) string {
	var keys []string
	for kv := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	return strings.Join(keys, "&")
}
