package kivuli_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvironment(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithEnvironment())
		check := func() {
			t.Helper()
			cur := srv.Current()
			assert.Equal(t, cur.AccessKeyID, os.Getenv("AWS_ACCESS_KEY_ID"))
			assert.Equal(t, cur.SecretAccessKey, os.Getenv("AWS_SECRET_ACCESS_KEY"))
			assert.Equal(t, cur.SessionToken, os.Getenv("AWS_SESSION_TOKEN"))
		}
		check()
		first := os.Getenv("AWS_ACCESS_KEY_ID")
		// No Retrieve: the refresh, and the export, happen on their own.
		time.Sleep(time.Until(c.Expires().Add(-kivuli.RefreshDeadline)))
		synctest.Wait()
		assert.NotEqual(t, first, os.Getenv("AWS_ACCESS_KEY_ID"))
		check()
	})
}

// TestEnvironmentAllOrNothing (issue 9, defect 5): a refreshed set that the
// environment cannot hold (a NUL in the secret) is refused as a whole: the
// variables keep the previous set, never its key ID with another secret.
func TestEnvironmentAllOrNothing(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	var calls atomic.Int32
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n := calls.Add(1)
		v := aws.Credentials{AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: fmt.Sprintf("secret%d", n),
			SessionToken: fmt.Sprintf("token%d", n), CanExpire: true, Expires: time.Now().Add(time.Hour)}
		if n == 2 {
			v.SecretAccessKey = "sec\x00ret"
		}
		return v, nil
	})
	c, err := kivuli.New(t.Context(), kivuli.WithProvider(p), kivuli.WithEnvironment())
	require.NoError(t, err)
	defer c.Close()
	c.Invalidate()
	v, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "AKID1", v.AccessKeyID, "the set with a NUL is refused")
	assert.Equal(t, int32(2), calls.Load())
	assert.Equal(t, []string{"AKID1", "secret1", "token1"},
		[]string{os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")})
}

// TestEnvironmentUnsetOnClose (issue 9, defect 5): Close unsets the
// variables it exported, if they still hold its values: left behind they
// would expire within hours, where without them a child process's SDK
// asks IMDS itself. Values someone else set since are left alone.
func TestEnvironmentUnsetOnClose(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv, kivuli.WithEnvironment())
	assert.Equal(t, srv.Current().AccessKeyID, os.Getenv("AWS_ACCESS_KEY_ID"))
	require.NoError(t, c.Close())
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		_, set := os.LookupEnv(k)
		assert.False(t, set, "%s is unset by Close", k)
	}

	c = newCredentials(t, srv, kivuli.WithEnvironment())
	os.Setenv("AWS_ACCESS_KEY_ID", "AKIDSOMEONEELSE")
	require.NoError(t, c.Close())
	assert.Equal(t, "AKIDSOMEONEELSE", os.Getenv("AWS_ACCESS_KEY_ID"), "someone else's value is left alone")
	assert.Equal(t, srv.Current().SecretAccessKey, os.Getenv("AWS_SECRET_ACCESS_KEY"))
}
