package kivuli_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithycreds "github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4a"
	v4auth "github.com/aws/smithy-go/aws-http-auth/v4"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
)

// The library's own benchmarks: the credential read path and the cost of
// the transport over the bare SDK signer. benchmarks/ compares with peers.

func benchCredentials(b *testing.B) *kivuli.Credentials {
	srv := imdstest.NewServer(imdstest.Config{})
	b.Cleanup(srv.Close)
	c, err := kivuli.New(context.Background(), kivuli.WithEndpoint(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func BenchmarkRetrieve(b *testing.B) {
	c := benchCredentials(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRetrieveParallel(b *testing.B) {
	c := benchCredentials(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Retrieve(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var okResponse = &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}

// BenchmarkRoundTrip signs a small GET over a Base that answers at once:
// the transport's cost per request, for profiling. The wildcard path is
// OpenSearch's index pattern, which net/url escapes ('*' as %2A).
func BenchmarkRoundTrip(b *testing.B) {
	c := benchCredentials(b)
	t := &kivuli.Transport{Credentials: c, Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return okResponse, nil })}
	for _, bc := range []struct{ name, url string }{
		{"path=plain", "https://search-x.eu-west-2.es.amazonaws.com/logs-2026.11.28/_search?q=status:500&size=10"},
		{"path=wildcard", "https://search-x.eu-west-2.es.amazonaws.com/logs-*/_search?q=status:500"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, bc.url, nil)
				if _, err := t.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU, deferred as defer reportCPU(b)(), reports the CPU time per
// operation (cpu-ns/op) of the loop that follows, beside the wall time.
func reportCPU(b *testing.B) func() {
	start, ok := cpuTime()
	return func() {
		if end, ok2 := cpuTime(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkSigV4A signs a small GET of an S3 object: with SigV4 (a bucket's
// regional host), and with SigV4a (a Multi-Region Access Point) through
// the transport and through smithy-go's signer called directly, with the
// ECDSA key cached and derived afresh (new credentials every request).
// The transport's cost over smithy's is what it adds: the clone, the
// route, the canonical request it hands smithy. cpu-ns/op is the CPU time
// per signature, which other processes on the machine do not inflate.
func BenchmarkSigV4A(b *testing.B) {
	c := benchCredentials(b)
	creds, err := c.Retrieve(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	rotating := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		r := creds
		r.SecretAccessKey += strconv.FormatInt(n.Add(1), 10)
		return r, nil
	})
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return okResponse, nil })
	const (
		bucket = "https://reports.s3.us-east-1.amazonaws.com/2026/11/28/summary.json"
		mrap   = "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com/2026/11/28/summary.json"
	)
	transport := func(name, url string, p aws.CredentialsProvider) {
		t := &kivuli.Transport{Credentials: p, Base: base}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if _, err := t.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	transport("kivuli/alg=SigV4", bucket, c)
	transport("kivuli/alg=SigV4a/key=cached", mrap, c)
	transport("kivuli/alg=SigV4a/key=derived", mrap, rotating)
	smithy := func(name string, newSigner func() *sigv4a.Signer) {
		sc := smithycreds.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
		empty := sha256.Sum256(nil)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, mrap, nil)
				err := newSigner().SignRequest(&sigv4a.SignRequestInput{Request: req, PayloadHash: empty[:], Credentials: sc, Service: "s3", RegionSet: []string{"*"}},
					func(o *v4auth.SignerOptions) { o.DisableDoublePathEscape, o.AddPayloadHashHeader = true, true })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	signer := sigv4a.New()
	smithy("smithy/key=cached", func() *sigv4a.Signer { return signer })
	smithy("smithy/key=derived", func() *sigv4a.Signer { return sigv4a.New() })
}
