// Command policies shows the policy table that decides, per signing
// service, where the session token goes, how the body is hashed, how the
// path is escaped and where the signature goes: the built-in rows, a row
// overridden and a row added, a request under each as the receiving end
// saw it, and an IoT Core MQTT-over-WebSocket URL presigned with the token
// after the signature.
//
//	go run ./examples/policies       # offline
//	go run ./examples/policies -aws  # on EC2, with an instance role
//
// The requests go to a local endpoint that checks every signature from what
// arrives on the wire, as AWS does, and records where it found the token:
// no AWS service reports that. Offline the credentials come from an
// in-process IMDS emulator; with -aws, from the real IMDS. The region is
// AWS_REGION, else eu-west-2.
//
// It exits non-zero if the endpoint rejects a request or finds the token
// elsewhere than the policy says.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

func main() {
	useAWS := flag.Bool("aws", false, "take the credentials from the real IMDS")
	flag.Parse()
	if err := run(*useAWS); err != nil {
		fmt.Fprintln(os.Stderr, "policies:", err)
		os.Exit(1)
	}
}

func run(useAWS bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	region := cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2")

	// Credentials, and a checking endpoint that knows their secrets.
	var opts []kivuli.Option
	var imds *imdstest.Server
	if !useAWS {
		imds = imdstest.NewServer(imdstest.Config{})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	secrets := func(id string) (sigv4test.Credentials, bool) {
		v, err := creds.Retrieve(ctx)
		return sigv4test.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken, Expiration: v.Expires}, err == nil && v.AccessKeyID == id
	}
	if imds != nil { // the emulator, which issued the credentials, is the authority
		secrets = sigv4test.Lookup(imds.Lookup)
	}
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: secrets}, nil)
	defer endpoint.Close()

	// The built-in table.
	policies := kivuli.DefaultPolicies()
	fmt.Println("built-in policies (kivuli.DefaultPolicies):")
	fmt.Printf("  %-16s  %-17s  %-30s  %-25s  %s\n", "service", "token", "payload", "path", "signature")
	for _, service := range slices.Sorted(maps.Keys(policies)) {
		p := policies[service]
		payload := p.Payload.String()
		if p.UnsignedStreaming {
			payload += ", streams unsigned"
		}
		path := "normalised" // "." and ".." segments removed, "//" collapsed
		if p.KeepDotSegments {
			path = "as sent"
		}
		if p.EscapePathOnce {
			path += ", escaped once"
		} else {
			path += ", escaped twice"
		}
		signature := p.Sign.String()
		if p.Expires != 0 {
			signature += fmt.Sprintf(", valid %v", p.Expires)
		}
		fmt.Printf("  %-16s  %-17s  %-30s  %-25s  %s\n", service, p.Token, payload, path, signature)
	}

	// Change a row, add one, and send a request under each. A row replaces
	// the built-in one whole: change a copy of it to keep its other fields
	// (here es's X-Amz-Content-Sha256 header).
	es := policies["es"]
	es.Token = kivuli.TokenHeaderUnsigned
	policies["es"] = es
	policies["myservice"] = kivuli.Policy{Payload: kivuli.PayloadHashHeader}
	fmt.Println(`changed: "es" Token = TokenHeaderUnsigned; added: "myservice" {Payload: PayloadHashHeader}`)
	for _, c := range []struct {
		service string
		token   sigv4test.TokenPlacement
		header  bool // X-Amz-Content-Sha256 sent: Payload is PayloadHashHeader
	}{
		{"es", sigv4test.HeaderUnsigned, true},
		{"myservice", sigv4test.HeaderSigned, true},
	} {
		client := &http.Client{Transport: &kivuli.Transport{
			Credentials: creds,
			Service:     c.service, // the local endpoint's host name does not say
			Region:      region,
			Policies:    policies,
			// Signed requests go only to AWS hosts and to these.
			AllowedHosts: []string{endpoint.Listener.Addr().String()},
		}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.URL+"/items/_search", strings.NewReader(`{"query":{"match_all":{}}}`))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		recs := endpoint.Records()
		rec := recs[len(recs)-1]
		if rec.Err != nil {
			return fmt.Errorf("%s: %w", c.service, rec.Err)
		}
		if rec.Token != c.token || rec.ContentSHA256 != c.header {
			return fmt.Errorf("%s: endpoint saw token %s, X-Amz-Content-Sha256 header %t; want %s, %t",
				c.service, rec.Token, rec.ContentSHA256, c.token, c.header)
		}
		fmt.Printf("  %-9s -> %s: service %s, token %s, X-Amz-Content-Sha256 header %t\n",
			c.service, resp.Status, rec.Service, rec.Token, rec.ContentSHA256)
	}

	// A presigned IoT Core MQTT-over-WebSocket URL, for a WebSocket client
	// to dial. The iotdevicegateway row puts the token in the query, after
	// the signature and outside it, as IoT Core wants.
	iot := &kivuli.Transport{Credentials: creds} // service and region from the host
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "wss://EXAMPLE-ats.iot."+region+".amazonaws.com/mqtt", nil)
	if err != nil {
		return err
	}
	signed, err := iot.Presign(req, 0)
	if err != nil {
		return err
	}
	u, err := url.Parse(signed)
	if err != nil {
		return err
	}
	fmt.Println("presigned IoT Core URL (signature and token shown as …):")
	fmt.Printf("  %s://%s%s\n", u.Scheme, u.Host, u.Path)
	params := strings.Split(u.RawQuery, "&")
	for i, kv := range params {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "X-Amz-Signature":
			fmt.Printf("    %s%s=…\n", sep, k)
		case "X-Amz-Security-Token":
			fmt.Printf("    %s%s=…   <- after the signature: not signed\n", sep, k)
		default:
			fmt.Printf("    %s%s\n", sep, kv)
		}
	}
	if !strings.HasPrefix(params[len(params)-1], "X-Amz-Security-Token=") {
		return fmt.Errorf("presigned URL: the token is not the last parameter")
	}

	// Check it as IoT Core would: the handshake's GET, to the local endpoint
	// with the Host header of the IoT endpoint.
	check, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint.URL+u.Path+"?"+u.RawQuery, nil)
	if err != nil {
		return err
	}
	check.Host = u.Host
	resp, err := endpoint.Client().Do(check)
	if err != nil {
		return err
	}
	resp.Body.Close()
	recs := endpoint.Records()
	rec := recs[len(recs)-1]
	if rec.Err != nil || !rec.Presigned || rec.Token != sigv4test.QueryUnsigned {
		return fmt.Errorf("presigned URL: presigned %t, token %s: %v", rec.Presigned, rec.Token, rec.Err)
	}
	fmt.Printf("  endpoint: %s, presigned, service %s, region %s, token %s\n", resp.Status, rec.Service, rec.Region, rec.Token)
	return nil
}
