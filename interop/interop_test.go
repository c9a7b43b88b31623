package interop

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEC2RoleCredsReadsEmulator: the SDK's own IMDS credential provider
// reads credentials from imdstest, so the emulator speaks the protocol the
// SDK expects, IMDSv2 token included.
func TestEC2RoleCredsReadsEmulator(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired})
	defer srv.Close()
	p := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{Endpoint: srv.URL})
	})
	v, err := p.Retrieve(context.Background())
	require.NoError(t, err)
	cur := srv.Current()
	assert.Equal(t, cur.AccessKeyID, v.AccessKeyID)
	assert.Equal(t, cur.SecretAccessKey, v.SecretAccessKey)
	assert.Equal(t, cur.SessionToken, v.SessionToken)
	st := srv.Stats()
	assert.Equal(t, 1, st.TokenPUTs)
	assert.Zero(t, st.V1Requests)
	assert.Zero(t, st.Unauthorized)
}

const callerIdentity = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/kivuli-test-role/i-0123456789abcdef0</Arn>
    <UserId>AROAEXAMPLEEXAMPLE:i-0123456789abcdef0</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`

// TestSDKClientWithKivuliCredentials: aws.Config{Credentials: creds} works
// for an aws-sdk-go-v2 service client; the SDK's signature, made with the
// emulator's credentials, is checked by sigv4test.
func TestSDKClientWithKivuliCredentials(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(srv.URL))
	require.NoError(t, err)
	defer creds.Close()

	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(srv.Lookup)}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, callerIdentity)
	}))
	defer endpoint.Close()

	cfg := aws.Config{Region: "eu-west-2", Credentials: creds}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint.URL) })
	out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "123456789012", aws.ToString(out.Account))

	recs := endpoint.Records()
	require.Len(t, recs, 1)
	require.NoError(t, recs[0].Err)
	assert.Equal(t, "sts", recs[0].Service)
	assert.Equal(t, srv.Current().AccessKeyID, recs[0].AccessKeyID)
	assert.Equal(t, sigv4test.HeaderSigned, recs[0].Token)
}
