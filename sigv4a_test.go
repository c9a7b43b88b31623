package kivuli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
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

// The hosts that take SigV4a only, as the endpoint rules give them
// (sigv4aForms), with the signing name they are signed as.
var sigv4aHosts = []struct{ host, service string }{
	{"mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", "s3"},
	{"123456789012.cloudfront-kvs.global.api.aws", "cloudfront-keyvaluestore"},
	{"abcde.veo.endpoint.events.amazonaws.com", "events"},
	{"abcde.veo.endpoint.events.api.aws", "events"},
	{"mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com.cn", "s3"},
}

const mrapHost = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com"

// tunnelled returns a request for host, sent to the rig's endpoint (a
// tunnel: URL.Host is the endpoint, Request.Host the AWS name).
func (r *rig) tunnelled(t *testing.T, method, host, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, r.endpoint.URL+path, body)
	require.NoError(t, err)
	req.Host = host
	return req
}

// roundTrip sends req with tr and returns the endpoint's record of it.
func (r *rig) roundTrip(t *testing.T, tr http.RoundTripper, req *http.Request) sigv4test.Record {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return r.lastRecord(t)
}

// TestSigV4AHosts: the hosts that take SigV4a only are signed with SigV4a
// for the region set "*", as their signing service, the session token in
// a signed header; a Transport's Region does not change the set (it is
// the region of the SigV4 hosts), its Service is used; and a presigned
// URL carries the algorithm and the set in its query, and is accepted.
func TestSigV4AHosts(t *testing.T) {
	r := newRig(t, nil)
	for _, h := range sigv4aHosts {
		for _, region := range []string{"", "eu-west-2"} {
			tr := &kivuli.Transport{Credentials: r.creds, Region: region, AllowedHosts: []string{r.host()}}
			rec := r.roundTrip(t, tr, r.tunnelled(t, http.MethodGet, h.host, "/key", nil))
			require.NoError(t, rec.Err, h.host)
			assert.Equal(t, "AWS4-ECDSA-P256-SHA256", rec.Algorithm, h.host)
			assert.Equal(t, h.service, rec.Service, h.host)
			assert.Equal(t, "*", rec.Region, h.host)
			assert.Equal(t, sigv4test.HeaderSigned, rec.Token, h.host)
			assert.Contains(t, rec.SignedHeaders, "x-amz-region-set", h.host)
		}
	}
	t.Run("Transport.Service", func(t *testing.T) {
		v := *r.verifier
		v.Scope = sigv4test.AnyScope
		srv := sigv4test.NewServer(&v, nil)
		defer srv.Close()
		tr := &kivuli.Transport{Credentials: r.creds, Service: "mine", AllowedHosts: []string{strings.TrimPrefix(srv.URL, "http://")}}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Host = mrapHost
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		rec := srv.Records()[0]
		require.NoError(t, rec.Err)
		assert.Equal(t, "mine", rec.Service)
		assert.Equal(t, "*", rec.Region)
	})
	t.Run("presigned", func(t *testing.T) {
		tr := &kivuli.Transport{Credentials: r.creds, AllowedHosts: []string{r.host()}}
		req := r.tunnelled(t, http.MethodGet, mrapHost, "/a%20key", nil)
		signed, err := tr.Presign(req, time.Minute)
		require.NoError(t, err)
		u, err := url.Parse(signed)
		require.NoError(t, err)
		q := u.Query()
		assert.Equal(t, "AWS4-ECDSA-P256-SHA256", q.Get("X-Amz-Algorithm"))
		assert.Equal(t, "*", q.Get("X-Amz-Region-Set"))
		assert.Equal(t, "60", q.Get("X-Amz-Expires"))
		assert.NotEmpty(t, q.Get("X-Amz-Security-Token"))
		get, _ := http.NewRequest(http.MethodGet, signed, nil)
		get.Host = mrapHost
		resp, err := http.DefaultClient.Do(get)
		require.NoError(t, err)
		resp.Body.Close()
		rec := r.lastRecord(t)
		require.NoError(t, rec.Err)
		assert.True(t, rec.Presigned)
		assert.Equal(t, sigv4test.QuerySigned, rec.Token)
		assert.Equal(t, "UNSIGNED-PAYLOAD", rec.PayloadHash)
	})
}

