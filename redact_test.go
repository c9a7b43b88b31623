package kivuli_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCredentialsErrorRedacts (issue 8, point 11): the Code and Message
// IMDS answers with are quoted without anything that looks like a key or a
// token, nor the values of the document's own secret fields.
func TestCredentialsErrorRedacts(t *testing.T) {
	const (
		keyID  = "ASIAQWERTYUIOPASDFGH"
		secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		token  = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+example=="
		own    = "hunter2hunter2"
	)
	msg := "User arn:aws:sts::123456789012:assumed-role/app/i-0abc is not authorized to perform sts:AssumeRole: key " +
		keyID + " secret " + secret + " token " + token + " own " + own + "\nforged log line"
	body := fmt.Sprintf(`{"Code":"AssumeRoleUnauthorizedAccess","Message":%q,"SecretAccessKey":%q,"Token":"tok%s"}`, msg, own, own)
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	srv.Inject(imdstest.Fault{Target: imdstest.CredentialsPath, Body: body})
	_, err := newIMDS(t, kivuli.WithEndpoint(srv.URL)).Retrieve(t.Context())
	var ce *kivuli.CredentialsError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "AssumeRoleUnauthorizedAccess", ce.Code)
	for _, s := range []string{keyID, secret, token, own, "\n"} {
		assert.NotContains(t, ce.Message, s)
		assert.NotContains(t, err.Error(), s)
	}
	assert.Contains(t, ce.Message, "arn:aws:sts::123456789012:assumed-role/app/i-0abc is not authorized to perform sts:AssumeRole")
	assert.Contains(t, ce.Message, "REDACTED")
}

// TestRedactQuery (issue 18, point 3): the one rule for queries shown or
// logged, by the signer's debug log, kivuli curl -v and the proxy's access
// log: signature and token hidden, the access key ID of the credential
// hidden and its scope kept, names in any case and escaping.
func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"q=1&b=2", "q=1&b=2"},
		{"X-Amz-Signature=abc&X-Amz-Security-Token=tok", "X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"x-amz-signature=abc&X-AMZ-SECURITY-TOKEN=tok", "x-amz-signature=REDACTED&X-AMZ-SECURITY-TOKEN=REDACTED"},
		{"q=1&X%2DAmz%2DSignature=abc", "q=1&X%2DAmz%2DSignature=REDACTED"},
		{"X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request", "X-Amz-Credential=REDACTED%2F20150830%2Fus-east-1%2Fiam%2Faws4_request"},
		{"X-Amz-Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request", "X-Amz-Credential=REDACTED/20150830/us-east-1/iam/aws4_request"},
		{"X-Amz-Credential=AKIDEXAMPLE", "X-Amz-Credential=REDACTED"},
		{"X-Amz-Signature&X-Amz-Date=20150830T123600Z", "X-Amz-Signature&X-Amz-Date=20150830T123600Z"},
		{"%zz=1&X-Amz-Signature=abc", "%zz=1&X-Amz-Signature=REDACTED"},
	} {
		assert.Equal(t, tc.want, kivuli.RedactQuery(tc.in), tc.in)
	}
}

// TestRedactHeader: an Authorization header keeps its scope and signed
// headers; its access key ID and signature are hidden, and so are the
// token and signature headers.
func TestRedactHeader(t *testing.T) {
	const auth = "AWS4-HMAC-SHA256 Credential=ASIAQWERTYUIOPASDFGH/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	assert.Equal(t, "AWS4-HMAC-SHA256 Credential=REDACTED/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=REDACTED",
		kivuli.RedactHeader("authorization", auth))
	assert.Equal(t, "REDACTED", kivuli.RedactHeader("X-Amz-Security-Token", "IQoJb3JpZ2luX2VjE"))
	assert.Equal(t, "REDACTED", kivuli.RedactHeader("x-amz-signature", "5d672d79"))
	assert.Equal(t, "application/json", kivuli.RedactHeader("Content-Type", "application/json"))
}

// FuzzRedactQuery: whatever the query, no parameter that AWS reads as
// X-Amz-Signature or X-Amz-Security-Token keeps its value, and none read
// as X-Amz-Credential keeps its access key ID.
func FuzzRedactQuery(f *testing.F) {
	f.Add("X-Amz-Signature=abc&X-Amz-Security-Token=tok&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request")
	f.Add("q=1&X%2DAmz%2DSignature=abc&x%2damz%2dcredential=AKID/x")
	f.Add("%zz&X-Amz-Signature&=&X-Amz-Credential=%2fAKID")
	f.Fuzz(func(t *testing.T, q string) {
		out := kivuli.RedactQuery(q)
		for kv := range strings.SplitSeq(out, "&") {
			k, v, ok := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if !ok || err != nil {
				continue
			}
			switch strings.ToLower(name) {
			case "x-amz-signature", "x-amz-security-token":
				if v != "REDACTED" {
					t.Fatalf("RedactQuery(%q) = %q keeps %s", q, out, kv)
				}
			case "x-amz-credential":
				if !strings.HasPrefix(v, "REDACTED") {
					t.Fatalf("RedactQuery(%q) = %q keeps the key ID of %s", q, out, kv)
				}
			}
		}
	})
}
