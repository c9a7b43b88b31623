package curl

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// curlArgs are the flags every curl test passes: the emulator's
// credentials, and the checking endpoint reached as a tunnel (its
// loopback address listed, the AWS name signed).
func curlArgs(f *wiretest.Fixture, signedHost string, args ...string) []string {
	return append([]string{"curl", "--imds-endpoint", f.IMDS.URL, "--allow-host", f.Host(), "-H", "Host: " + signedHost}, args...)
}

type okBody struct {
	OK      bool   `json:"ok"`
	Service string `json:"service"`
	Bytes   int64  `json:"bytes"`
	Method  string `json:"method"`
	Path    string `json:"path"`
}

func decodeOK(t *testing.T, s string) okBody {
	t.Helper()
	var b okBody
	if err := json.Unmarshal([]byte(s), &b); err != nil {
		t.Fatalf("body %q: %v", s, err)
	}
	return b
}

// Queries go through exactly as typed, and are signed as the endpoint
// reads them: awscurl's most reported bug class.
func TestCurlQueries(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	for _, q := range []string{
		"Action=GetCallerIdentity&Version=2011-06-15",
		"a=b=c",                         // '=' in a value
		"a=1+2&b=1%2B2",                 // '+' (a space to AWS) and an encoded one
		"path=a%2Fb%2Fc",                // already encoded, not encoded again (awscurl#216)
		"scroll_id=cXVlcnk7NTs%3D",      // an encoded '=' at the end
		`query=up{job="api"}`,           // PromQL braces and quotes, raw
		"query=up%7Bjob%3D%22api%22%7D", // the same, encoded
		"a=2&a=1&a=2",                   // repeated keys
		"a=&b=",                         // empty values
		"versioning",                    // a key without '=' (curl#10129)
		"v&format=json",                 // the same beside a pair
		"=x",                            // an empty key
		"q=status:500&size=10",          // ':' raw (awscurl#115)
		"arg=a,b,c",                     // commas (awscurl#138)
		"%E2%9C%93=%C3%A9",              // encoded UTF-8 keys and values
	} {
		t.Run(q, func(t *testing.T) {
			f.AWS.Reset()
			r := runCmd(t, "", curlArgs(f, "sts.eu-west-2.amazonaws.com", "http://"+f.Host()+"/?"+q)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			rec := f.Accepted(t)
			if rec.RawQuery != q {
				t.Errorf("sent query %q, typed %q", rec.RawQuery, q)
			}
			if rec.Service != "sts" || rec.Region != "eu-west-2" {
				t.Errorf("scope %s/%s, want sts/eu-west-2 from the signed host", rec.Service, rec.Region)
			}
			wiretest.NoSecrets(t, f, "stderr", r.Stderr)
		})
	}
	// Bytes that a request line cannot hold are encoded, nothing else.
	f.AWS.Reset()
	r := runCmd(t, "", curlArgs(f, "sts.eu-west-2.amazonaws.com", "http://"+f.Host()+"/a b?q=x y")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	if rec := f.Accepted(t); rec.RawQuery != "q=x%20y" || rec.Path != "/a%20b" {
		t.Errorf("sent %s?%s, want /a%%20b?q=x%%20y", rec.Path, rec.RawQuery)
	}
	// A query that is not valid percent-encoding is refused, not sent.
	f.AWS.Reset()
	r = runCmd(t, "", curlArgs(f, "sts.eu-west-2.amazonaws.com", "http://"+f.Host()+"/?a=%zz")...)
	if r.Code != base.ExitRefused || len(f.AWS.Records()) != 0 {
		t.Errorf("bad escape: exit %d (%s), %d requests sent", r.Code, r.Stderr, len(f.AWS.Records()))
	}
}

func TestCurlBodies(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	dir := t.TempDir()
	form := filepath.Join(dir, "form.txt")
	os.WriteFile(form, []byte("Action=GetCallerIdentity\r\n&Version=2011-06-15\n"), 0o600)
	blob := filepath.Join(dir, "blob.bin")
	payload := strings.Repeat("kivuli\x00\n", 100_000) // 800 kB with NUL and newlines
	os.WriteFile(blob, []byte(payload), 0o600)
	sts := "sts.eu-west-2.amazonaws.com"
	for _, c := range []struct {
		name   string
		stdin  string
		args   []string
		method string
		bytes  int
		ctype  string
	}{
		{"-d", "", []string{"-d", "Action=GetCallerIdentity", "-d", "Version=2011-06-15"}, "POST", 43, "application/x-www-form-urlencoded"},
		{"-d @file strips newlines", "", []string{"-d", "@" + form}, "POST", 43, "application/x-www-form-urlencoded"},
		{"-d @- from stdin", "Action=GetCallerIdentity\n", []string{"-d", "@-"}, "POST", 24, "application/x-www-form-urlencoded"},
		{"--data-binary @file", "", []string{"--data-binary", "@" + blob, "-H", "Content-Type: application/octet-stream"}, "POST", len(payload), "application/octet-stream"},
		{"--data-binary @- from stdin", payload, []string{"--data-binary", "@-"}, "POST", len(payload), "application/x-www-form-urlencoded"},
		{"--data-raw keeps @", "", []string{"--data-raw", "@user"}, "POST", 5, "application/x-www-form-urlencoded"},
		{"-X PATCH", "", []string{"-X", "PATCH", "--data-binary", "{}"}, "PATCH", 2, "application/x-www-form-urlencoded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.AWS.Reset()
			var seen http.Header
			args := append(curlArgs(f, sts, c.args...), "http://"+f.Host()+"/")
			r := runCmd(t, c.stdin, args...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			rec := f.Accepted(t)
			_ = seen
			if rec.Method != c.method || rec.BodyLen != int64(c.bytes) || rec.Chunked {
				t.Errorf("endpoint saw %s with %d bytes (chunked %t), want %s with %d", rec.Method, rec.BodyLen, rec.Chunked, c.method, c.bytes)
			}
			if b := decodeOK(t, r.Stdout); b.Bytes != int64(c.bytes) {
				t.Errorf("answer says %d bytes, want %d", b.Bytes, c.bytes)
			}
		})
	}
}

// S3 uploads with -T: the file's length is known, so the body is never
// chunked (S3 refuses that) and its hash is signed.
func TestCurlS3Upload(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "report 2025.csv")
	payload := strings.Repeat("a,b,c\n", 50_000)
	os.WriteFile(file, []byte(payload), 0o600)
	bucket := "my-bucket.s3.eu-west-2.amazonaws.com"
	for _, c := range []struct {
		name, stdin, upload, url, path string
		args                           []string
		checksum                       string // the algorithm S3 checked
	}{
		{"file", "", file, "/backups/report.csv", "/backups/report.csv", nil, "CRC32"},
		{"file into a directory", "", file, "/backups/", "/backups/report%202025.csv", nil, "CRC32"},
		{"stdin", payload, "-", "/from-stdin.csv", "/from-stdin.csv", nil, "CRC32"},
		{"stdin of a given size", payload, "-", "/sized.csv", "/sized.csv", []string{"--size", fmt.Sprint(len(payload))}, "CRC32"},
		{"awkward key", "", file, "/dir/a+b=c%2Fd.csv", "/dir/a%2Bb%3Dc/d.csv", nil, "CRC32"},
		{"--checksum sha256", "", file, "/sha.csv", "/sha.csv", []string{"--checksum", "sha256"}, "SHA256"},
		{"--checksum crc64nvme", "", file, "/nvme.csv", "/nvme.csv", []string{"--checksum", "CRC64NVME"}, "CRC64NVME"},
		{"--checksum none", "", file, "/none.csv", "/none.csv", []string{"--checksum", "none"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.AWS.Reset()
			args := append(curlArgs(f, bucket, "-T", c.upload), c.args...)
			r := runCmd(t, c.stdin, append(args, "http://"+f.Host()+c.url)...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			rec := f.Accepted(t)
			// One pass over the body: aws-chunked, its chunks signed, the
			// checksum in the trailer (issue 21).
			if rec.Service != "s3" || rec.Method != "PUT" || rec.Chunked || rec.Chunks != len(payload)/(64<<10)+2 || rec.Checksum != c.checksum || !rec.ContentSHA256 {
				t.Errorf("endpoint saw %s %s, %d chunks, checksum %q, chunked %t, content-sha256 %t", rec.Service, rec.Method, rec.Chunks, rec.Checksum, rec.Chunked, rec.ContentSHA256)
			}
			if rec.Path != c.path {
				t.Errorf("path %s, want %s", rec.Path, c.path)
			}
		})
	}
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		code  int
	}{
		{"an unknown --checksum", []string{"-T", file, "--checksum", "md5"}, "", base.ExitUsage},
		{"--size without -T -", []string{"-T", file, "--size", "3"}, "", base.ExitUsage},
		{"--size longer than standard input", []string{"-T", "-", "--size", "100"}, "short", base.ExitRefused},
		{"--size shorter than standard input", []string{"-T", "-", "--size", "2"}, "longer", base.ExitRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.AWS.Reset()
			args := append(curlArgs(f, bucket, c.args...), "http://"+f.Host()+"/bad")
			r := runCmd(t, c.stdin, args...)
			if r.Code != c.code {
				t.Errorf("exit %d, want %d: %s", r.Code, c.code, r.Stderr)
			}
			for _, rec := range f.AWS.Records() {
				if rec.Err == nil {
					t.Errorf("the endpoint accepted %s %s", rec.Method, rec.Path)
				}
			}
		})
	}
}

