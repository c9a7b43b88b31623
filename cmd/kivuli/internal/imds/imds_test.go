package imds

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
)

var servingRE = regexp.MustCompile(`serving IMDS on (http://\S+)`)

// startIMDS runs kivuli imds in process on a free loopback port and
// returns its URL; it is interrupted at the end of the test, and must
// then exit 0.
func startIMDS(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testkit.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"imds", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), io.Discard, stderr, os.Environ())
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("kivuli imds exited %d: %s", code, stderr)
			}
		case <-time.After(10 * time.Second):
			t.Error("kivuli imds did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("kivuli imds exited %d: %s", code, stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("kivuli imds did not start: %s", stderr)
	return ""
}

// libraryCreds reads credentials from url with the kivuli library.
func libraryCreds(ctx context.Context, url string, opts ...kivuli.Option) (aws.Credentials, error) {
	c, err := kivuli.New(ctx, append([]kivuli.Option{kivuli.WithEndpoint(url), kivuli.WithoutRefresh()}, opts...)...)
	if err != nil {
		return aws.Credentials{}, err
	}
	defer c.Close()
	return c.Retrieve(ctx)
}

// sdkCreds reads credentials from url with aws-sdk-go-v2's IMDS client,
// as its ec2rolecreds provider does.
func sdkCreds(ctx context.Context, url string) (aws.Credentials, error) {
	client := imds.New(imds.Options{Endpoint: url})
	return ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(ctx)
}

