package kivuli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	// s3-outposts      | header (signed)   | sha256+header | header
	// transcribe       | query (signed)    | sha256        | query for WebSockets
}

// A program that reaches AWS through a custom domain or a tunnel signs for
// its own region: Credentials.Region asks the instance metadata service
// with the client that fetches the credentials. Here the IMDS emulator
// stands in for EC2.
func ExampleCredentials_Region() {
	imds := imdstest.NewServer(imdstest.Config{Region: "eu-west-2"})
	defer imds.Close()
	ctx := context.Background()
	creds, err := kivuli.New(ctx, kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()

	region, err := creds.Region(ctx)
	if err != nil {
		log.Fatal(err)
	}
	tr := &kivuli.Transport{Credentials: creds, Service: "es", Region: region,
		AllowedHosts: []string{"search.example.com"}}
	_ = &http.Client{Transport: tr}
	fmt.Println("region:", region)
	// Output:
	// region: eu-west-2
}

// NewRetryingClient retries throttled and failed requests, each attempt
// signed afresh from a rewound body.
func ExampleNewRetryingClient() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	attempts := 0
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if attempts++; attempts == 1 {
				w.WriteHeader(http.StatusServiceUnavailable) // busy, this once
				return
			}
			fmt.Fprint(w, "done")
		}))
	defer endpoint.Close()

	client := kivuli.NewRetryingClient(&kivuli.Transport{
		Credentials:  creds,
		Service:      "execute-api",
		Region:       "eu-west-2",
		AllowedHosts: []string{strings.TrimPrefix(endpoint.URL, "http://")},
	}, func(o *kivuli.RetryOptions) { o.MaxAttempts, o.MinWait = 4, time.Millisecond })
	resp, err := client.Post(endpoint.URL+"/prod/orders", "application/json", strings.NewReader(`{"item":42}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	for _, rec := range endpoint.Records() {
		fmt.Println("attempt signed:", rec.Err == nil, "body bytes:", rec.BodyLen)
	}
	fmt.Println(resp.Status)
	// Output:
	// attempt signed: true body bytes: 11
	// attempt signed: true body bytes: 11
	// 200 OK
}

// Presign signs a URL in its query, as WebSocket handshakes need: here AWS
// IoT Core's MQTT over WebSocket, whose policy adds the session token after
// the signature.
func ExampleTransport_Presign() {
	t := &kivuli.Transport{Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "wss://abc123-ats.iot.eu-west-2.amazonaws.com/mqtt", nil)
	signed, err := t.Presign(req, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(signed)
	q := u.Query()
	fmt.Println(u.Scheme, u.Host, u.Path)
	fmt.Println("scope:", strings.SplitN(q.Get("X-Amz-Credential"), "/", 3)[2])
	fmt.Println("expires:", q.Get("X-Amz-Expires"))
	fmt.Println("token last:", strings.HasSuffix(u.RawQuery, "&X-Amz-Security-Token=TOKEN"))
	// Output:
	// wss abc123-ats.iot.eu-west-2.amazonaws.com /mqtt
	// scope: eu-west-2/iotdevicegateway/aws4_request
	// expires: 60
	// token last: true
}

// Subscribe receives an event after every refresh; events never hold a
// secret.
func ExampleCredentials_Subscribe() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	events, cancel := creds.Subscribe()
	defer cancel()

	imds.Rotate()      // IMDS has new credentials
	creds.Invalidate() // and a service said the old token expired
	if _, err := creds.Retrieve(context.Background()); err != nil {
		log.Fatal(err)
	}
	ev := <-events
	fmt.Println("trigger:", ev.Trigger, "changed:", ev.Changed, "error:", ev.Err)
	// Output: trigger: on-demand changed: true error: <nil>
}

// WithProvider caches and refreshes credentials from any source, with the
// same refresh rules as the instance role's.
func ExampleWithProvider() {
	fetches := 0
	source := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		fetches++
		return aws.Credentials{AccessKeyID: fmt.Sprintf("ASIAEXAMPLE%d", fetches), SecretAccessKey: "SECRET",
			SessionToken: "TOKEN", CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	})
	creds, err := kivuli.New(context.Background(), kivuli.WithProvider(source))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	for range 3 {
		v, _ := creds.Retrieve(context.Background())
		fmt.Println(v.AccessKeyID)
	}
	fmt.Println("fetches:", fetches)
	// Output:
	// ASIAEXAMPLE1
	// ASIAEXAMPLE1
	// ASIAEXAMPLE1
	// fetches: 1
}

// With a Logger at debug level, the Transport logs each request's canonical
// request and string to sign, as awscurl -v shows them, with the session
// token redacted: what to compare with a service's SignatureDoesNotMatch.
func ExampleTransport_logger() {
	var logs bytes.Buffer
	t := &kivuli.Transport{
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
		}),
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		}),
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	req, _ := http.NewRequest(http.MethodGet, "https://sts.eu-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", nil)
	if _, err := t.RoundTrip(req); err != nil {
		log.Fatal(err)
	}
	var entry struct {
		Service, Region string
		Canonical       string `json:"canonical_request"`
	}
	json.Unmarshal(logs.Bytes(), &entry)
	lines := strings.Split(entry.Canonical, "\n")
	fmt.Println(entry.Service, entry.Region)
	fmt.Println(lines[0], lines[1], lines[2])
	fmt.Println(lines[5])
	// Output:
	// sts eu-west-2
	// GET / Action=GetCallerIdentity&Version=2011-06-15
	// x-amz-security-token:REDACTED
}

// CheckRedirect keeps a client's redirects on the host the request was
// signed for (the Transport refuses the others anyway; with CheckRedirect
// the error is the client's, and the redirecting answer is kept). Here the
// endpoint, standing in for a Lambda function URL, answers a redirect to
// IAM: nothing is signed for IAM.
func ExampleCheckRedirect() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		log.Fatal(err)
	}
	defer creds.Close()
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://iam.amazonaws.com/?Action=UpdateAssumeRolePolicy&RoleName=app", http.StatusFound)
	}))
	defer endpoint.Close()

	t := &kivuli.Transport{Credentials: creds, AllowedHosts: []string{strings.TrimPrefix(endpoint.URL, "http://")}}
	req, _ := http.NewRequest(http.MethodGet, endpoint.URL+"/", nil)
	req.Host = "abc.lambda-url.us-east-1.on.aws"
	client := &http.Client{Transport: t, CheckRedirect: kivuli.CheckRedirect}
	resp, err := client.Do(req)
	fmt.Println(errors.Is(err, kivuli.ErrHostNotAllowed), resp.StatusCode, len(endpoint.Records()))
	// Output:
	// true 302 1
}
