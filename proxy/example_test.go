package proxy_test

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// standIns are an IMDS emulator and a stand-in for an OpenSearch domain
// that checks every signature (and passes the requests it accepts to next,
// if not nil), so that the examples run offline; on AWS,
// kivuli.New(ctx) needs no endpoint and the upstream is the domain's URL.
func standIns(next http.Handler) (creds *kivuli.Credentials, upstream *sigv4test.Server, done func()) {
	imds := imdstest.NewServer(imdstest.Config{})
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	upstream = sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, next)
	return creds, upstream, func() { upstream.Close(); creds.Close(); imds.Close() }
}

// The proxy served by an http.Server on loopback: a program that cannot
// sign sends it plain requests, and the upstream receives them signed.
func Example() {
	creds, domain, done := standIns(nil)
	defer done()
	host := domain.Listener.Addr().String()

	p, err := proxy.New(context.Background(), proxy.Config{
		Upstream:    "http://" + host, // on AWS: https://search-logs-abc.eu-west-2.es.amazonaws.com
		Credentials: creds,
		// For the stand-in only: a host that is not an AWS endpoint, and
		// the AWS name it stands for, which tells the scope.
		AllowedHosts: []string{host},
		SignHost:     "search-logs-abc.eu-west-2.es.amazonaws.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	resp, err := http.Get("http://" + ln.Addr().String() + "/logs-2026/_search?q=status:500")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	// Output:
	// 200 OK
	// {"ok":true,"service":"es","bytes":0,"method":"GET","path":"/logs-2026/_search"}
}

// Behind an authentication middleware: whoever reaches the proxy makes
// requests as the role, so a proxy served beyond loopback lets only its
// own users through. The middleware's header is not forwarded; the
// Authorization the upstream receives is the proxy's signature.
func Example_authentication() {
	creds, domain, done := standIns(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "the upstream got an API key: %v\n", r.Header.Get("X-Api-Key") != "")
	}))
	defer done()
	host := domain.Listener.Addr().String()
	p, err := proxy.New(context.Background(), proxy.Config{
		Upstream: "http://" + host, Credentials: creds,
		AllowedHosts: []string{host}, SignHost: "search-logs-abc.eu-west-2.es.amazonaws.com",
		DropHeaders: []string{"X-Api-Key"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	const apiKey = "s3cr3t-for-this-example"
	requireKey := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Api-Key")), []byte(apiKey)) != 1 {
				http.Error(w, "an API key, please", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: requireKey(p), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	for _, key := range []string{"", apiKey} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/_cluster/health", nil)
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s", resp.Status, body)
	}
	rec := domain.Records()[0]
	fmt.Println("signed as", rec.Service, "in", rec.Region)
	// Output:
	// 401 Unauthorized: an API key, please
	// 200 OK: the upstream got an API key: false
	// signed as es in eu-west-2
}