// -L follows redirects on the same host, signing each request afresh,
// and never to another host: nothing reaches it.
func TestCurlRedirects(t *testing.T) {
	var foreignHits atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
	}))
	defer foreign.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final?x=1", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, foreign.URL+"/steal", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("final")) })
	f := wiretest.NewFixture(t, imdstest.Config{}, mux)
	host := "sts.eu-west-2.amazonaws.com"
	origin := "http://" + f.Host()

	r := runCmd(t, "", curlArgs(f, host, "-L", origin+"/same")...)
	if r.Code != 0 || r.Stdout != "final" {
		t.Errorf("same host: exit %d, %q (%s)", r.Code, r.Stdout, r.Stderr)
	}
	if recs := f.AWS.Records(); len(recs) != 2 || recs[0].Err != nil || recs[1].Err != nil || recs[1].RawQuery != "x=1" {
		t.Errorf("same host: records %+v", recs)
	}

	// Without -L the redirect is the answer, as with curl.
	r = runCmd(t, "", curlArgs(f, host, "-i", origin+"/away")...)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "HTTP/1.1 307") {
		t.Errorf("without -L: exit %d, %q", r.Code, r.Stdout)
	}

	for _, extra := range [][]string{
		{"-L"},
		{"-L", "--allow-host", foreign.Listener.Addr().String()}, // listed, and still not followed
		{"-L", "-d", "secret=1"},
	} {
		r = runCmd(t, "", curlArgs(f, host, append(extra, origin+"/away")...)...)
		if r.Code != base.ExitRefused || !strings.Contains(r.Stderr, "not following the redirect") {
			t.Errorf("%v to another host: exit %d, %q", extra, r.Code, r.Stderr)
		}
	}
	if n := foreignHits.Load(); n != 0 {
		t.Errorf("the foreign host received %d requests", n)
	}

	r = runCmd(t, "", curlArgs(f, host, "-L", "--max-redirs", "3", origin+"/loop")...)
	if r.Code != base.ExitRedirects {
		t.Errorf("loop: exit %d, %s", r.Code, r.Stderr)
	}
}

