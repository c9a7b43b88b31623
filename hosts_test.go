package kivuli_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var staticCreds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
})

// countingBase answers 200 to every request and counts them.
type countingBase struct{ sent atomic.Int32 }

func (b *countingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	b.sent.Add(1)
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// ProxyURL says that countingBase sends nothing through a proxy: it sends
// nothing anywhere.
func (b *countingBase) ProxyURL(*http.Request) (*url.URL, error) { return nil, nil }

// TestHostRules: a request is signed only when the host dialled (URL.Host)
// and the host signed for (Request.Host, else URL.Host) are both AWS
// endpoints or listed in AllowedHosts; IP literals only when listed
// literally; host names on their ASCII form only; requests in clear only to
// listed or loopback hosts; hosts that customers run inside AWS domains
// only when listed. Presign follows the same rules.
func TestHostRules(t *testing.T) {
	const (
		ok = iota
		notAllowed
		plaintext
	)
	for _, tc := range []struct {
		name    string
		url     string
		host    string // Request.Host
		allowed []string
		want    int
	}{
		// Point 1: the dialled host is checked, not only Request.Host.
		{"signed for STS, dialled elsewhere", "https://evil.example/", "sts.us-east-1.amazonaws.com", nil, notAllowed},
		{"signed for STS, dialled to an IP", "https://203.0.113.7/", "sts.us-east-1.amazonaws.com", nil, notAllowed},
		{"dialled to AWS, signed for elsewhere", "https://sts.us-east-1.amazonaws.com/", "evil.example", nil, notAllowed},
		{"tunnel: listed dial, AWS name signed", "http://localhost:9200/_search", "search-logs-abc.eu-west-2.es.amazonaws.com", []string{"localhost:9200"}, ok},
		{"tunnel to an unlisted port", "http://localhost:9201/_search", "search-logs-abc.eu-west-2.es.amazonaws.com", []string{"localhost:9200"}, notAllowed},
		{"listed dial, unlisted name signed", "http://localhost:9200/", "evil.example", []string{"localhost:9200"}, notAllowed},
		{"Request.Host equal to URL.Host", "https://sts.us-east-1.amazonaws.com/", "sts.us-east-1.amazonaws.com", nil, ok},

		// Point 2: IP literals, zones, non-ASCII names.
		{"IPv6 zone naming an AWS host", "http://[::ffff:127.0.0.1%25sts.us-east-1.amazonaws.com]:8080/", "", nil, notAllowed},
		{"IPv6 zone naming a listed wildcard", "http://[::ffff:127.0.0.1%25x.search.example.com]:8080/", "", []string{"*.search.example.com"}, notAllowed},
		{"IPv6 zone in Request.Host", "https://sts.us-east-1.amazonaws.com/", "[::1%25sts.us-east-1.amazonaws.com]", nil, notAllowed},
		{"IPv4 literal, unlisted", "https://127.0.0.1:8443/", "", nil, notAllowed},
		{"IPv4 literal, listed", "https://127.0.0.1:8443/", "", []string{"127.0.0.1"}, ok},
		{"IPv4 literal, listed with its port", "https://127.0.0.1:8443/", "", []string{"127.0.0.1:8443"}, ok},
		{"IPv4 literal, listed with another port", "https://127.0.0.1:8443/", "", []string{"127.0.0.1:9200"}, notAllowed},
		{"IPv6 literal, listed", "https://[::1]:8443/", "", []string{"::1"}, ok},
		{"IPv6 literal, listed in brackets", "https://[::1]:8443/", "", []string{"[::1]:8443"}, ok},
		{"IPv4-mapped literal is not the IPv4 one", "https://[::ffff:127.0.0.1]:8443/", "", []string{"127.0.0.1"}, notAllowed},
		{"wildcard never matches an IP", "https://10.0.0.1/", "", []string{"*.0.0.1"}, notAllowed},
		{"dotless i folds to ASCII under ToLower", "https://search.example.com/", "KİVULI.amazonaws.com", nil, notAllowed},
		{"long s folds to s under EqualFold", "https://ſearch.example.com/", "", []string{"search.example.com"}, notAllowed},
		{"non-ASCII under a wildcard", "https://café.search.example.com/", "", []string{"*.search.example.com"}, notAllowed},
		{"IDNA form under a wildcard", "https://xn--caf-dma.search.example.com/", "", []string{"*.search.example.com"}, ok},
		{"upper-case ASCII", "https://SEARCH.Example.COM/", "", []string{"search.example.com"}, ok},
		{"trailing dot", "https://sts.us-east-1.amazonaws.com./", "", nil, notAllowed},
		{"empty label", "https://sts..amazonaws.com/", "", nil, notAllowed},
		{"AWS domain alone", "https://amazonaws.com/", "", nil, notAllowed},
		{"suffix without a dot", "https://evilamazonaws.com/", "", nil, notAllowed},

		// AWS endpoints under no partition's domain: the exact names the
		// SDK's endpoint rules give, and nothing else under that domain.
		{"AWS Sign-In endpoint", "https://eu-west-2.signin.aws.amazon.com/", "", nil, ok},
		{"AWS Sign-In OAuth endpoint", "https://eu-west-2.oauth.signin.aws/", "", nil, ok},
		{"AWS Sign-In, GovCloud FIPS", "https://signin-fips.amazonaws-us-gov.com/", "", nil, ok},
		{"another name under signin's domain", "https://evil.signin.aws.amazon.com/", "", nil, notAllowed},
		{"a region that is not one, under signin's domain", "https://xx-evil-1.signin.aws.amazon.com/", "", nil, notAllowed},
		{"amazon.com itself", "https://www.amazon.com/", "", nil, notAllowed},

		// Point 3: requests in clear.
		{"http to an AWS endpoint", "http://sts.us-east-1.amazonaws.com/", "", nil, plaintext},
		{"ws to an AWS endpoint", "ws://abc-ats.iot.eu-west-2.amazonaws.com/mqtt", "", nil, plaintext},
		{"https to an AWS endpoint", "https://sts.us-east-1.amazonaws.com/", "", nil, ok},
		{"http to a listed AWS endpoint", "http://sts.us-east-1.amazonaws.com/", "", []string{"sts.us-east-1.amazonaws.com"}, ok},
		{"http to a listed host", "http://search.example.com:9200/", "", []string{"search.example.com"}, ok},
		{"http to a listed loopback address", "http://127.0.0.1:9200/", "", []string{"127.0.0.1:9200"}, ok},

		// Point 4: hosts customers run inside AWS domains.
		{"EC2 public name, us-east-1", "https://ec2-203-0-113-25.compute-1.amazonaws.com/", "", nil, notAllowed},
		{"EC2 public name", "https://ec2-203-0-113-25.eu-west-2.compute.amazonaws.com/", "", nil, notAllowed},
		{"EC2 public name, China", "https://ec2-203-0-113-25.cn-north-1.compute.amazonaws.com.cn/", "", nil, notAllowed},
		{"EC2 public name, listed", "https://ec2-203-0-113-25.eu-west-2.compute.amazonaws.com/", "", []string{"*.eu-west-2.compute.amazonaws.com"}, ok},
		{"Application Load Balancer", "https://my-alb-1234567890.eu-west-2.elb.amazonaws.com/", "", nil, notAllowed},
		{"Application Load Balancer, dual-stack", "https://dualstack.my-alb-1234567890.eu-west-2.elb.amazonaws.com/", "", nil, notAllowed},
		{"Classic Load Balancer, us-east-1", "https://my-clb-1234567890.us-east-1.elb.amazonaws.com/", "", nil, notAllowed},
		{"Network Load Balancer", "https://my-nlb-0123456789abcdef.elb.eu-west-2.amazonaws.com/", "", nil, notAllowed},
		{"Load Balancer, China", "https://my-alb-1.cn-north-1.elb.amazonaws.com.cn/", "", nil, notAllowed},
		{"PrivateLink endpoint service", "https://vpce-0abc-xyz.vpce-svc-0123456789abcdef0.eu-west-2.vpce.amazonaws.com/", "", nil, notAllowed},
		{"S3 website", "https://bucket.s3-website-us-east-1.amazonaws.com/", "", nil, notAllowed},
		{"S3 website, dotted", "https://bucket.s3-website.eu-west-2.amazonaws.com/", "", nil, notAllowed},
		{"S3 website, dual-stack", "https://bucket.s3-website.dualstack.eu-west-2.amazonaws.com/", "", nil, notAllowed},
		{"Cloud9 preview", "https://0123abcd.vfs.cloud9.eu-west-2.amazonaws.com/", "", nil, notAllowed},
		{"Verified Access application", "https://app.edge-0123.vai-0456.prod.verified-access.eu-west-2.amazonaws.com/", "", nil, notAllowed},
		{"MWAA web server", "https://0a1b2c3d-4e5f-6789-abcd-ef0123456789.c2.eu-west-2.airflow.amazonaws.com/", "", nil, notAllowed},
		{"MWAA API", "https://airflow.eu-west-2.amazonaws.com/", "", nil, ok},
		{"S3 bucket named like a website", "https://s3-website-x.s3.eu-west-2.amazonaws.com/key", "", nil, ok},
		{"ELB API", "https://elasticloadbalancing.eu-west-2.amazonaws.com/", "", nil, ok},
		{"EC2 API", "https://ec2.eu-west-2.amazonaws.com/", "", nil, ok},
		{"Compute Optimizer API", "https://compute-optimizer.eu-west-2.amazonaws.com/", "", nil, ok},
		{"S3 bucket named elb", "https://elb.s3.eu-west-2.amazonaws.com/key", "", nil, ok},
		{"API Gateway", "https://abc123.execute-api.eu-west-2.amazonaws.com/prod/", "", nil, ok},
		{"Lambda function URL", "https://abcdefg.lambda-url.eu-west-1.on.aws/", "", nil, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := &countingBase{}
			tr := &kivuli.Transport{Credentials: staticCreds, Service: "execute-api", Region: "eu-west-2", AllowedHosts: tc.allowed, Base: base}
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			require.NoError(t, err)
			req.Host = tc.host
			_, err = tr.RoundTrip(req)
			presigned, perr := tr.Presign(req, time.Minute)
			switch tc.want {
			case ok:
				require.NoError(t, err)
				require.NoError(t, perr)
				assert.Equal(t, int32(1), base.sent.Load())
				assert.Contains(t, presigned, "X-Amz-Signature=")
			case notAllowed:
				assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
				assert.ErrorIs(t, perr, kivuli.ErrHostNotAllowed)
				assert.Zero(t, base.sent.Load(), "nothing is sent")
				assert.Empty(t, presigned)
			case plaintext:
				assert.ErrorIs(t, err, kivuli.ErrPlaintext)
				assert.ErrorIs(t, perr, kivuli.ErrPlaintext)
				assert.ErrorContains(t, err, "AllowedHosts", "the error says how to allow it")
				assert.Zero(t, base.sent.Load(), "nothing is sent")
				assert.Empty(t, presigned)
			}
		})
	}
}

