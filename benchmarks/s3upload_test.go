package benchmarks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kivuli-go/kivuli"
)

// The S3 uploads of issue 21: a PUT of a 64 MiB or 1 GiB object over TLS
// to a server that reads and drops the body, the body rewindable
// (http.NewRequest's GetBody, a bytes.Reader for the SDK) or one-shot (a
// reader that can be read once, its length given), sent:
//
//	kivuli           kivuli's S3 default since issue 21: hashed, a CRC32 header in the same pass, then sent
//	                 (rewindable); aws-chunked, a CRC32 trailer, unsigned chunks over TLS (one-shot)
//	kivuli-chunked   Policy.Chunked: aws-chunked with signed chunks and a CRC32 trailer, one pass
//	kivuli-before    before issue 21: hashed, then sent (rewindable); UNSIGNED-PAYLOAD, unchecked (one-shot)
//	kivuli-unsigned  Payload: PayloadUnsigned, the SDKs' trade: aws-chunked, a CRC32 trailer, unsigned
//	                 chunks over TLS, for both kinds of body (no SHA-256 of the body)
//	sdk-putobject    aws-sdk-go-v2's s3.PutObject with its default checksum (CRC32; aws-chunked with an
//	                 unsigned trailer over TLS)
//	sha256           crypto/sha256 over the body alone: the speed to compare with
//
// with the peak heap each makes the process hold (peak-heap-B/op).

var uploadSizes = []struct {
	name string
	n    int64
}{{"64MiB", 64 << 20}, {"1GiB", 1 << 30}}

var (
	uploadOnce sync.Once
	uploadData []byte // 1 GiB, of which the smaller uploads take the start
	uploadSrv  *httptest.Server
)

// uploadEnv starts the TLS sink and makes the data, once.
func uploadEnv(b *testing.B) (*httptest.Server, []byte) {
	uploadOnce.Do(func() {
		uploadData = bytes.Repeat([]byte("kivuli upload bench, "), (1<<30)/21+1)[:1<<30]
		uploadSrv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"x"`)
		}))
	})
	return uploadSrv, uploadData
}

// oneShotReader can be read once: no Seek, no WriteTo, so that nothing
// learns its length but from Content-Length.
type oneShotReader struct{ r io.Reader }

func (o *oneShotReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func BenchmarkS3Upload(b *testing.B) {
	srv, data := uploadEnv(b)
	e := getEnv(b)
	host := strings.TrimPrefix(srv.URL, "https://")
	policy := func(edit func(*kivuli.Policy)) kivuli.Policies {
		p := kivuli.DefaultPolicies()
		pol := p["s3"]
		edit(&pol)
		p["s3"] = pol
		return p
	}
	before := policy(func(p *kivuli.Policy) { p.Checksum = "" })
	chunked := policy(func(p *kivuli.Policy) { p.Chunked = true })
	unsigned := policy(func(p *kivuli.Policy) { p.Payload = kivuli.PayloadUnsigned })
	kivuliPut := func(policies kivuli.Policies) func(body []byte, oneShot bool) error {
		t := &kivuli.Transport{Credentials: e.creds, Service: "s3", Region: "us-east-1", AllowedHosts: []string{host},
			Base: srv.Client().Transport, Policies: policies}
		return func(body []byte, oneShot bool) error {
			req, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/key", bytes.NewReader(body))
			if err != nil {
				return err
			}
			if oneShot {
				req.Body, req.GetBody = io.NopCloser(&oneShotReader{bytes.NewReader(body)}), nil
			}
			resp, err := t.RoundTrip(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}
	}
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: e.creds, HTTPClient: srv.Client(),
		// What config.LoadDefaultConfig gives: a CRC32 on every upload.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})
	sdkPut := func(body []byte, oneShot bool) error {
		var r io.Reader = bytes.NewReader(body)
		if oneShot {
			r = &oneShotReader{r}
		}
		_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("key"), Body: r, ContentLength: aws.Int64(int64(len(body))),
		})
		return err
	}
	impls := []struct {
		name string
		put  func(body []byte, oneShot bool) error
	}{
		{"kivuli", kivuliPut(nil)},
		{"kivuli-chunked", kivuliPut(chunked)},
		{"kivuli-before", kivuliPut(before)},
		{"kivuli-unsigned", kivuliPut(unsigned)},
		{"sdk-putobject", sdkPut},
		{"sha256", func(body []byte, _ bool) error { sha256.Sum256(body); return nil }},
	}
	for _, size := range uploadSizes {
		body := data[:size.n]
		for _, kind := range []string{"rewindable", "one-shot"} {
			for _, im := range impls {
				b.Run("size="+size.name+"/body="+kind+"/impl="+im.name, func(b *testing.B) {
					op := func() error { return im.put(body, kind == "one-shot") }
					b.SetBytes(size.n)
					b.ReportAllocs()
					for b.Loop() {
						if err := op(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(measurePeakHeap(b, op)), "peak-heap-B/op")
				})
			}
		}
	}
}