// The redirect policy alone: another host, port or scheme is refused.
func TestRedirectPolicy(t *testing.T) {
	check := redirectPolicy(true, 5)
	from, _ := http.NewRequest("GET", "https://sts.amazonaws.com/a", nil)
	for to, ok := range map[string]bool{
		"https://sts.amazonaws.com/b":         true,
		"https://STS.amazonaws.com/b":         true,
		"https://sts.amazonaws.com:444/b":     false,
		"http://sts.amazonaws.com/b":          false,
		"https://sts.eu-west-2.amazonaws.com": false,
		"https://evil.example/b":              false,
	} {
		req, _ := http.NewRequest("GET", to, nil)
		if err := check(req, []*http.Request{from}); (err == nil) != ok {
			t.Errorf("redirect to %s: %v", to, err)
		}
	}
}

// -v and --dry-run show the canonical request and the string to sign,
// with neither the token nor the signature; --dry-run sends nothing.
func TestCurlVerboseAndDryRun(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	host := "search-logs-abc.eu-west-2.es.amazonaws.com"
	r := runCmd(t, "", curlArgs(f, host, "-v", "http://"+f.Host()+"/logs-*/_search?q=status:500")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	f.Accepted(t)
	for _, want := range []string{
		"* signing GET " + host + " for service es in eu-west-2",
		"* canonical request:\n*   GET\n*   /logs-%2A/_search\n*   q=status%3A500\n",
		"x-amz-security-token:REDACTED",
		"* string to sign:\n*   AWS4-HMAC-SHA256\n",
		"> GET /logs-*/_search?q=status:500 HTTP/1.1\n",
		"> X-Amz-Security-Token: REDACTED\n",
		"Signature=REDACTED",
		"< HTTP/1.1 200 OK\n",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("-v lacks %q:\n%s", want, r.Stderr)
		}
	}
	wiretest.NoSecrets(t, f, "-v", r.Stderr)

	f.AWS.Reset()
	r = runCmd(t, "", curlArgs(f, host, "--dry-run", "-d", "{}", "http://"+f.Host()+"/logs/_doc")...)
	if r.Code != 0 || r.Stdout != "" {
		t.Fatalf("--dry-run: exit %d, stdout %q, %s", r.Code, r.Stdout, r.Stderr)
	}
	if n := len(f.AWS.Records()); n != 0 {
		t.Errorf("--dry-run sent %d requests", n)
	}
	for _, want := range []string{"* canonical request:\n*   POST\n", "> POST /logs/_doc HTTP/1.1\n", "> Content-Length: 2\n", "x-amz-content-sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("--dry-run lacks %q:\n%s", want, r.Stderr)
		}
	}
	wiretest.NoSecrets(t, f, "--dry-run", r.Stderr)
}