// TestTunnel: a request dialled to a listed local tunnel and signed for the
// OpenSearch domain's AWS name (opensearch-go's OverrideSigningPort case)
// is signed for that name and arrives with a signature that checks.
func TestTunnel(t *testing.T) {
	creds := sigv4test.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}
	var host atomic.Value
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Static(creds)},
		http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { host.Store(r.Host) }))
	defer endpoint.Close()
	tunnel := strings.TrimPrefix(endpoint.URL, "http://")
	const domain = "search-logs-abc.eu-west-2.es.amazonaws.com"

	tr := &kivuli.Transport{Credentials: staticCreds, AllowedHosts: []string{tunnel}}
	req, err := http.NewRequest(http.MethodGet, endpoint.URL+"/logs-*/_search?q=status:500", nil)
	require.NoError(t, err)
	req.Host = domain
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	recs := endpoint.Records()
	require.Len(t, recs, 1)
	require.NoError(t, recs[0].Err)
	assert.Equal(t, domain, host.Load(), "the Host header is the domain's name, and the signature covers it")
	assert.Equal(t, "es", recs[0].Service)
	assert.Equal(t, "eu-west-2", recs[0].Region)
}

// FuzzHostRules: whatever the URL's host, Request.Host and AllowedHosts
// hold, a request that is sent goes to a host named in ASCII that is either
// listed or under an AWS domain, and is signed for such a host; nothing
// panics.
func FuzzHostRules(f *testing.F) {
	f.Add("sts.us-east-1.amazonaws.com", "", "")
	f.Add("evil.example", "sts.us-east-1.amazonaws.com", "")
	f.Add("[::ffff:127.0.0.1%sts.us-east-1.amazonaws.com]:8080", "", "*.search.example.com")
	f.Add("localhost:9200", "search-x.eu-west-2.es.amazonaws.com", "localhost:9200")
	f.Add("KİVULI.amazonaws.com", "", "")
	f.Add("ſearch.example.com", "", "search.example.com")
	f.Add("a.b.example.com:443", "[::1]", "*.example.com")
	f.Add("ec2-1-2-3-4.compute-1.amazonaws.com", "", "")
	// Every partition's DNS suffixes, standard and dual-stack, and on.aws.
	awsDomains := []string{".amazonaws.com", ".amazonaws.com.cn", ".amazonaws.eu", ".api.aws", ".on.aws",
		".api.amazonwebservices.com.cn", ".api.amazonwebservices.eu", ".c2s.ic.gov", ".api.aws.ic.gov",
		".sc2s.sgov.gov", ".api.aws.scloud", ".cloud.adc-e.uk", ".api.cloud-aws.adc-e.uk",
		".csp.hci.ic.gov", ".api.aws.hci.ic.gov"}
	ascii := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= 0x80 || c == '%' || c <= ' ' {
				return false
			}
		}
		return true
	}
	// acceptable reports whether host may receive or be named by a signed
	// request: a looser statement of the rules, written apart from them.
	acceptable := func(host, allowed string) bool {
		name := host
		if h, _, ok := strings.Cut(host, "]"); ok && strings.HasPrefix(host, "[") {
			name = h[1:]
		} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
			name = host[:i]
		}
		if !ascii(host) {
			return false
		}
		lower := strings.ToLower(name)
		for _, d := range awsDomains {
			if strings.HasSuffix(lower, d) && len(lower) > len(d) && !strings.Contains(lower, ":") {
				return true
			}
		}
		if w, ok := strings.CutPrefix(allowed, "*."); ok {
			return strings.HasSuffix(lower, "."+strings.ToLower(w))
		}
		if a, err := netip.ParseAddr(strings.Trim(allowed, "[]")); err == nil {
			b, err := netip.ParseAddr(name)
			return err == nil && a == b
		}
		return allowed != "" && (strings.EqualFold(strings.Trim(allowed, "[]"), name) || strings.EqualFold(allowed, host))
	}
	f.Fuzz(func(t *testing.T, urlHost, reqHost, allowed string) {
		base := &countingBase{}
		tr := &kivuli.Transport{Credentials: staticCreds, Service: "es", Region: "eu-west-2", Base: base}
		if allowed != "" {
			tr.AllowedHosts = []string{allowed}
		}
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: urlHost, Path: "/"}, Host: reqHost, Header: http.Header{}}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		resp.Body.Close()
		if !acceptable(urlHost, allowed) {
			t.Fatalf("sent to %q (allowed %q)", urlHost, allowed)
		}
		if reqHost != "" && !acceptable(reqHost, allowed) {
			t.Fatalf("signed for %q (allowed %q)", reqHost, allowed)
		}
	})
}

