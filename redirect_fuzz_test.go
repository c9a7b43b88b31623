package kivuli_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
)

// fuzzHost is a host of FuzzRedirectChain's world, with what the oracle
// needs to know of it, written out here rather than asked of the library.
type fuzzHost struct {
	host   string
	bucket string // the bucket a virtual-hosted S3 endpoint names
	s3Path bool   // a path-style S3 endpoint: the bucket is the path's first segment
	domain string // the AWS domain of an S3 endpoint
}

var fuzzHosts = []fuzzHost{
	{host: "sts.amazonaws.com"},
	{host: "iam.amazonaws.com"},
	{host: "sts.eu-west-2.amazonaws.com:443"},
	{host: "abc.lambda-url.us-east-1.on.aws"},
	{host: "evil.lambda-url.us-east-1.on.aws"},
	{host: "abc123.execute-api.us-east-1.amazonaws.com"},
	{host: "search.example.com"}, // listed
	{host: "localhost:9200"},     // listed: a tunnel's end
	{host: "evil.example.com"},   // not allowed: never signed
	{host: "127.0.0.1:9200"},     // not listed
	{host: "ec2-203-0-113-25.compute-1.amazonaws.com"},
	{host: "b.s3.amazonaws.com", bucket: "b", domain: "amazonaws.com"},
	{host: "b.s3.eu-west-2.amazonaws.com", bucket: "b", domain: "amazonaws.com"},
	{host: "b.s3-eu-west-2.amazonaws.com", bucket: "b", domain: "amazonaws.com"},
	{host: "b.s3.dualstack.eu-west-2.amazonaws.com", bucket: "b", domain: "amazonaws.com"},
	{host: "victim.s3.eu-west-2.amazonaws.com", bucket: "victim", domain: "amazonaws.com"},
	{host: "b.s3.cn-north-1.amazonaws.com.cn", bucket: "b", domain: "amazonaws.com.cn"},
	{host: "s3.amazonaws.com", s3Path: true, domain: "amazonaws.com"},
	{host: "s3.eu-west-2.amazonaws.com", s3Path: true, domain: "amazonaws.com"},
	{host: "B.S3.EU-WEST-2.AMAZONAWS.COM", bucket: "b", domain: "amazonaws.com"},
}

var fuzzPaths = []string{"/", "/b/key", "/victim/key", "/key", "/b"}

var fuzzStatuses = []int{301, 302, 303, 307, 308}

// FuzzRedirectChain (issue 17, point 1): random redirect chains across
// listed, AWS and customers' hosts, followed by every kind of client. No
// signed request may reach a host that the rule refuses: each hop after
// the first is signed for the host the one before was signed for and sent
// to, or is S3's region redirect (301 or 307) of the same bucket, in the
// same partition.
func FuzzRedirectChain(f *testing.F) {
	f.Add([]byte{3, 0, 0, 1, 0, 0})               // Lambda URL, 301 to IAM
	f.Add([]byte{11, 1, 3, 12, 1, 0})             // S3 307 to the bucket's region
	f.Add([]byte{17, 1, 3, 18, 1, 0})             // path-style
	f.Add([]byte{11, 1, 3, 15, 1, 0})             // another bucket
	f.Add([]byte{7, 0, 2, 255, 3, 0, 0, 0, 0, 1}) // a tunnel, a relative redirect
	f.Add([]byte{5, 0, 4, 11, 1, 1, 3, 12, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		start := fuzzHosts[int(next())%len(fuzzHosts)]
		path := fuzzPaths[int(next())%len(fuzzPaths)]
		client := int(next()) % 3
		tunnel := start.host == "localhost:9200" && path == "/"

		type hop struct {
			host, path string
			status     int
		}
		var sent []hop
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Body != nil {
				r.Body.Close()
			}
			signed := r.Host
			if signed == "" {
				signed = r.URL.Host
			}
			h := hop{host: signed, path: r.URL.Path}
			resp := &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}
			if len(data) >= 3 {
				to, p, st := next(), next(), next()
				h.status = fuzzStatuses[int(st)%len(fuzzStatuses)]
				resp.StatusCode = h.status
				loc := fuzzPaths[int(p)%len(fuzzPaths)]
				if to != 255 {
					loc = "https://" + fuzzHosts[int(to)%len(fuzzHosts)].host + loc
				}
				resp.Header.Set("Location", loc)
			}
			sent = append(sent, h)
			return resp, nil
		})
		tr := &kivuli.Transport{Credentials: staticCreds, Service: "s3", Region: "us-east-1", Base: base,
			AllowedHosts: []string{"search.example.com", "localhost:9200"}}
		var c *http.Client
		switch client {
		case 0:
			c = &http.Client{Transport: tr}
		case 1:
			c = &http.Client{Transport: tr, CheckRedirect: kivuli.CheckRedirect}
		default:
			c = kivuli.NewRetryingClient(tr, func(o *kivuli.RetryOptions) { o.MaxAttempts = 1 })
		}
		scheme := "https://"
		if start.host == "localhost:9200" {
			scheme = "http://"
		}
		req, err := http.NewRequest(http.MethodPut, scheme+start.host+path, strings.NewReader("body"))
		if err != nil {
			return
		}
		if tunnel {
			req.Host = "sts.amazonaws.com"
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		for i := 1; i < len(sent); i++ {
			if !redirectAllowed(sent[i-1].host, sent[i-1].path, sent[i].host, sent[i].path, sent[i-1].status) {
				t.Fatalf("a redirect %d from %s%s to %s%s was signed and sent (chain %+v)", sent[i-1].status, sent[i-1].host, sent[i-1].path, sent[i].host, sent[i].path, sent)
			}
		}
	})
}

// redirectAllowed is the oracle: the same host, the default port aside, or
// an S3 region redirect of one bucket.
func redirectAllowed(from, fromPath, to, toPath string, status int) bool {
	norm := func(h string) string { return strings.TrimSuffix(strings.ToLower(h), ":443") }
	if norm(from) == norm(to) {
		return true
	}
	if status != 301 && status != 307 {
		return false
	}
	a, b := fuzzHostOf(from), fuzzHostOf(to)
	if a == nil || b == nil || a.domain == "" || a.domain != b.domain {
		return false
	}
	bucket := func(h *fuzzHost, path string) string {
		if h.s3Path {
			seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
			return seg
		}
		return h.bucket
	}
	x, y := bucket(a, fromPath), bucket(b, toPath)
	return x != "" && x == y
}

func fuzzHostOf(host string) *fuzzHost {
	for i := range fuzzHosts {
		if strings.EqualFold(fuzzHosts[i].host, host) {
			return &fuzzHosts[i]
		}
	}
	return nil
}
