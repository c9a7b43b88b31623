package kivuli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The official SigV4 test vectors (testdata/sigv4, see its README) go
// through sign(), the layer Transport uses, with each case's options
// expressed as a Policy row.

const (
	vectorKey    = "AKIDEXAMPLE"
	vectorSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var vectorTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// vectorRequest parses a raw request (request.txt, .req): the request line
// keeps the path as sent (spaces and UTF-8 included, as URL.Opaque), header
// continuation lines are unfolded into one value.
func vectorRequest(t *testing.T, raw []byte) *http.Request {
	t.Helper()
	head, body, _ := bytes.Cut(raw, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	line := lines[0]
	method, rest, _ := strings.Cut(line, " ")
	target := rest[:strings.LastIndex(rest, " ")]
	path, query, _ := strings.Cut(target, "?")
	u := &url.URL{Scheme: "https", Opaque: path, RawQuery: query}
	if strings.HasPrefix(path, "//") {
		// An opaque "//x" would read as an authority, for net/http too.
		u.Opaque, u.Path = "", path
	}
	r := &http.Request{Method: method, URL: u, Header: http.Header{}, Body: http.NoBody}
	var last string
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			vs := r.Header[last]
			vs[len(vs)-1] += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		require.True(t, ok, "header line %q", l)
		last = http.CanonicalHeaderKey(k)
		switch last {
		case "Host":
			r.Host, r.URL.Host = v, v
		case "Content-Length":
			// Signed by the SDK from ContentLength when the request has one;
			// the classic suite's form POSTs have none.
			r.ContentLength = int64(len(body))
		default:
			r.Header[last] = append(r.Header[last], v)
		}
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r
}

type vectorContext struct {
	Credentials struct {
		Token string `json:"token"`
	} `json:"credentials"`
	Region           string `json:"region"`
	Service          string `json:"service"`
	Expiration       int    `json:"expiration_in_seconds"`
	Normalize        bool   `json:"normalize"`
	SignBody         bool   `json:"sign_body"`
	OmitSessionToken bool   `json:"omit_session_token"`
}

// signVector signs r as the policy says and returns the debug log's
// canonical request and string to sign.
func signVector(t *testing.T, r *http.Request, token, service, region string, pol Policy, presign bool, expires time.Duration) (canon, sts string) {
	t.Helper()
	return signVectorWith(t, r, token, service, region, pol, presign, expires, nil)
}

// signVectorWith is signVector with the signing changed by with first.
func signVectorWith(t *testing.T, r *http.Request, token, service, region string, pol Policy, presign bool, expires time.Duration, with func(*signing)) (canon, sts string) {
	t.Helper()
	var log bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	hash := sha256Hex(body)
	if presign && pol.Payload == PayloadUnsigned {
		hash = unsignedPayload
	}
	sg := &signing{
		creds:       aws.Credentials{AccessKeyID: vectorKey, SecretAccessKey: vectorSecret, SessionToken: token},
		service:     service,
		region:      region,
		policy:      pol,
		payloadHash: hash,
		time:        vectorTime,
		presign:     presign,
		expires:     int64(expires / time.Second),
		logger:      logger,
	}
	if with != nil {
		with(sg)
	}
	require.NoError(t, sign(context.Background(), r, sg))
	var entry struct {
		Canon string `json:"canonical_request"`
		STS   string `json:"string_to_sign"`
	}
	require.NoError(t, json.Unmarshal(log.Bytes(), &entry), log.String())
	return entry.Canon, entry.STS
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// redact replaces the token as the debug log does.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, token, "REDACTED"), queryEscape(token), "REDACTED")
}

func TestConformanceV4(t *testing.T) {
	dirs, err := filepath.Glob("testdata/sigv4/v4/*")
	require.NoError(t, err)
	require.Len(t, dirs, 38)
	passed := map[string]int{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		var ctx vectorContext
		require.NoError(t, json.Unmarshal([]byte(read(t, filepath.Join(dir, "context.json"))), &ctx))
		pol := Policy{KeepDotSegments: !ctx.Normalize}
		if ctx.SignBody {
			pol.Payload = PayloadHashHeader
		}
		if ctx.OmitSessionToken {
			pol.Token = TokenHeaderUnsigned
		}
		token := ctx.Credentials.Token
		raw := []byte(read(t, filepath.Join(dir, "request.txt")))

		t.Run(name+"/header", func(t *testing.T) {
			r := vectorRequest(t, raw)
			canon, sts := signVector(t, r, token, ctx.Service, ctx.Region, pol, false, 0)
			want := read(t, filepath.Join(dir, "header-canonical-request.txt"))
			assert.Equal(t, redact(want, token), canon, "canonical request")
			assert.Equal(t, read(t, filepath.Join(dir, "header-string-to-sign.txt")), sts, "string to sign")
			signed := vectorRequest(t, []byte(read(t, filepath.Join(dir, "header-signed-request.txt"))))
			assert.Equal(t, signed.Header.Get("Authorization"), r.Header.Get("Authorization"))
			assert.Equal(t, signed.Header.Get("X-Amz-Security-Token"), r.Header.Get("X-Amz-Security-Token"))
			if !t.Failed() {
				passed["header"]++
			}
		})
		t.Run(name+"/query", func(t *testing.T) {
			r := vectorRequest(t, raw)
			canon, sts := signVector(t, r, token, ctx.Service, ctx.Region, pol, true, time.Duration(ctx.Expiration)*time.Second)
			want := read(t, filepath.Join(dir, "query-canonical-request.txt"))
			assert.Equal(t, redact(want, token), canon, "canonical request")
			assert.Equal(t, read(t, filepath.Join(dir, "query-string-to-sign.txt")), sts, "string to sign")
			q, err := url.ParseQuery(r.URL.RawQuery)
			require.NoError(t, err)
			assert.Equal(t, read(t, filepath.Join(dir, "query-signature.txt")), q.Get("X-Amz-Signature"))
			assert.Equal(t, token, q.Get("X-Amz-Security-Token"))
			if ctx.OmitSessionToken {
				// Appended after the signature, outside it.
				assert.True(t, strings.HasSuffix(r.URL.RawQuery, "&X-Amz-Security-Token="+queryEscape(token)), r.URL.RawQuery)
			}
			if !t.Failed() {
				passed["query"]++
			}
		})
	}
	t.Logf("testdata/sigv4/v4: header form %d/%d, query form %d/%d", passed["header"], len(dirs), passed["query"], len(dirs))
}

func TestConformanceAWS4TestSuite(t *testing.T) {
	var cases []string
	require.NoError(t, filepath.WalkDir("testdata/sigv4/aws4_testsuite", func(path string, d os.DirEntry, err error) error {
		if strings.HasSuffix(path, ".req") {
			cases = append(cases, strings.TrimSuffix(path, ".req"))
		}
		return err
	}))
	require.Len(t, cases, 34)
	readme := strings.TrimSpace(read(t, "testdata/sigv4/aws4_testsuite/post-sts-token/readme.txt"))
	stsToken := readme[strings.LastIndex(readme, "\n")+1:]
	passed := 0
	for _, base := range cases {
		name := filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			r := vectorRequest(t, []byte(read(t, base+".req")))
			creq := read(t, base+".creq")
			var token string
			var pol Policy
			switch {
			case strings.HasPrefix(name, "post-sts-header-"):
				token = stsToken
				if name == "post-sts-header-after" {
					pol.Token = TokenHeaderUnsigned
				}
			case strings.Contains(creq, "x-amz-security-token:"):
				_, after, _ := strings.Cut(creq, "x-amz-security-token:")
				token, _, _ = strings.Cut(after, "\n")
			}
			canon, sts := signVector(t, r, token, "service", "us-east-1", pol, false, 0)
			assert.Equal(t, redact(creq, token), canon, "canonical request")
			assert.Equal(t, read(t, base+".sts"), sts, "string to sign")
			assert.Equal(t, read(t, base+".authz"), r.Header.Get("Authorization"))
			if !t.Failed() {
				passed++
			}
		})
	}
	t.Logf("testdata/sigv4/aws4_testsuite: %d/%d", passed, len(cases))
}
