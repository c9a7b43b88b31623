// Command rest calls an AWS Query API with nothing but net/http and Kivuli:
// STS GetCallerIdentity, a form POST signed by kivuli.Transport and sent by
// kivuli.NewRetryingClient, which retries throttling and 5xx answers, each
// attempt signed afresh.
//
//	go run ./examples/rest       # offline
//	go run ./examples/rest -aws  # on EC2, with an instance role
//
// Offline, an in-process IMDS emulator stands in for EC2, and the request
// goes to a local endpoint that checks its signature as STS does and
// answers as STS would; its first answer is a throttling error, to show a
// retry. With -aws the credentials come from the real IMDS and the request
// goes to https://sts.REGION.amazonaws.com/ (REGION from -region, else
// AWS_REGION, else eu-west-2).
//
// It prints the role's ARN, and exits non-zero if the call fails.
package main

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

func main() {
	useAWS := flag.Bool("aws", false, "use the real IMDS and STS")
	region := flag.String("region", cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2"), "STS region")
	flag.Parse()
	if err := run(*useAWS, *region); err != nil {
		fmt.Fprintln(os.Stderr, "rest:", err)
		os.Exit(1)
	}
}

func run(useAWS bool, region string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	signer := &kivuli.Transport{} // service and region inferred from the host
	stsURL := "https://sts." + region + ".amazonaws.com/"
	var opts []kivuli.Option
	var endpoint *sigv4test.Server
	var sts *fakeSTS
	if !useAWS {
		sts = &fakeSTS{role: "rest-example-role"}
		imds := imdstest.NewServer(imdstest.Config{Role: "rest-example-role"})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
		endpoint = sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, sts)
		defer endpoint.Close()
		// The local endpoint's host name says nothing: name the service and
		// region, and allow signed requests to go there.
		stsURL = endpoint.URL + "/"
		signer.Service, signer.Region = "sts", region
		signer.AllowedHosts = []string{endpoint.Listener.Addr().String()}
	}

	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	signer.Credentials = creds
	fmt.Println("credentials: access key ID", creds.AccessKeyID())

	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, stsURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := kivuli.NewRetryingClient(signer).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("POST %s Action=GetCallerIdentity: %s\n", stsURL, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GetCallerIdentity: %s%s", resp.Status, errorCode(body))
	}

	if sts != nil {
		answers := sts.answered()
		for i, rec := range endpoint.Records() {
			if rec.Err != nil {
				return fmt.Errorf("attempt %d: %w", i+1, rec.Err)
			}
			fmt.Printf("  attempt %d: service %s, region %s, token %s, body hashed, signature valid -> %s\n",
				i+1, rec.Service, rec.Region, rec.Token, answers[i])
		}
	}

	var out struct {
		Arn     string `xml:"GetCallerIdentityResult>Arn"`
		Account string `xml:"GetCallerIdentityResult>Account"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("GetCallerIdentity: the answer is not XML: %w", err)
	}
	if out.Arn == "" {
		return errors.New("GetCallerIdentity: the answer holds no Arn")
	}
	fmt.Println("account:", out.Account)
	fmt.Println("arn:    ", out.Arn)
	return nil
}

// fakeSTS answers GetCallerIdentity as STS does, for an instance role. Its
// first answer is a throttling error, which the retrying client retries.
type fakeSTS struct {
	role    string
	mu      sync.Mutex
	answers []string // the status of each answer
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	first := len(f.answers) == 0
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	switch {
	case first:
		f.answer("400 Throttling")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ErrorResponse>`)
	case r.Method != http.MethodPost || r.PostFormValue("Action") != "GetCallerIdentity":
		f.answer("400 (not GetCallerIdentity)")
		w.WriteHeader(http.StatusBadRequest)
	default:
		f.answer("200 OK")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/%[1]s/i-0123456789abcdef0</Arn>
    <UserId>AROA3XFRBF535EXAMPLE:i-0123456789abcdef0</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000002</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>
`, f.role)
	}
}

func (f *fakeSTS) answer(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers = append(f.answers, status)
}

func (f *fakeSTS) answered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.answers)
}

// errorCode returns ": Code: Message" from an AWS Query API XML error body
// (<ErrorResponse><Error><Code>..</Code><Message>..</Message>), or "" if
// there is none. It never returns the body itself: for a signature error
// the message goes on with the canonical request AWS computed, which holds
// the session token, so only the message's first line is kept.
func errorCode(body []byte) string {
	var e struct {
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
	}
	if xml.Unmarshal(body, &e) != nil || e.Code == "" {
		return ""
	}
	msg, _, _ := strings.Cut(e.Message, "\n")
	return ": " + e.Code + ": " + msg
}