// TestSigV4APolicy: Policy.Algorithm forces SigV4a (for the host's region,
// Transport.Region's set, or the rules' set of S3 on Outposts, which is
// signed with SigV4 otherwise) or refuses it; a token placement of the
// policy's holds for SigV4a too.
func TestSigV4APolicy(t *testing.T) {
	r := newRig(t, nil)
	const outposts = "reports-123456789012.op-01234567890123456.s3-outposts.us-east-1.amazonaws.com"
	for _, tc := range []struct {
		name, host, region string
		pol                map[string]kivuli.Policy
		algorithm, set     string
		token              sigv4test.TokenPlacement
	}{
		{"S3 on Outposts: SigV4", outposts, "", nil, "AWS4-HMAC-SHA256", "us-east-1", sigv4test.HeaderSigned},
		{"S3 on Outposts, forced: the rules' set", outposts, "", map[string]kivuli.Policy{"s3-outposts": {Payload: kivuli.PayloadHashHeader, EscapePathOnce: true, KeepDotSegments: true, Algorithm: kivuli.AlgorithmSigV4A}}, "AWS4-ECDSA-P256-SHA256", "*", sigv4test.HeaderSigned},
		{"STS, forced: its region", "sts.eu-west-2.amazonaws.com", "", map[string]kivuli.Policy{"sts": {Algorithm: kivuli.AlgorithmSigV4A}}, "AWS4-ECDSA-P256-SHA256", "eu-west-2", sigv4test.HeaderSigned},
		{"STS, forced: Transport.Region's set", "sts.eu-west-2.amazonaws.com", "eu-west-2,us-east-1", map[string]kivuli.Policy{"sts": {Algorithm: kivuli.AlgorithmSigV4A}}, "AWS4-ECDSA-P256-SHA256", "eu-west-2,us-east-1", sigv4test.HeaderSigned},
		{"MRAP, the token unsigned", mrapHost, "", map[string]kivuli.Policy{"s3": {Payload: kivuli.PayloadHashHeader, EscapePathOnce: true, KeepDotSegments: true, Token: kivuli.TokenHeaderUnsigned}}, "AWS4-ECDSA-P256-SHA256", "*", sigv4test.HeaderUnsigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &kivuli.Transport{Credentials: r.creds, Region: tc.region, Policies: tc.pol, AllowedHosts: []string{r.host()}}
			rec := r.roundTrip(t, tr, r.tunnelled(t, http.MethodGet, tc.host, "/", nil))
			require.NoError(t, rec.Err)
			assert.Equal(t, tc.algorithm, rec.Algorithm)
			assert.Equal(t, tc.set, rec.Region)
			assert.Equal(t, tc.token, rec.Token)
		})
	}
	t.Run("refused", func(t *testing.T) {
		base := &countingBase{}
		tr := &kivuli.Transport{Credentials: r.creds, Base: base, Policies: map[string]kivuli.Policy{"s3": {Algorithm: kivuli.AlgorithmSigV4}}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+mrapHost+"/key", nil)
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrUnknownScope)
		assert.ErrorContains(t, err, "SigV4a only")
		assert.Zero(t, base.sent.Load())
	})
	t.Run("an unknown algorithm", func(t *testing.T) {
		tr := &kivuli.Transport{Credentials: r.creds, Base: &countingBase{}, Policies: map[string]kivuli.Policy{"s3": {Algorithm: 7}}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+mrapHost+"/key", nil)
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrInvalidConfig)
	})
}

