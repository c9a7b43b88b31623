package kivuli_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSigningKeyPerSecret: a signing key is derived from the secret the
// request is signed with. The SDK signer caches derived keys by access key
// ID and day, so a shared one let credentials holding a known access key ID
// and a wrong secret sign as the key's owner once the owner had signed in
// the same process, and made the owner's requests fail when they signed
// first.
func TestSigningKeyPerSecret(t *testing.T) {
	owner := sigv4test.Credentials{AccessKeyID: "AKIAOWNER00000000001", SecretAccessKey: "owner-secret"}
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Static(owner)}, nil)
	defer endpoint.Close()
	transport := func(secret, region string) *kivuli.Transport {
		return &kivuli.Transport{Service: "es", Region: region, AllowedHosts: []string{strings.TrimPrefix(endpoint.URL, "http://")},
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: owner.AccessKeyID, SecretAccessKey: secret}, nil
			})}
	}
	status := func(tr *kivuli.Transport) int {
		req, _ := http.NewRequest(http.MethodGet, endpoint.URL+"/", nil)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status(transport(owner.SecretAccessKey, "eu-west-2")))
	assert.Equal(t, http.StatusForbidden, status(transport("a guess", "eu-west-2")), "the owner's key is not reused for another secret")
	assert.Equal(t, http.StatusForbidden, status(transport("a guess", "eu-west-1")))
	assert.Equal(t, http.StatusOK, status(transport(owner.SecretAccessKey, "eu-west-1")), "nor another secret's for the owner")
}
