package kivuli_test

import (
	"context"
	"net/http"
	"testing"

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
