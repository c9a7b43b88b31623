package kivuli_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redirects maps a host (and path) to the answer it gives: a status and a
// Location. Hosts absent answer 200 (sigv4test's own answer).
var redirects = map[string]struct {
	status   int
	location string
}{
	// Customers' code that the host rules allow: a Lambda function URL and
	// an API Gateway API, pointing at IAM and at another bucket.
	"abc.lambda-url.us-east-1.on.aws/":                {http.StatusFound, "https://iam.amazonaws.com/?Action=UpdateAssumeRolePolicy&RoleName=app&Version=2010-05-08"},
	"abc.lambda-url.us-east-1.on.aws/relative":        {http.StatusFound, "/landed"},
	"abc.lambda-url.us-east-1.on.aws/port":            {http.StatusFound, "https://abc.lambda-url.us-east-1.on.aws:443/landed"},
	"abc.lambda-url.us-east-1.on.aws/other-url":       {http.StatusFound, "https://evil.lambda-url.us-east-1.on.aws/"},
	"abc123.execute-api.us-east-1.amazonaws.com/prod": {http.StatusPermanentRedirect, "https://victim-bucket.s3.us-east-1.amazonaws.com/key"},
	"abc123.execute-api.us-east-1.amazonaws.com/sts":  {http.StatusTemporaryRedirect, "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"},
	// S3's region redirects of one bucket, virtual-hosted and path-style.
	"b.s3.amazonaws.com/key":           {http.StatusTemporaryRedirect, "https://b.s3.eu-west-2.amazonaws.com/key"},
	"b.s3.amazonaws.com/moved":         {http.StatusMovedPermanently, "https://b.s3-eu-west-2.amazonaws.com/moved"},
	"s3.amazonaws.com/b/key":           {http.StatusTemporaryRedirect, "https://s3.eu-west-2.amazonaws.com/b/key"},
	"b.s3.amazonaws.com/other-bucket":  {http.StatusTemporaryRedirect, "https://victim-bucket.s3.eu-west-2.amazonaws.com/key"},
	"b.s3.amazonaws.com/other-service": {http.StatusTemporaryRedirect, "https://sts.eu-west-2.amazonaws.com/"},
	"b.s3.amazonaws.com/found":         {http.StatusFound, "https://b.s3.eu-west-2.amazonaws.com/found"},
	"s3.amazonaws.com/b/other-bucket":  {http.StatusTemporaryRedirect, "https://s3.eu-west-2.amazonaws.com/victim-bucket/key"},
}

// redirectRig is a rig whose endpoint answers as redirects says, every
// https host delivered to it, the Host kept; sent lists the host and path
// of every request sent.
func redirectRig(t *testing.T) (r *rig, tr *kivuli.Transport, sent func() []string) {
	r = newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if a, ok := redirects[req.Host+req.URL.Path]; ok {
			w.Header().Set("Location", a.location)
			w.WriteHeader(a.status)
			return
		}
		io.WriteString(w, "ok")
	}))
	addr := r.host()
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	var mu sync.Mutex
	var hosts []string
	tr = &kivuli.Transport{Credentials: r.creds, Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		host := req.Host // as the signer left it, the default port removed
		if host == "" {
			host = req.URL.Host
		}
		mu.Lock()
		hosts = append(hosts, host+req.URL.Path)
		mu.Unlock()
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = "http", addr, host
		return inner.RoundTrip(out)
	})}
	return r, tr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(hosts)
	}
}

