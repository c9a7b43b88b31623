package imdstest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kivuli-go/kivuli/imdstest"
)

// get makes a request and returns its status and body.
func get(client *http.Client, method, url string, header map[string]string) (int, string) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(err)
	}
	return resp.StatusCode, string(body)
}

// Example fetches an IMDSv2 token, the role name and the role's credentials
// with plain net/http, as an IMDS client does.
func Example() {
	srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired})
	defer srv.Close()
	client := http.DefaultClient

	status, _ := get(client, http.MethodGet, srv.URL+"/latest/meta-data/iam/security-credentials/", nil)
	fmt.Println("role list without a token:", status)

	status, token := get(client, http.MethodPut, srv.URL+"/latest/api/token",
		map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
	fmt.Println("token:", status)
	auth := map[string]string{"X-aws-ec2-metadata-token": token}

	status, role := get(client, http.MethodGet, srv.URL+"/latest/meta-data/iam/security-credentials/", auth)
	fmt.Println("role list:", status, role)

	status, body := get(client, http.MethodGet, srv.URL+"/latest/meta-data/iam/security-credentials/"+role, auth)
	var doc struct {
		Code        string
		AccessKeyID string `json:"AccessKeyId"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		panic(err)
	}
	fmt.Println("credentials:", status, doc.Code)
	fmt.Println("access key issued by the server:", strings.HasPrefix(doc.AccessKeyID, "ASIA") && doc.AccessKeyID == srv.Current().AccessKeyID)
	fmt.Printf("%+v\n", srv.Stats())
	// Output:
	// role list without a token: 401
	// token: 200
	// role list: 200 kivuli-test-role
	// credentials: 200 Success
	// access key issued by the server: true
	// {TokenPUTs:1 RoleLists:2 CredentialGETs:1 HEADs:0 Unauthorized:1 V1Requests:1 Total:4}
}

// ExampleNewHandler serves requests in memory, without a listener, through
// the RoundTripper, and injects a throttling fault. Such a server also works
// inside a testing/synctest bubble, where a Fault's Delay passes in fake
// time.
func ExampleNewHandler() {
	srv := imdstest.NewHandler(imdstest.Config{Role: "app-role"})
	defer srv.Close()
	client := &http.Client{Transport: srv.RoundTripper()}
	srv.Inject(imdstest.Fault{Target: imdstest.RoleListPath, Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1})

	// The host does not matter to the RoundTripper.
	const list = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
	for range 2 {
		status, body := get(client, http.MethodGet, list, nil)
		fmt.Println(status, body)
	}
	fmt.Println(srv)
	// Output:
	// 429 Too Many Requests
	// 200 app-role
	// imdstest.Server(no listener, TokenOptional, role "app-role", 0 credential sets issued, 0 faults queued)
}

// ExampleListen runs the emulator as a real server on an address, as a
// program (rather than a test) would, and stops it with Close.
func ExampleListen() {
	srv, err := imdstest.Listen("127.0.0.1:0", imdstest.Config{Role: "app-role"})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	status, role := get(client, http.MethodGet, srv.URL+"/latest/meta-data/iam/security-credentials/", nil)
	fmt.Println(status, role)
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/latest/meta-data/iam/security-credentials/"+role, nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("HEAD", resp.StatusCode, resp.Header.Get("Content-Type"))
	srv.Close()
	_, err = client.Get(srv.URL + "/latest/meta-data/iam/security-credentials/")
	fmt.Println("after Close:", err != nil)
	// Output:
	// 200 app-role
	// HEAD 200 application/json
	// after Close: true
}

// ExampleConfig_credentials serves the credentials of a provider, as a
// program that runs code written for EC2 on a laptop does (kivuli imds
// --from): the documents carry what the provider returns, here fixed
// ones, with IMDS's protocol and faults around them.
func ExampleConfig_credentials() {
	src := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "token",
			CanExpire: true, Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, nil
	})
	srv := imdstest.NewHandler(imdstest.Config{Role: "app-role", Credentials: src})
	defer srv.Close()
	client := &http.Client{Transport: srv.RoundTripper()}

	_, body := get(client, http.MethodGet, "http://169.254.169.254/latest/meta-data/iam/security-credentials/app-role", nil)
	var doc struct {
		AccessKeyID string `json:"AccessKeyId"`
		Expiration  string
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		panic(err)
	}
	fmt.Println(doc.AccessKeyID, doc.Expiration)
	_, zone := get(client, http.MethodGet, "http://169.254.169.254/latest/meta-data/placement/availability-zone", nil)
	fmt.Println(zone)
	// Output:
	// ASIAEXAMPLE 2030-01-02T03:04:05Z
	// us-east-1a
}
