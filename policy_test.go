package kivuli_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransportPolicies sends every body kind under every built-in policy
// row, and a user-defined one, to the checking endpoint.
func TestTransportPolicies(t *testing.T) {
	r := newRig(t, nil)
	token := func() string { return r.creds.Token() }
	policies := kivuli.DefaultPolicies()
	policies["myservice"] = kivuli.Policy{Token: kivuli.TokenHeaderUnsigned}
	for _, tc := range []struct {
		service string
		token   sigv4test.TokenPlacement
		sha256  bool
	}{
		{"sts", sigv4test.HeaderSigned, false},
		{"es", sigv4test.HeaderSigned, true},
		{"aoss", sigv4test.HeaderSigned, true},
		{"s3", sigv4test.HeaderSigned, true},
		{"neptune-db", sigv4test.HeaderSigned, false},
		{"execute-api", sigv4test.HeaderSigned, false},
		{"myservice", sigv4test.HeaderUnsigned, false},
	} {
		// Each row runs on a new set of credentials: IMDS rotates them,
		// and the cache learns of it.
		r.imds.Rotate()
		r.creds.Invalidate()
		for _, kind := range bodyKinds() {
			t.Run(tc.service+"/"+kind.name, func(t *testing.T) {
				tr := r.transport(tc.service)
				tr.Policies = policies
				req, n := kind.make(t, http.MethodPost, r.endpoint.URL+"/index/_doc")
				resp, err := tr.RoundTrip(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				rec := r.lastRecord(t)
				require.NoError(t, rec.Err, string(body))
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, tc.service, rec.Service)
				assert.Equal(t, tc.token, rec.Token)
				assert.Equal(t, tc.sha256, rec.ContentSHA256)
				assert.Equal(t, int64(n), rec.BodyLen)
				// S3 streams a one-shot body of known length; one of unknown
				// length it buffers to learn the length, as it refuses
				// chunked uploads, and then signs its hash.
				streamed := tc.service == "s3" && kind.name == "one-shot with length"
				assert.False(t, rec.Chunked, "a body is never sent chunked")
				if streamed {
					assert.Equal(t, "UNSIGNED-PAYLOAD", rec.PayloadHash, "S3 streams one-shot bodies of known length")
				} else if n > 0 {
					assert.NotEqual(t, emptySHA256, rec.PayloadHash, "a non-empty body is never signed as empty")
				}
				assert.NotEmpty(t, token())
				assert.Equal(t, r.imds.Current().AccessKeyID, rec.AccessKeyID)
			})
		}
	}
	keys := map[string]bool{}
	for _, rec := range r.endpoint.Records() {
		keys[rec.AccessKeyID] = true
	}
	assert.Len(t, keys, 7, "one key per row, across rotations")
}

// TestTransportPresignedPolicies: the rows that sign in the query.
func TestTransportPresignedPolicies(t *testing.T) {
	r := newRig(t, nil)
	for _, tc := range []struct {
		service string
		header  http.Header
		token   sigv4test.TokenPlacement
	}{
		{"iotdevicegateway", nil, sigv4test.QueryUnsigned},
		{"kafka-cluster", nil, sigv4test.QuerySigned},
		{"transcribe", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, sigv4test.QuerySigned},
	} {
		t.Run(tc.service, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, r.endpoint.URL+"/mqtt", nil)
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := r.transport(tc.service).RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			rec := r.lastRecord(t)
			require.NoError(t, rec.Err)
			assert.True(t, rec.Presigned)
			assert.Equal(t, tc.token, rec.Token)
		})
	}
	t.Run("transcribe without WebSocket signs the header", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, r.endpoint.URL+"/", strings.NewReader("{}"))
		resp, err := r.transport("transcribe").RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		rec := r.lastRecord(t)
		require.NoError(t, rec.Err)
		assert.False(t, rec.Presigned)
	})
}

// TestPolicyLookup: a table's own row wins, then the built-in one, then
// the table's default row, then the built-in default; DefaultPolicies is a
// copy.
func TestPolicyLookup(t *testing.T) {
	p := kivuli.DefaultPolicies()
	p["s3"] = kivuli.Policy{Payload: kivuli.PayloadUnsigned}
	delete(p, "es")
	p[kivuli.DefaultService] = kivuli.Policy{Token: kivuli.TokenHeaderUnsigned}
	assert.Equal(t, kivuli.PayloadHashHeader, kivuli.DefaultPolicies()["s3"].Payload, "the built-in table is not changed")
	creds := sigv4test.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Static(creds)}, nil)
	defer endpoint.Close()
	for _, tc := range []struct {
		service string
		token   sigv4test.TokenPlacement
		payload string
	}{
		{"s3", sigv4test.HeaderSigned, "UNSIGNED-PAYLOAD"},   // the table's row
		{"es", sigv4test.HeaderSigned, emptySHA256},          // deleted: the built-in row
		{"myservice", sigv4test.HeaderUnsigned, emptySHA256}, // the table's default
		{"transcribe", sigv4test.QuerySigned, emptySHA256},   // built-in: its token in the query
	} {
		tr := &kivuli.Transport{Credentials: staticCreds, Service: tc.service, Region: "eu-west-2", Policies: p,
			AllowedHosts: []string{strings.TrimPrefix(endpoint.URL, "http://")}}
		req, _ := http.NewRequest(http.MethodGet, endpoint.URL+"/", nil)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		recs := endpoint.Records()
		rec := recs[len(recs)-1]
		require.NoError(t, rec.Err, tc.service)
		assert.Equal(t, tc.token, rec.Token, tc.service)
		assert.Equal(t, tc.payload, rec.PayloadHash, tc.service)
	}
}