// TestSigV4AUploads: an S3 upload to a Multi-Region Access Point, which
// SigV4a cannot send aws-chunked: a body read twice is hashed, its CRC32
// in a header; a body read once goes UNSIGNED-PAYLOAD without the
// policy's checksum, unless the request asks for one, when it is
// buffered; the policy's Chunked gives way; a body that comes aws-chunked
// already is refused.
func TestSigV4AUploads(t *testing.T) {
	r := newRig(t, nil)
	body := strings.Repeat("multi-region ", 1000)
	sum := sha256.Sum256([]byte(body))
	tr := &kivuli.Transport{Credentials: r.creds, AllowedHosts: []string{r.host()}}
	chunked := kivuli.DefaultPolicies()
	s3 := chunked["s3"]
	s3.Chunked = true
	chunked["s3"] = s3
	for _, tc := range []struct {
		name     string
		tr       *kivuli.Transport
		body     func() io.Reader
		header   string
		payload  string
		checksum string
	}{
		{"read twice", tr, func() io.Reader { return strings.NewReader(body) }, "", hex.EncodeToString(sum[:]), "CRC32"},
		{"read once", tr, func() io.Reader { return oneShot([]byte(body)) }, "", "UNSIGNED-PAYLOAD", ""},
		{"read once, a checksum asked for", tr, func() io.Reader { return oneShot([]byte(body)) }, "SHA256", hex.EncodeToString(sum[:]), "SHA256"},
		{"Chunked", &kivuli.Transport{Credentials: r.creds, Policies: chunked, AllowedHosts: []string{r.host()}}, func() io.Reader { return strings.NewReader(body) }, "", hex.EncodeToString(sum[:]), "CRC32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := r.tunnelled(t, http.MethodPut, mrapHost, "/key", tc.body())
			req.ContentLength = int64(len(body))
			if tc.header != "" {
				req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", tc.header)
			}
			rec := r.roundTrip(t, tc.tr, req)
			require.NoError(t, rec.Err)
			assert.Equal(t, "AWS4-ECDSA-P256-SHA256", rec.Algorithm)
			assert.Equal(t, tc.payload, rec.PayloadHash)
			assert.Equal(t, tc.checksum, rec.Checksum)
			assert.Zero(t, rec.Chunks)
			assert.Equal(t, int64(len(body)), rec.BodyLen)
		})
	}
	t.Run("aws-chunked already", func(t *testing.T) {
		req := r.tunnelled(t, http.MethodPut, mrapHost, "/key", strings.NewReader("0\r\n\r\n"))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		n := len(r.endpoint.Records())
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, kivuli.ErrInvalidRequest)
		assert.ErrorContains(t, err, "SigV4a")
		assert.Len(t, r.endpoint.Records(), n, "nothing sent")
	})
}

// TestSigV4ADebugLog: the debug log of a SigV4a request names the
// algorithm and the region set, shows the canonical request (the token
// redacted) and the string to sign, whose hash line is the canonical
// request's, and the signature sent verifies over that string to sign
// under the key derived from the secret.
func TestSigV4ADebugLog(t *testing.T) {
	var logs bytes.Buffer
	var sent atomic.Pointer[http.Request]
	tr := &kivuli.Transport{
		Credentials: staticCreds,
		Logger:      slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			sent.Store(req)
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		}),
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+mrapHost+"/a/../key?b=2&a=1", nil)
	req.Header.Set("X-Amz-Meta-Note", "  two  spaces ")
	_, err := tr.RoundTrip(req)
	require.NoError(t, err)
	var entry struct {
		Algorithm, Region, Service string
		Canon                      string `json:"canonical_request"`
		STS                        string `json:"string_to_sign"`
	}
	require.NoError(t, json.Unmarshal(logs.Bytes(), &entry), logs.String())
	assert.Equal(t, "SigV4a", entry.Algorithm)
	assert.Equal(t, "*", entry.Region)
	assert.NotContains(t, logs.String(), "TOKEN")
	assert.Contains(t, entry.Canon, "\nx-amz-meta-note:two spaces\n")
	assert.Contains(t, entry.Canon, "\nx-amz-region-set:*\n")
	assert.Contains(t, entry.Canon, "\nx-amz-security-token:REDACTED\n")
	assert.True(t, strings.HasPrefix(entry.Canon, "GET\n/a/../key\na=1&b=2\n"), "S3 keeps dot segments: %q", entry.Canon)
	canon := strings.Replace(entry.Canon, "x-amz-security-token:REDACTED", "x-amz-security-token:TOKEN", 1)
	h := sha256.Sum256([]byte(canon))
	lines := strings.Split(entry.STS, "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "AWS4-ECDSA-P256-SHA256", lines[0])
	assert.True(t, strings.HasSuffix(lines[2], "/s3/aws4_request"))
	assert.Equal(t, hex.EncodeToString(h[:]), lines[3], "the string to sign is the logged canonical request's")
	pub, err := sigv4test.SigV4APublicKey("AKIDEXAMPLE", "SECRET")
	require.NoError(t, err)
	_, sig, _ := strings.Cut(sent.Load().Header.Get("Authorization"), "Signature=")
	der, err := hex.DecodeString(sig)
	require.NoError(t, err)
	stsSum := sha256.Sum256([]byte(entry.STS))
	assert.True(t, ecdsa.VerifyASN1(pub, stsSum[:], der), "the signature sent is over the logged string to sign")
}

