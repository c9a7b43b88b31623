package kivuli_test

import (
	"context"
	"errors"
	"fmt"
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

func TestWithoutRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Lifetime: time.Hour})
		defer srv.Close()
		c := newCredentials(t, srv, kivuli.WithoutRefresh())
		first, _ := c.Retrieve(t.Context())
		time.Sleep(2 * time.Hour)
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err)
		assert.Equal(t, first, v)
		assert.Equal(t, 1, srv.Stats().CredentialGETs)
	})
}

func TestWithProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var fail atomic.Bool
		p := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
			n := calls.Add(1)
			if fail.Load() {
				return aws.Credentials{}, errors.New("source down")
			}
			return aws.Credentials{
				AccessKeyID: fmt.Sprintf("AKID%d", n), SecretAccessKey: "secret",
				CanExpire: true, Expires: time.Now().Add(30 * time.Minute),
			}, nil
		})
		c, err := kivuli.New(t.Context(), kivuli.WithProvider(p))
		require.NoError(t, err)
		defer c.Close()
		for range 1000 {
			_, err := c.Retrieve(t.Context())
			require.NoError(t, err)
		}
		assert.Equal(t, int32(1), calls.Load(), "cached")
		time.Sleep(29 * time.Minute)
		synctest.Wait()
		assert.Equal(t, "AKID2", c.AccessKeyID(), "refreshed in the background")

		fail.Store(true)
		c.Invalidate()
		v, err := c.Retrieve(t.Context())
		require.NoError(t, err, "the last good credentials keep serving")
		assert.Equal(t, "AKID2", v.AccessKeyID)
	})
	t.Run("first fetch fails", func(t *testing.T) {
		_, err := kivuli.New(t.Context(), kivuli.WithProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("source down")
		})))
		require.ErrorContains(t, err, "source down")
	})
	t.Run("empty credentials", func(t *testing.T) {
		_, err := kivuli.New(t.Context(), kivuli.WithProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, nil
		})))
		require.Error(t, err)
	})
}