// Both clients, in every mode: credentials, region and identity document.
func TestIMDSModes(t *testing.T) {
	for _, mode := range []string{"--v1", "--v2-only", "--no-token"} {
		t.Run(mode, func(t *testing.T) {
			url := startIMDS(t, mode, "--region", "eu-west-2", "--role", "web")
			ctx := context.Background()
			lib, err := libraryCreds(ctx, url)
			if err != nil {
				t.Fatalf("library: %v", err)
			}
			sdk, err := sdkCreds(ctx, url)
			if err != nil {
				t.Fatalf("SDK: %v", err)
			}
			if lib.AccessKeyID != sdk.AccessKeyID || !strings.HasPrefix(lib.AccessKeyID, "ASIA") || lib.SessionToken == "" {
				t.Errorf("library %s, SDK %s", lib.AccessKeyID, sdk.AccessKeyID)
			}
			client := imds.New(imds.Options{Endpoint: url})
			region, err := client.GetRegion(ctx, nil)
			if err != nil || region.Region != "eu-west-2" {
				t.Errorf("GetRegion: %v %v", region, err)
			}
			doc, err := client.GetInstanceIdentityDocument(ctx, nil)
			if err != nil || doc.Region != "eu-west-2" || doc.AvailabilityZone != "eu-west-2a" {
				t.Errorf("identity document: %+v %v", doc, err)
			}
			md, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "placement/region"})
			if err != nil {
				t.Fatalf("placement/region: %v", err)
			}
			b, _ := io.ReadAll(md.Content)
			if string(b) != "eu-west-2" {
				t.Errorf("placement/region %q", b)
			}
			// The protocol, by hand.
			v1 := status(t, "GET", url+"/latest/meta-data/iam/security-credentials/", nil)
			put := status(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
			head := status(t, "HEAD", url+"/latest/meta-data/placement/region", nil)
			switch mode {
			case "--v1":
				expectStatus(t, "v1 GET", v1, 200)
				expectStatus(t, "token PUT", put, 200)
				expectStatus(t, "HEAD", head, 200)
			case "--v2-only":
				expectStatus(t, "v1 GET", v1, 401)
				expectStatus(t, "token PUT", put, 200)
				expectStatus(t, "HEAD without token", head, 401)
				expectStatus(t, "PUT through a proxy", status(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"}), 403)
				expectStatus(t, "TTL 0", status(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "0"}), 400)
				expectStatus(t, "TTL 21601", status(t, "PUT", url+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21601"}), 400)
				expectStatus(t, "expired token", status(t, "GET", url+"/latest/meta-data/placement/region", map[string]string{"X-aws-ec2-metadata-token": "made-up"}), 401)
			case "--no-token":
				expectStatus(t, "v1 GET", v1, 200)
				expectStatus(t, "token PUT", put, 404)
				expectStatus(t, "HEAD", head, 200)
			}
		})
	}
}

func status(t *testing.T, method, url string, h map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if method == "HEAD" && len(b) != 0 {
		t.Errorf("HEAD answered a body %q", b)
	}
	return resp
}

func expectStatus(t *testing.T, what string, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("%s: %d, want %d", what, resp.StatusCode, want)
	}
}

// Every fault, given at start, as each client takes it: transient ones
// are retried through, lasting ones end in the error each client gives.
func TestIMDSFaults(t *testing.T) {
	for _, c := range []struct {
		fault   string
		mode    string
		lib     func(error) bool // nil: succeeds
		sdkFail bool
	}{
		{"token:500,times=2", "--v1", nil, false},
		{"token:503,times=1", "--v2-only", nil, false},
		{"token:429,retry-after=0,times=1", "--v2-only", nil, false},
		{"token:405", "--v1", nil, false},          // IMDSv1 fallback
		{"token:403", "--v1", nil, false},          // IMDSv1 fallback
		{"token:hang,times=1", "--v1", nil, false}, // a lost PUT (hop limit 1): fallback
		{"credentials:500,times=2", "--v2-only", nil, false},
		{"credentials:503,times=2", "--v1", nil, false},
		{"credentials:429,retry-after=0,times=1", "--v1", nil, false},
		{"any:delay=100ms", "--v2-only", nil, false},
		{"credentials:expired", "--v1", nil, false}, // served a while, as the SDKs do
		{"role-list:404", "--v1", func(err error) bool { return errors.Is(err, kivuli.ErrNoRole) }, true},
		{"credentials:body={not json", "--v1", func(err error) bool { return errors.Is(err, kivuli.ErrInvalidDocument) }, true},
		{"credentials:code=AssumeRoleUnauthorizedAccess,message=no", "--v1", func(err error) bool {
			var ce *kivuli.CredentialsError
			return errors.As(err, &ce) && ce.Code == "AssumeRoleUnauthorizedAccess"
		}, true},
		{"credentials:500", "--v1", func(err error) bool { var ie *kivuli.IMDSError; return errors.As(err, &ie) && ie.StatusCode == 500 }, true},
	} {
		t.Run(c.fault+" "+c.mode, func(t *testing.T) {
			t.Parallel() // the SDK's retries wait about a second each
			url := startIMDS(t, c.mode, "--fault", c.fault)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := libraryCreds(ctx, url)
			switch {
			case c.lib == nil && err != nil:
				t.Errorf("library: %v", err)
			case c.lib != nil && (err == nil || !c.lib(err)):
				t.Errorf("library: %v", err)
			}
			// The SDK's client, on a fresh server with the same fault.
			url = startIMDS(t, c.mode, "--fault", c.fault)
			_, err = sdkCreds(ctx, url)
			if (err != nil) != c.sdkFail {
				t.Errorf("SDK: %v", err)
			}
		})
	}
}

// Faults switched at run time through the control endpoint.
func TestIMDSControl(t *testing.T) {
	url := startIMDS(t)
	ctx := context.Background()
	first, err := libraryCreds(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) *http.Response {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Kivuli-Control", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	post := func(path, body string) int {
		resp := do("POST", path, body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/kivuli/faults", "credentials:500\nrole-list:delay=10ms\n"); code != 204 {
		t.Fatalf("POST faults: %d", code)
	}
	if _, err := libraryCreds(ctx, url); err == nil {
		t.Error("library: no error with credentials:500")
	}
	if _, err := sdkCreds(ctx, url); err == nil {
		t.Error("SDK: no error with credentials:500")
	}
	if resp := do("DELETE", "/kivuli/faults", ""); resp.StatusCode != 204 {
		t.Fatalf("DELETE faults: %v", resp.Status)
	}
	if _, err := libraryCreds(ctx, url); err != nil {
		t.Errorf("after clearing: %v", err)
	}
	if code := post("/kivuli/rotate", ""); code != 204 {
		t.Fatalf("rotate: %d", code)
	}
	if v, err := sdkCreds(ctx, url); err != nil || v.AccessKeyID == first.AccessKeyID {
		t.Errorf("after rotate: %v %v", v.AccessKeyID, err)
	}
	if code := post("/kivuli/faults", "credentials:999"); code != 400 {
		t.Errorf("bad spec: %d", code)
	}
	resp := do("GET", "/kivuli/stats", "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"CredentialGETs":`) {
		t.Errorf("stats %s", b)
	}
}

// --from serves real credentials from a source: here another IMDS, whose
// credentials the documents carry.
func TestIMDSFrom(t *testing.T) {
	upstream := imdstest.NewServer(imdstest.Config{})
	defer upstream.Close()
	url := startIMDS(t, "--from", "imds", "--imds-endpoint", upstream.URL, "--v2-only")
	ctx := context.Background()
	want := upstream.Current()
	for name, get := range map[string]func() (aws.Credentials, error){
		"library": func() (aws.Credentials, error) { return libraryCreds(ctx, url) },
		"SDK":     func() (aws.Credentials, error) { return sdkCreds(ctx, url) },
	} {
		v, err := get()
		if err != nil || v.AccessKeyID != want.AccessKeyID || v.SecretAccessKey != want.SecretAccessKey || v.SessionToken != want.SessionToken || name == "library" && !v.Expires.Equal(want.Expiration) {
			t.Errorf("%s: %s %v, want %s", name, v.AccessKeyID, err, want.AccessKeyID)
		}
	}
	for _, addr := range []string{"0.0.0.0:0", ":1338", "192.0.2.1:1338"} {
		r := runCmd(t, "", "imds", "--from", "chain", "--listen", addr)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "not loopback") {
			t.Errorf("--listen %s: exit %d %q", addr, r.Code, r.Stderr)
		}
	}
}

// With CMD, the command runs against the emulator and its status is
// kivuli's.
func TestIMDSRunsCommand(t *testing.T) {
	var out, errb testkit.SyncBuffer
	code := run(append([]string{"imds", "--listen", "127.0.0.1:0", "--"}, testkit.Child("env")...), strings.NewReader(""), &out, &errb, append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIASTALE", "GORACE=atexit_sleep_ms=0"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	m := servingRE.FindStringSubmatch(errb.String())
	if m == nil || !strings.Contains(out.String(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+m[1]+"/\n") || strings.Contains(out.String(), "AKIASTALE") {
		t.Errorf("the command saw:\n%s", out.String())
	}
	code = run(append([]string{"imds", "--listen", "127.0.0.1:0", "--"}, testkit.Child("exit", "9")...), strings.NewReader(""), io.Discard, io.Discard, append(os.Environ(), "GORACE=atexit_sleep_ms=0"))
	if code != 9 {
		t.Errorf("exit %d, want 9", code)
	}
}
