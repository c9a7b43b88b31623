package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// benchCreds are the credentials of the benchmarks.
var benchCreds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "token", CanExpire: false}

// BenchmarkSmallGET is a small GET through a Proxy, served on loopback
// as the command serves it, beside the floor: httputil.ReverseProxy whose
// transport signs with the bare SDK signer. Each op is one request from
// a client to its answer; the client, the proxy and the upstream share
// the process, so allocs/op are the three's (the client's and upstream's
// are the same for both).
func BenchmarkSmallGET(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"took":1,"hits":{"total":0,"hits":[]}}`)
	}))
	defer upstream.Close()
	const host = "search-bench-abc.eu-west-2.es.amazonaws.com"
	for _, impl := range []string{"kivuli", "floor"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var h http.Handler
			if impl == "kivuli" {
				p, err := New(context.Background(), Config{
					Upstream: upstream.URL, AllowedHosts: []string{upstream.Listener.Addr().String()}, SignHost: host,
					Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return benchCreds, nil }),
				})
				if err != nil {
					b.Fatal(err)
				}
				h = p
			} else {
				h = floorProxy(upstream.URL, host)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: h}
			go srv.Serve(ln)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			u := "http://" + ln.Addr().String() + "/logs-2026.12.01/_search?q=status:500&size=10"
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// floorProxy is the least a signing proxy does, as benchmarks/internal/floorproxy.
func floorProxy(upstream, host string) http.Handler {
	up, _ := url.Parse(upstream)
	signer := v4.NewSigner()
	next := &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host, r.Out.Host = up.Scheme, up.Host, host
		},
		BufferPool: responseBuffers{},
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
			r.Header.Set("X-Amz-Content-Sha256", empty)
			if err := signer.SignHTTP(r.Context(), benchCreds, r, empty, "es", "eu-west-2", time.Now()); err != nil {
				return nil, err
			}
			return next.RoundTrip(r)
		}),
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