// --presign prints a URL that the endpoint accepts, sent by anyone.
func TestCurlPresign(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	bucket := "my-bucket.s3.eu-west-2.amazonaws.com"
	for _, args := range [][]string{{"--presign"}, {"--presign=15m"}, {"--presign", "2h"}, {"--presign", "7d"}} {
		r := runCmd(t, "", curlArgs(f, bucket, append(args, "http://"+f.Host()+"/report.pdf?versionId=3")...)...)
		if r.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.Code, r.Stderr)
		}
		if n := len(f.AWS.Records()); n != 0 {
			t.Fatalf("%v: sent %d requests", args, n)
		}
		u := strings.TrimSpace(r.Stdout)
		if !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "versionId=3") {
			t.Fatalf("%v: not a presigned URL: %s", args, u)
		}
		req, _ := http.NewRequest("GET", u, nil)
		req.Host = bucket
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if rec := f.Accepted(t); !rec.Presigned {
			t.Errorf("%v: not presigned: %+v", args, rec)
		}
		f.AWS.Reset()
	}
	for _, bad := range [][]string{{"--presign", "8d"}, {"--presign=-1m"}, {"--presign=soon"}} {
		r := runCmd(t, "", curlArgs(f, bucket, append(bad, "http://"+f.Host()+"/x")...)...)
		if r.Code == 0 || r.Stdout != "" {
			t.Errorf("%v: exit %d, %q", bad, r.Code, r.Stdout)
		}
	}
}

