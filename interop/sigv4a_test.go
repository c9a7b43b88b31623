package interop

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mrapARN is an S3 Multi-Region Access Point, which the SDK's endpoint
// rules resolve to mrapHost and sign with SigV4a for the region set "*".
const (
	mrapARN  = "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap"
	mrapHost = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"
)

// loopback delivers every request to a local server, its Host kept: the
// SDK's S3 client, and kivuli's Transport, sign for the AWS host and are
// checked by a sigv4test server that reads it.
type loopback struct{ url string }

func (l loopback) Do(r *http.Request) (*http.Response, error) { return l.RoundTrip(r) }

func (l loopback) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.Host = r.URL.Host
	out.URL.Scheme, out.URL.Host = "http", strings.TrimPrefix(l.url, "http://")
	return http.DefaultTransport.RoundTrip(out)
}

// TestS3MultiRegionAccessPoint: aws-sdk-go-v2's S3 client, given a
// Multi-Region Access Point's ARN, signs GetObject and PutObject through
// its own middleware with SigV4a; kivuli's Transport signs the same
// requests to the host the SDK resolved. sigv4test accepts both, with the
// same algorithm, signing name, region set, token placement and path.
func TestS3MultiRegionAccessPoint(t *testing.T) {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	require.NoError(t, err)
	defer creds.Close()
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "object")
	}))
	defer endpoint.Close()
	l := loopback{endpoint.URL}

	client := s3.NewFromConfig(aws.Config{Region: "eu-west-2", Credentials: creds, HTTPClient: l})
	get, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(mrapARN), Key: aws.String("reports/a b.json")})
	require.NoError(t, err)
	get.Body.Close()
	body := strings.Repeat("multi-region ", 100)
	_, err = client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(mrapARN), Key: aws.String("reports/c.json"), Body: strings.NewReader(body)})
	require.NoError(t, err)
	sdk := endpoint.Records()
	require.Len(t, sdk, 2)

	tr := &kivuli.Transport{Credentials: creds, Base: l}
	req, _ := http.NewRequest(http.MethodGet, "https://"+mrapHost+"/reports/a%20b.json", nil)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodPut, "https://"+mrapHost+"/reports/c.json", strings.NewReader(body))
	resp, err = tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	recs := endpoint.Records()
	require.Len(t, recs, 4)
	kiv := recs[2:]

	for i, name := range []string{"GetObject", "PutObject"} {
		s, k := sdk[i], kiv[i]
		require.NoError(t, s.Err, "the SDK's %s", name)
		require.NoError(t, k.Err, "kivuli's %s", name)
		assert.Equal(t, "AWS4-ECDSA-P256-SHA256", s.Algorithm, name)
		assert.Equal(t, s.Algorithm, k.Algorithm, name)
		assert.Equal(t, "s3", s.Service, name)
		assert.Equal(t, s.Service, k.Service, name)
		assert.Equal(t, "*", s.Region, name)
		assert.Equal(t, s.Region, k.Region, name)
		assert.Equal(t, s.Token, k.Token, name)
		assert.Equal(t, s.Path, k.Path, name)
		assert.Contains(t, k.SignedHeaders, "x-amz-region-set", name)
		t.Logf("%s: the SDK signed %v (payload %s, checksum %q), kivuli %v (payload %s, checksum %q)",
			name, s.SignedHeaders, s.PayloadHash, s.Checksum, k.SignedHeaders, k.PayloadHash, k.Checksum)
	}
	// The SDK sends the upload UNSIGNED-PAYLOAD, without a checksum;
	// kivuli hashes it, and adds the CRC32 its s3 policy asks for, which
	// sigv4test checks against the body.
	assert.Equal(t, "CRC32", kiv[1].Checksum)
	assert.Equal(t, int64(len(body)), kiv[1].BodyLen)
	assert.Equal(t, sdk[1].BodyLen, kiv[1].BodyLen)
}
