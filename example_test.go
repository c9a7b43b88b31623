package kivuli_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// New fetches the instance role's credentials and keeps them fresh. Here
// the IMDS emulator stands in for EC2; on EC2, leave out WithEndpoint.
func ExampleNew() {
	imds := imdstest.NewServer(imdstest.Config{Role: "my-iam-role"})
	defer imds.Close()

	creds, err := kivuli.New(context.Background(),
		kivuli.WithRoleName("my-iam-role"), // optional: discovered when absent
		kivuli.WithEndpoint(imds.URL),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()

	v, err := creds.Retrieve(context.Background()) // one consistent snapshot
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("key:", strings.HasPrefix(v.AccessKeyID, "ASIA"))
	fmt.Println("token:", v.SessionToken != "")
	fmt.Println("expires in:", time.Until(creds.Expires()).Round(time.Hour))
	// Output:
	// key: true
	// token: true
	// expires in: 6h0m0s
}

// Off EC2, New fails fast with an error that says so.
func ExampleNew_notOnEC2() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	nothing := "http://" + ln.Addr().String()
	ln.Close()

	_, err := kivuli.New(context.Background(), kivuli.WithEndpoint(nothing))
	fmt.Println(errors.Is(err, kivuli.ErrNotOnEC2))
	// Output: true
}

// Transport signs every request of an http.Client. The checking endpoint
// here recomputes each signature from what it receives.
func ExampleTransport() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, nil)
	defer endpoint.Close()

	client := &http.Client{Transport: &kivuli.Transport{
		Credentials:  creds,
		Service:      "es", // inferred from real AWS host names
		Region:       "eu-west-2",
		AllowedHosts: []string{strings.TrimPrefix(endpoint.URL, "http://")},
	}}
	resp, err := client.Post(endpoint.URL+"/logs/_search", "application/json", strings.NewReader(`{"size":1}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	rec := endpoint.Records()[0]
	fmt.Println(resp.Status)
	fmt.Println("service:", rec.Service, "token:", rec.Token, "x-amz-content-sha256:", rec.ContentSHA256)
	// Output:
	// 200 OK
	// service: es token: HeaderSigned x-amz-content-sha256: true
}

// Through a tunnel (an SSH port forward, a local proxy), the host dialled
// is the tunnel's, listed in AllowedHosts, and the host signed for, set in
// Request.Host, is the AWS name the service knows, from which the scope is
// inferred. The checking endpoint here stands in for the tunnel's far end.
func ExampleTransport_tunnel() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	tunnel := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, nil)
	defer tunnel.Close()

	t := &kivuli.Transport{
		Credentials:  creds,
		AllowedHosts: []string{strings.TrimPrefix(tunnel.URL, "http://")}, // e.g. "localhost:9200"
	}
	req, _ := http.NewRequest(http.MethodGet, tunnel.URL+"/logs-*/_search?q=status:500", nil)
	req.Host = "search-logs-abc.eu-west-2.es.amazonaws.com"
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	rec := tunnel.Records()[0]
	fmt.Println(resp.Status, rec.Service, rec.Region)

	// The same request signed for a host that is not AWS's, nor listed, is
	// refused before anything is sent.
	req.Host = "evil.example"
	_, err = (&http.Client{Transport: t}).Do(req)
	fmt.Println(errors.Is(err, kivuli.ErrHostNotAllowed))
	// Output:
	// 200 OK es eu-west-2
	// true
}

// DefaultPolicies returns the built-in per-service table, to override or
// extend.
func ExampleDefaultPolicies() {
	policies := kivuli.DefaultPolicies()
	policies["myservice"] = kivuli.Policy{Token: kivuli.TokenHeaderUnsigned}
	for _, name := range slices.Sorted(maps.Keys(policies)) {
		p := policies[name]
		fmt.Printf("%-16s | %-17s | %-13s | %s\n", name, p.Token, p.Payload, p.Sign)
	}
	// Output:
	// aoss             | header (signed)   | sha256+header | header
	// default          | header (signed)   | sha256        | header
	// es               | header (signed)   | sha256+header | header
	// execute-api      | header (signed)   | sha256        | header
	// iotdevicegateway | query (unsigned)  | sha256        | query
	// kafka-cluster    | query (signed)    | sha256        | query
	// myservice        | header (unsigned) | sha256        | header
	// neptune-db       | header (signed)   | sha256        | header
	// s3               | header (signed)   | sha256+header | header
	// s3-object-lambda | header (signed)   | sha256+header | header
	// transcribe       | query (signed)    | sha256        | query for WebSockets
}