func TestCurlOutputAndFail(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		http.Error(w, `{"message":"no such thing"}`, http.StatusNotFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "1")
		w.Write([]byte("hello"))
	})
	f := wiretest.NewFixture(t, imdstest.Config{}, mux)
	host := "abc123.execute-api.eu-west-2.amazonaws.com"
	origin := "http://" + f.Host()

	r := runCmd(t, "", curlArgs(f, host, "-i", origin+"/ok")...)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "HTTP/1.1 200 OK\r\n") || !strings.Contains(r.Stdout, "\r\nX-Test: 1\r\n") || !strings.HasSuffix(r.Stdout, "\r\n\r\nhello") {
		t.Errorf("-i: exit %d, %q", r.Code, r.Stdout)
	}
	out := filepath.Join(t.TempDir(), "out")
	r = runCmd(t, "", curlArgs(f, host, "-o", out, origin+"/ok")...)
	if b, _ := os.ReadFile(out); r.Code != 0 || r.Stdout != "" || string(b) != "hello" {
		t.Errorf("-o: exit %d, stdout %q, file %q", r.Code, r.Stdout, b)
	}

	r = runCmd(t, "", curlArgs(f, host, origin+"/missing")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "no such thing") {
		t.Errorf("404 without --fail: exit %d, %q", r.Code, r.Stdout)
	}
	r = runCmd(t, "", curlArgs(f, host, "--fail", origin+"/missing")...)
	if r.Code != base.ExitHTTPError || r.Stdout != "" || !strings.Contains(r.Stderr, "error: 404") {
		t.Errorf("--fail: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = runCmd(t, "", curlArgs(f, host, "-fs", origin+"/missing")...)
	if r.Code != base.ExitHTTPError || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("-fs: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	r = runCmd(t, "", curlArgs(f, host, "--fail-with-body", origin+"/missing")...)
	if r.Code != base.ExitHTTPError || !strings.Contains(r.Stdout, "no such thing") {
		t.Errorf("--fail-with-body: exit %d, stdout %q", r.Code, r.Stdout)
	}
}

func TestCurlHeaders(t *testing.T) {
	var got http.Header
	f := wiretest.NewFixture(t, imdstest.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	dir := t.TempDir()
	hfile := filepath.Join(dir, "headers")
	os.WriteFile(hfile, []byte("X-From-File: 1\r\nX-Two: a\n\n"), 0o600)
	r := runCmd(t, "", curlArgs(f, "sts.eu-west-2.amazonaws.com",
		"-H", "X-Two: b", "-H", "@"+hfile, "-H", "Accept:", "-H", "X-Empty;", "-H", "User-Agent: mine/1",
		"-H", "x-amz-meta-note:  spaced   value ", "http://"+f.Host()+"/")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	f.Accepted(t)
	if v := got.Values("X-Two"); len(v) != 2 || v[0] != "b" || v[1] != "a" {
		t.Errorf("X-Two %q", v)
	}
	if got.Get("X-From-File") != "1" || got.Get("User-Agent") != "mine/1" || got.Get("Accept") != "" {
		t.Errorf("headers %v", got)
	}
	if v, ok := got["X-Empty"]; !ok || v[0] != "" {
		t.Errorf("X-Empty %q %t", v, ok)
	}
	for _, bad := range []string{"NoColon", ": v"} {
		r := runCmd(t, "", curlArgs(f, "sts.eu-west-2.amazonaws.com", "-H", bad, "http://"+f.Host()+"/")...)
		if r.Code != base.ExitUsage {
			t.Errorf("-H %q: exit %d", bad, r.Code)
		}
	}
}

// Where the signer refuses, nothing is sent and the exit status says so.
func TestCurlRefused(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not AWS", []string{"https://example.com/"}, base.ExitRefused, "not an AWS endpoint"},
		{"EC2 public name", []string{"https://ec2-203-0-113-25.compute-1.amazonaws.com/"}, base.ExitRefused, "not an AWS endpoint"},
		{"plaintext", []string{"http://sts.amazonaws.com/"}, base.ExitRefused, "in clear"},
		{"loopback unlisted", []string{"http://" + f.Host() + "/"}, base.ExitRefused, "not an AWS endpoint"},
		{"no scope", []string{"--allow-host", f.Host(), "http://" + f.Host() + "/"}, base.ExitRefused, "cannot tell"},
		{"ftp", []string{"ftp://sts.amazonaws.com/"}, base.ExitUsage, "http and https"},
		{"two URLs", []string{"https://sts.amazonaws.com/", "https://sts.amazonaws.com/"}, base.ExitUsage, "one URL"},
		{"-T and -d", []string{"-T", "x", "-d", "y", "https://sts.amazonaws.com/"}, base.ExitUsage, "exclude"},
		{"missing file", []string{"-T", "/nonexistent", "https://sts.amazonaws.com/"}, base.ExitUsage, "-T"},
		{"unknown flag", []string{"--compressed", "https://sts.amazonaws.com/"}, base.ExitUsage, "unknown flag"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, "", append([]string{"curl", "--imds-endpoint", f.IMDS.URL}, c.args...)...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) {
				t.Errorf("exit %d, %q; want %d and %q", r.Code, r.Stderr, c.code, c.msg)
			}
		})
	}
	if n := len(f.AWS.Records()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	r := runCmd(t, "", "curl", "--imds-endpoint", "http://127.0.0.1:1", "https://sts.amazonaws.com/")
	if r.Code != base.ExitNoCreds {
		t.Errorf("no IMDS: exit %d, %s", r.Code, r.Stderr)
	}
}

// TestCurlVerboseHidesKeyID (issue 18, point 3): -v shows no access key ID,
// as the proxy's access log shows none: the Authorization header keeps its
// scope and signed headers, the key ID and the signature are REDACTED.
func TestCurlVerboseHidesKeyID(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	host := "search-logs-abc.eu-west-2.es.amazonaws.com"
	r := runCmd(t, "", curlArgs(f, host, "-v", "http://"+f.Host()+"/logs/_search")...)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	f.Accepted(t)
	if key := f.IMDS.Current().AccessKeyID; strings.Contains(r.Stderr, key) {
		t.Errorf("-v shows the access key ID %s:\n%s", key, r.Stderr)
	}
	for _, want := range []string{"Credential=REDACTED/", "/eu-west-2/es/aws4_request, SignedHeaders="} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("-v lacks %q:\n%s", want, r.Stderr)
		}
	}
}