// TestSigV4ARotation: a request signed after the secret changed, under
// the same access key ID, is signed with the new secret's key (smithy's
// signer alone would keep the key of the first secret it saw for the key
// ID); and after credentials rotate, requests keep verifying.
func TestSigV4ARotation(t *testing.T) {
	var secret atomic.Value
	secret.Store("first")
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAROTATES", SecretAccessKey: secret.Load().(string)}, nil
	})
	v := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
		return sigv4test.Credentials{AccessKeyID: id, SecretAccessKey: secret.Load().(string)}, id == "ASIAROTATES"
	}}
	srv := sigv4test.NewServer(v, nil)
	defer srv.Close()
	tr := &kivuli.Transport{Credentials: creds, AllowedHosts: []string{strings.TrimPrefix(srv.URL, "http://")}}
	for _, s := range []string{"first", "second", "second", "third"} {
		secret.Store(s)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Host = mrapHost
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		recs := srv.Records()
		require.NoError(t, recs[len(recs)-1].Err, "signed with the secret %q", s)
	}
}

// TestSigV4ARedirectsAndRetries: the redirect rule and retries hold for
// SigV4a as for SigV4: a redirect to the same Multi-Region Access Point is
// followed, signed afresh; one elsewhere is refused, nothing sent; a
// request retried after a 503 is signed afresh, with SigV4a, each time.
func TestSigV4ARedirectsAndRetries(t *testing.T) {
	var calls atomic.Int32
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/moved":
			http.Redirect(w, req, "http://"+mrapHost+"/key", http.StatusTemporaryRedirect)
		case req.URL.Path == "/away":
			http.Redirect(w, req, "http://bucket.s3.us-west-2.amazonaws.com/key", http.StatusMovedPermanently)
		case req.URL.Path == "/busy" && calls.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	tr := r.awsTransport("")
	tr.Region = ""
	tr.AllowedHosts = append(tr.AllowedHosts, mrapHost)
	client := kivuli.NewRetryingClient(tr, func(o *kivuli.RetryOptions) { o.MinWait, o.MaxWait = time.Millisecond, time.Millisecond })

	resp, err := client.Get("http://" + mrapHost + "/moved")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	recs := r.endpoint.Records()
	require.Len(t, recs, 2)
	for _, rec := range recs {
		require.NoError(t, rec.Err)
		assert.Equal(t, "AWS4-ECDSA-P256-SHA256", rec.Algorithm)
	}

	_, err = client.Get("http://" + mrapHost + "/away")
	assert.ErrorIs(t, err, kivuli.ErrHostNotAllowed)
	assert.Len(t, r.endpoint.Records(), 3, "the redirect elsewhere was not sent")

	resp, err = client.Get("http://" + mrapHost + "/busy")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	recs = r.endpoint.Records()
	require.Len(t, recs, 5)
	for _, rec := range recs[3:] {
		require.NoError(t, rec.Err)
		assert.Equal(t, "AWS4-ECDSA-P256-SHA256", rec.Algorithm)
		assert.Equal(t, "*", rec.Region)
	}
}