// TestAllowedHostsChecked: an AllowedHosts entry that can match nothing, or
// far too much, is an ErrInvalidConfig error rather than silently ignored.
func TestAllowedHostsChecked(t *testing.T) {
	for _, entry := range []string{"", "*", "*.", "*.com", "*.example.com:443", "host:99999", "café.example.com", "a b"} {
		tr := &kivuli.Transport{Credentials: staticCreds, Service: "sts", Region: "us-east-1", Base: &countingBase{}, AllowedHosts: []string{entry}}
		req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrInvalidConfig, "%q", entry)
	}
	for _, entry := range []string{"search.example.com", "*.example.com", "127.0.0.1:9200", "::1", "[::1]:9200", "localhost"} {
		tr := &kivuli.Transport{Credentials: staticCreds, Service: "sts", Region: "us-east-1", Base: &countingBase{}, AllowedHosts: []string{entry}}
		req, _ := http.NewRequest(http.MethodGet, "https://sts.us-east-1.amazonaws.com/", nil)
		_, err := tr.RoundTrip(req)
		assert.NoError(t, err, entry)
	}
}

// TestNilTransports: misuse gives an error, never a panic, and the body is
// closed.
func TestNilTransports(t *testing.T) {
	for name, rt := range map[string]http.RoundTripper{
		"nil Transport":             (*kivuli.Transport)(nil),
		"NewRetryingTransport(nil)": kivuli.NewRetryingTransport(nil),
		"zero RetryingTransport":    &kivuli.RetryingTransport{},
	} {
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPut, "https://sts.us-east-1.amazonaws.com/", nil)
		req.Body = body
		_, err := rt.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrNoCredentials, name)
		assert.Equal(t, int32(1), body.closes.Load(), name)
	}
}

