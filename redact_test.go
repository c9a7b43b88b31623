package kivuli_test

import (
	"fmt"
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
	assert.Contains(t, ce.Message, "[REDACTED]")
}