// FuzzSigV4ASignature: for any path, query, header value and body that a
// Transport signs with SigV4a (a Multi-Region Access Point, an
// EventBridge global endpoint, a SigV4 service forced to SigV4a), the
// independent checker rebuilds the canonical request from the bytes on
// the wire and verifies the ECDSA signature over it.
func FuzzSigV4ASignature(f *testing.F) {
	creds := aws.Credentials{AccessKeyID: "ASIAFUZZ", SecretAccessKey: "fuzz/secret+key", SessionToken: "tok/en+=="}
	w := &wire{v: &sigv4test.Verifier{Secrets: sigv4test.Static(sigv4test.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	})}}
	provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	hosts := []string{mrapHost, "abcde.veo.endpoint.events.amazonaws.com", "sts.eu-west-2.amazonaws.com"}
	forced := map[string]kivuli.Policy{"sts": {Algorithm: kivuli.AlgorithmSigV4A}}
	f.Add(uint8(0), "/report (final) café.txt", "list-type=2&prefix=a%2Fb", "v  a  l", "")
	f.Add(uint8(0), "/a%2Fb//./c", "", "", "body")
	f.Add(uint8(1), "/", "", " trimmed ", `{"Entries":[]}`)
	f.Add(uint8(2), "/a/../b/./c//", "Action=GetCallerIdentity&Version=2011-06-15", "", "")
	f.Fuzz(func(t *testing.T, which uint8, path, query, header, body string) {
		if !validHeaderValue(header) {
			t.Skip() // http.Transport refuses it before sending
		}
		host := hosts[int(which)%len(hosts)]
		u, err := url.Parse("https://" + host + path)
		if err != nil || u.Host != host || u.Opaque != "" || u.Fragment != "" {
			t.Skip()
		}
		u.RawQuery = query
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, err := http.NewRequest(http.MethodPost, u.String(), rb)
		if err != nil {
			t.Skip()
		}
		req.URL.RawQuery = query
		req.Header.Set("X-Amz-Meta-Custom", header)
		tr := &kivuli.Transport{Credentials: provider, Policies: forced, Base: w}
		w.rec = sigv4test.Record{}
		if _, err = tr.RoundTrip(req); err != nil {
			if errors.Is(err, kivuli.ErrInvalidRequest) || strings.Contains(err.Error(), "invalid") || strings.Contains(err.Error(), "malformed") {
				t.Skip() // refused with a clear error, or not sendable by net/http
			}
			t.Fatalf("RoundTrip: %v", err)
		}
		if w.rec.Err != nil || w.rec.Algorithm != "AWS4-ECDSA-P256-SHA256" {
			t.Fatalf("host %s path %q query %q header %q: %s %v", host, path, query, header, w.rec.Algorithm, w.rec.Err)
		}
	})
}

// TestInferScopeSigV4A: InferScope gives a host that takes SigV4a only its
// signing name and, as the region, the region set; S3 on Outposts its
// SigV4 scope.
func TestInferScopeSigV4A(t *testing.T) {
	for _, h := range sigv4aHosts {
		svc, region := kivuli.InferScope(h.host+":443", "/")
		assert.Equal(t, h.service+"/*", svc+"/"+region, h.host)
	}
	svc, region := kivuli.InferScope("reports-123456789012.op-01234567890123456.s3-outposts.eu-west-2.amazonaws.com", "/k")
	assert.Equal(t, "s3-outposts/eu-west-2", svc+"/"+region)
	svc, region = kivuli.InferScope("x.y.mrap.accesspoint.s3-global.amazonaws.com", "/")
	assert.Equal(t, "/", svc+"/"+region, "an alias is one label")
}