func TestTransportHosts(t *testing.T) {
	r := newRig(t, nil)
	var foreign atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		foreign.Add(1)
	}))
	defer elsewhere.Close()
	redirector := sigv4test.NewServer(r.verifier, http.RedirectHandler(elsewhere.URL+"/steal", http.StatusFound))
	defer redirector.Close()

	tr := r.transport("es")
	tr.AllowedHosts = []string{strings.TrimPrefix(redirector.URL, "http://")}
	client := &http.Client{Transport: tr}
	_, err := client.Get(redirector.URL + "/")
	require.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
	assert.Zero(t, foreign.Load(), "credentials never follow a redirect to a foreign host")

	for _, tc := range []struct {
		allowed []string
		host    string
		ok      bool
	}{
		{nil, "search-x.eu-west-2.es.amazonaws.com", true},
		{nil, "sts.amazonaws.com.cn", true},
		{nil, "x.lambda-url.eu-west-1.on.aws", true},
		// Every partition's domains, standard and dual-stack, from the
		// endpoint data (issue 10: China's dual-stack domain was refused).
		{nil, "sts.cn-north-1.api.amazonwebservices.com.cn", true},
		{nil, "sts.eusc-de-east-1.amazonaws.eu", true},
		{nil, "sts.eusc-de-east-1.api.amazonwebservices.eu", true},
		{nil, "sts.us-iso-east-1.api.aws.ic.gov", true},
		{nil, "sts.us-isob-east-1.api.aws.scloud", true},
		{nil, "api.aws", false},
		{nil, "amazonaws.eu.evil.com", false},
		{nil, "amazonaws.com.evil.com", false},
		{nil, "evilamazonaws.com", false},
		{[]string{"search.example.com"}, "search.example.com", true},
		{[]string{"search.example.com"}, "search.example.com:9200", true},
		{[]string{"localhost:9200"}, "localhost:9201", false},
		{[]string{"*.example.com"}, "a.b.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "badexample.com", false},
	} {
		tr := &kivuli.Transport{Credentials: r.creds, Service: "es", Region: "eu-west-2", AllowedHosts: tc.allowed,
			Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
			})}
		_, err := tr.RoundTrip(&http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: tc.host, Path: "/"}, Header: http.Header{}})
		if tc.ok {
			assert.NoError(t, err, tc.host)
		} else {
			assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed, tc.host)
		}
	}
}
