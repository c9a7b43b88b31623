// Command quickstart shows Kivuli end to end: instance-role credentials, a
// signed request, a refresh, and the session token placed where each
// service wants it.
//
//	go run ./examples/quickstart       # offline
//	go run ./examples/quickstart -aws  # on EC2, with an instance role
//
// Offline, an in-process IMDS emulator stands in for EC2, and the requests,
// though addressed to AWS host names, go to a local endpoint that checks
// every signature from what arrives on the wire, as AWS does. With -aws the
// credentials come from the real IMDS and the STS request goes to AWS (in
// AWS_REGION, else eu-west-2); the token-placement requests still go to the
// local endpoint, the only one that says where it found the token.
//
// It exits non-zero if a step fails, such as a signature being rejected, a
// refresh not bringing the emulator's new key, or the endpoint finding a
// token elsewhere than the policy says.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

func main() {
	useAWS := flag.Bool("aws", false, "use the real IMDS and AWS endpoints")
	flag.Parse()
	if err := run(*useAWS); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(useAWS bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// 1. Credentials from IMDS. On EC2 that is kivuli.New(ctx), nothing more.
	var opts []kivuli.Option
	var imds *imdstest.Server // the emulator, offline only
	if !useAWS {
		imds = imdstest.NewServer(imdstest.Config{Role: "quickstart-role"})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	firstKey := creds.AccessKeyID()
	fmt.Printf("1. credentials from IMDS\n   access key ID  %s\n   expire         %s\n", firstKey, creds.Expires().Format(time.RFC3339))

	// The checking endpoint recomputes each signature with the secrets of
	// the emulator, which issued them, or with the real ones (-aws).
	secrets := func(id string) (sigv4test.Credentials, bool) {
		v, err := creds.Retrieve(ctx)
		return sigv4test.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken, Expiration: v.Expires}, err == nil && v.AccessKeyID == id
	}
	if imds != nil {
		secrets = sigv4test.Lookup(imds.Lookup)
	}
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: secrets}, nil)
	defer endpoint.Close()
	local := &kivuli.Transport{Credentials: creds, Base: endpoint.RoundTripper()}

	// 2. A signed request, STS GetCallerIdentity: the transport infers the
	// service and region from the host name.
	sts := &http.Client{Transport: local}
	if useAWS {
		sts = &http.Client{Transport: &kivuli.Transport{Credentials: creds}}
	}
	stsURL := "https://sts." + cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2") + ".amazonaws.com/"
	getCallerIdentity := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, stsURL, strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := sts.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s", stsURL, resp.Status)
		}
		return nil
	}
	if err := getCallerIdentity(); err != nil {
		return err
	}
	fmt.Printf("2. signed request: POST %s -> 200 OK\n", stsURL)
	if !useAWS {
		rec := last(endpoint)
		fmt.Printf("   endpoint saw   service %s, region %s, token %s, signature valid\n", rec.Service, rec.Region, rec.Token)
	}

	// 3. A refresh, forced here: in production it happens in the background,
	// 8 to 16 minutes before expiry, so that no request waits.
	events, unsubscribe := creds.Subscribe()
	defer unsubscribe()
	if imds != nil {
		imds.Rotate() // a new set, as IMDS issues ahead of expiry
	}
	creds.Invalidate()
	if err := getCallerIdentity(); err != nil { // this request waits for the refresh
		return err
	}
	var ev kivuli.RefreshEvent
	select {
	case ev = <-events:
	case <-ctx.Done():
		return ctx.Err()
	}
	if ev.Err != nil {
		return fmt.Errorf("refresh: %w", ev.Err)
	}
	fmt.Println("3. refresh (forced for the demo; in production it runs in the background before expiry)")
	fmt.Printf("   event          trigger %s, changed %t, expire %s\n", ev.Trigger, ev.Changed, ev.Expires.Format(time.RFC3339))
	fmt.Printf("   access key ID  %s (was %s)\n", creds.AccessKeyID(), firstKey)
	// The emulator issued a new set (Rotate): the refresh must have fetched it.
	// (The real IMDS may hand back the same set until it renews it.)
	if imds != nil && creds.AccessKeyID() == firstKey {
		return fmt.Errorf("refresh: the access key ID is still %s", firstKey)
	}

	// 4. The session token, placed per service by the policy table. A user
	// row adds a made-up service that wants the token outside the signature.
	// A Transport's fields, Policies included, are fixed once it is in use,
	// so this is a new Transport rather than a change to the one above.
	policies := kivuli.DefaultPolicies()
	policies["myservice"] = kivuli.Policy{Token: kivuli.TokenHeaderUnsigned}
	placed := &http.Client{Transport: &kivuli.Transport{Credentials: creds, Base: endpoint.RoundTripper(), Policies: policies}}
	// No endpoint data names a made-up service, so its host is not
	// guessed at: its Transport says the service.
	own := &http.Client{Transport: &kivuli.Transport{Credentials: creds, Base: endpoint.RoundTripper(), Policies: policies, Service: "myservice"}}
	fmt.Println("4. token placement per policy, as the endpoint saw it")
	for _, c := range []struct {
		url     string
		service string
		token   sigv4test.TokenPlacement // where the policy puts it
	}{
		{"https://search-logs-abc123.eu-west-2.es.amazonaws.com/logs/_search", "es", sigv4test.HeaderSigned},
		{"https://myservice.eu-west-2.amazonaws.com/items", "myservice", sigv4test.HeaderUnsigned},
		{"https://EXAMPLE-ats.iot.eu-west-2.amazonaws.com/mqtt", "iotdevicegateway", sigv4test.QueryUnsigned},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
		if err != nil {
			return err
		}
		client := placed
		if c.service == "myservice" {
			client = own
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		rec, note := last(endpoint), ""
		if rec.Err != nil {
			return fmt.Errorf("GET %s: %w", c.url, rec.Err)
		}
		if rec.Service != c.service || rec.Token != c.token {
			return fmt.Errorf("GET %s: endpoint saw service %s, token %s; want service %s, token %s", c.url, rec.Service, rec.Token, c.service, c.token)
		}
		if rec.Presigned && strings.Index(rec.RawQuery, "X-Amz-Security-Token") > strings.Index(rec.RawQuery, "X-Amz-Signature") {
			note = " (presigned; token after the signature)"
		}
		fmt.Printf("   %-16s %-14s %s%s\n", rec.Service, rec.Token, resp.Status, note)
	}
	return nil
}

// last returns the endpoint's record of the latest request.
func last(endpoint *sigv4test.Server) sigv4test.Record {
	recs := endpoint.Records()
	return recs[len(recs)-1]
}