// TestRedirectsStayOnTheSignedHost (issue 17, point 1): a redirected
// request is signed only for the host that the redirecting one was signed
// for, but for S3's region redirects of one bucket; anything else is an
// ErrHostNotAllowed error and nothing is sent, with every client a user
// builds.
func TestRedirectsStayOnTheSignedHost(t *testing.T) {
	clients := map[string]func(*kivuli.Transport) *http.Client{
		"http.Client":       func(tr *kivuli.Transport) *http.Client { return &http.Client{Transport: tr} },
		"NewRetryingClient": func(tr *kivuli.Transport) *http.Client { return kivuli.NewRetryingClient(tr) },
		"RetryingTransport": func(tr *kivuli.Transport) *http.Client {
			return &http.Client{Transport: kivuli.NewRetryingTransport(tr)}
		},
		"CheckRedirect": func(tr *kivuli.Transport) *http.Client {
			return &http.Client{Transport: tr, CheckRedirect: kivuli.CheckRedirect}
		},
		"a CheckRedirect following": func(tr *kivuli.Transport) *http.Client {
			return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
		},
	}
	for _, tc := range []struct {
		name, method, url string
		reached           []string // the hosts and paths the endpoint verified, in order
	}{
		{"Lambda URL to IAM", "GET", "https://abc.lambda-url.us-east-1.on.aws/", []string{"abc.lambda-url.us-east-1.on.aws/"}},
		{"Lambda URL to another function", "GET", "https://abc.lambda-url.us-east-1.on.aws/other-url", []string{"abc.lambda-url.us-east-1.on.aws/other-url"}},
		{"API Gateway to S3, PUT", "PUT", "https://abc123.execute-api.us-east-1.amazonaws.com/prod", []string{"abc123.execute-api.us-east-1.amazonaws.com/prod"}},
		{"API Gateway to STS", "POST", "https://abc123.execute-api.us-east-1.amazonaws.com/sts", []string{"abc123.execute-api.us-east-1.amazonaws.com/sts"}},
		{"S3 to another bucket", "PUT", "https://b.s3.amazonaws.com/other-bucket", []string{"b.s3.amazonaws.com/other-bucket"}},
		{"S3 to STS", "GET", "https://b.s3.amazonaws.com/other-service", []string{"b.s3.amazonaws.com/other-service"}},
		{"S3 302, not a region redirect", "GET", "https://b.s3.amazonaws.com/found", []string{"b.s3.amazonaws.com/found"}},
		{"S3 path-style to another bucket", "GET", "https://s3.amazonaws.com/b/other-bucket", []string{"s3.amazonaws.com/b/other-bucket"}},

		{"same host, relative", "GET", "https://abc.lambda-url.us-east-1.on.aws/relative", []string{"abc.lambda-url.us-east-1.on.aws/relative", "abc.lambda-url.us-east-1.on.aws/landed"}},
		{"same host, default port", "GET", "https://abc.lambda-url.us-east-1.on.aws/port", []string{"abc.lambda-url.us-east-1.on.aws/port", "abc.lambda-url.us-east-1.on.aws/landed"}},
		{"S3 region redirect, 307 PUT", "PUT", "https://b.s3.amazonaws.com/key", []string{"b.s3.amazonaws.com/key", "b.s3.eu-west-2.amazonaws.com/key"}},
		{"S3 region redirect, 301, dash form", "GET", "https://b.s3.amazonaws.com/moved", []string{"b.s3.amazonaws.com/moved", "b.s3-eu-west-2.amazonaws.com/moved"}},
		{"S3 region redirect, path-style", "GET", "https://s3.amazonaws.com/b/key", []string{"s3.amazonaws.com/b/key", "s3.eu-west-2.amazonaws.com/b/key"}},
	} {
		for cname, client := range clients {
			t.Run(tc.name+"/"+cname, func(t *testing.T) {
				r, tr, sent := redirectRig(t)
				req, err := http.NewRequest(tc.method, tc.url, strings.NewReader("body"))
				require.NoError(t, err)
				resp, err := client(tr).Do(req)
				if len(tc.reached) == 1 {
					require.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
					assert.ErrorContains(t, err, "redirect")
				} else {
					require.NoError(t, err)
					assert.Equal(t, http.StatusOK, resp.StatusCode)
				}
				if resp != nil {
					resp.Body.Close()
				}
				assert.Equal(t, tc.reached, sent(), "the hosts sent a request")
				for _, rec := range r.endpoint.Records() {
					require.NoError(t, rec.Err, "every request that arrives is signed right")
				}
			})
		}
	}
}

// TestRedirectOfATunnel: a tunnel's relative redirect keeps its signed
// name (http.Client keeps Request.Host) and is followed; an absolute one
// to the tunnel's address would be signed for that address, and is not.
func TestRedirectOfATunnel(t *testing.T) {
	var r *rig
	r = newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/relative":
			http.Redirect(w, req, "/landed", http.StatusFound)
		case "/absolute":
			http.Redirect(w, req, r.endpoint.URL+"/landed", http.StatusFound)
		}
	}))
	tr := r.transport("")
	client := &http.Client{Transport: tr}
	for path, want := range map[string]error{"/relative": nil, "/absolute": kivuli.ErrHostNotAllowed} {
		r.endpoint.Reset()
		req, _ := http.NewRequest("GET", r.endpoint.URL+path, nil)
		req.Host = awsHost
		resp, err := client.Do(req)
		if want == nil {
			require.NoError(t, err, path)
			resp.Body.Close()
			assert.Len(t, r.endpoint.Records(), 2, path)
		} else {
			require.ErrorIs(t, err, want, path)
			assert.Len(t, r.endpoint.Records(), 1, path)
		}
		for _, rec := range r.endpoint.Records() {
			assert.NoError(t, rec.Err, "signed for awsHost, as sent")
		}
	}
}
