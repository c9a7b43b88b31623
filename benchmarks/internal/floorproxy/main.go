// Command floorproxy is the least a signing proxy can do, the floor that
// benchmarks/run-proxy.sh measures kivuli proxy against: an
// httputil.ReverseProxy whose transport signs each request with the bare
// SDK signer (SignHTTP), an S3 body unsigned and streamed, others read
// whole and hashed. No checks, no limits, no log,
// no metrics, no retries; the same headers signed as kivuli proxy signs.
// It is not safe to run anywhere but a benchmark.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "listen on ADDR")
	upstream := flag.String("upstream", "", "forward to URL")
	signHost := flag.String("sign-host", "", "sign for, and send as Host, HOST")
	service := flag.String("service", "", "the signing service")
	region := flag.String("region", "", "the signing region")
	flag.Parse()
	up, err := url.Parse(*upstream)
	if err != nil || up.Host == "" || *signHost == "" || *service == "" || *region == "" {
		log.Fatal("floorproxy: --upstream URL, --sign-host, --service and --region required")
	}
	creds := aws.Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = up.Scheme, up.Host
			r.Out.Host = *signHost
		},
		BufferPool: &bufferPool{},
		Transport: &signer{
			next:  &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true},
			v4:    v4.NewSigner(),
			creds: creds, service: *service, region: *region,
		},
	}
	log.Fatal(http.ListenAndServe(*listen, rp))
}

// signer signs each request with the SDK's SignHTTP, as the SDK's own
// clients do, and sends it.
type signer struct {
	next            http.RoundTripper
	v4              *v4.Signer
	creds           aws.Credentials
	service, region string
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	hash := emptySHA256
	switch {
	case r.Body == nil || r.Body == http.NoBody:
	case s.service == "s3":
		hash = "UNSIGNED-PAYLOAD" // streamed, as S3 accepts
	default: // read whole and hashed, as other services require
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		hash = hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.Header.Set("X-Amz-Content-Sha256", hash)
	if err := s.v4.SignHTTP(context.Background(), s.creds, r, hash, s.service, s.region, time.Now()); err != nil {
		return nil, err
	}
	return s.next.RoundTrip(r)
}

// bufferPool keeps the 32 KiB buffers that ReverseProxy copies answers
// with, which it otherwise allocates per request.
type bufferPool struct{ sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.Pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.Pool.Put(&b) }
