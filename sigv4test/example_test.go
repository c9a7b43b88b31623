package sigv4test_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// sign is a minimal SigV4 header signer for the example. Real tests point
// the signer under test at the server instead.
func sign(r *http.Request, body []byte, akid, secret, region, service string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	sum := sha256.Sum256(body)
	r.Header.Set("X-Amz-Date", amzDate)
	signed := []string{"content-type", "host", "x-amz-date"}
	creq, err := sigv4test.CanonicalRequest(r, sigv4test.DefaultRule, signed, hex.EncodeToString(sum[:]), false)
	if err != nil {
		panic(err)
	}
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	sig := sigv4test.Signature(secret, amzDate[:8], region, service, sigv4test.StringToSign(amzDate, scope, creq))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+akid+"/"+scope+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+sig)
}

func Example() {
	v := &sigv4test.Verifier{
		Secrets: sigv4test.Static(sigv4test.Credentials{
			AccessKeyID:     "AKIDEXAMPLE",
			SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		}),
	}
	srv := sigv4test.NewServer(v, nil)
	defer srv.Close()

	send := func(body []byte, secret string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		sign(req, body, "AKIDEXAMPLE", secret, "us-east-1", "dynamodb", time.Now())
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, string(out))
		} else {
			fmt.Println(resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}
	send([]byte(`{"TableName":"demo"}`), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	send([]byte(`{"TableName":"demo"}`), "a wrong secret")

	for _, rec := range srv.Records() {
		var e *sigv4test.Error
		code := "accepted"
		if errors.As(rec.Err, &e) {
			code = e.Code
		}
		fmt.Println(rec.Method, rec.Path, rec.Service, rec.Region, rec.AccessKeyID, rec.BodyLen, rec.SignedHeaders, code)
	}
	// Output:
	// 200 {"ok":true,"service":"dynamodb","bytes":20,"method":"POST","path":"/"}
	// 403 SignatureDoesNotMatch
	// POST / dynamodb us-east-1 AKIDEXAMPLE 20 [content-type host x-amz-date] accepted
	// POST / dynamodb us-east-1 AKIDEXAMPLE 20 [content-type host x-amz-date] SignatureDoesNotMatch
}

// ExampleVerifier_Verify checks the get-vanilla request of the official
// test suite, presigned, without a server.
func ExampleVerifier_Verify() {
	v := &sigv4test.Verifier{
		Secrets: sigv4test.Static(sigv4test.Credentials{
			AccessKeyID:     "AKIDEXAMPLE",
			SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		}),
		Now: func() time.Time { return time.Date(2015, 8, 30, 12, 40, 0, 0, time.UTC) },
	}
	r := httptest.NewRequest(http.MethodGet, "http://example.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256"+
		"&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z"+
		"&X-Amz-SignedHeaders=host&X-Amz-Expires=3600"+
		"&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d", nil)
	rec := v.Verify(r)
	fmt.Println(rec.Err, rec.Presigned, rec.Service, rec.PayloadHash)
	fmt.Println(rec.RawQuery)
	// Output:
	// <nil> true service e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
	// X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=REDACTED
}

// ExampleVerifier_VerifyStream checks uploads in a handler as they
// arrive: the head at once, the body as the handler reads it. This body's
// hash is in the signature itself (no X-Amz-Content-Sha256), so a body
// changed on the way fails at its end.
func ExampleVerifier_VerifyStream() {
	v := &sigv4test.Verifier{
		Secrets: sigv4test.Static(sigv4test.Credentials{
			AccessKeyID:     "AKIDEXAMPLE",
			SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		}),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := v.VerifyStream(r) // the signature, scope, date, key and token
		if err == nil {
			// r.Body is s: the data, checked as it is read; io.EOF
			// only once everything held.
			var n int64
			if n, err = io.Copy(io.Discard, r.Body); err == nil {
				fmt.Fprintf(w, "stored %d bytes, %s", n, s.Record().Service)
				return
			}
		}
		var e *sigv4test.Error
		errors.As(err, &e)
		http.Error(w, e.Code, http.StatusForbidden)
	}))
	defer srv.Close()

	send := func(signedBody, sentBody string) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/doc", strings.NewReader(sentBody))
		req.Header.Set("Content-Type", "text/plain")
		sign(req, []byte(signedBody), "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "execute-api", time.Now())
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(out)))
	}
	send("a document of 25 bytes...", "a document of 25 bytes...")
	send("a document of 25 bytes...", "a document of 25 bytes!!!")
	// Output:
	// 200 stored 25 bytes, execute-api
	// 403 SignatureDoesNotMatch
}

// ExampleServer_RoundTripper points a kivuli Transport at AWS's own URL
// and has the server answer for it: the code under test is the code that
// runs on AWS. The server checks the scope against the name: a request to
// STS signed for API Gateway is refused, as STS would refuse it.
func ExampleServer_RoundTripper() {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	if err != nil {
		panic(err)
	}
	defer creds.Close()
	srv := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, nil)
	defer srv.Close()

	const sts = "https://sts.eu-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
	for _, t := range []*kivuli.Transport{
		{Credentials: creds, Base: srv.RoundTripper()},                                              // sts in eu-west-2, from the host
		{Credentials: creds, Base: srv.RoundTripper(), Service: "execute-api", Region: "us-east-1"}, // a wrong scope
	} {
		resp, err := (&http.Client{Transport: t}).Get(sts)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(resp.Status + " " + resp.Header.Get("X-Amzn-ErrorType")))
	}
	for _, rec := range srv.Records() {
		fmt.Println(rec.Service, rec.Region, rec.Err != nil)
	}
	// Output:
	// 200 OK
	// 403 Forbidden SignatureDoesNotMatch
	// sts eu-west-2 false
	// execute-api us-east-1 true
}
