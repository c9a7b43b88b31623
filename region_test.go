package kivuli_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
)

// TestIMDSRegion: the instance's region comes from IMDS with the
// credentials' own client (its session token and retries), in one request
// once the token is there.
func TestIMDSRegion(t *testing.T) {
	ctx := context.Background()
	t.Run("IMDSv2 required", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{Mode: imdstest.TokenRequired, Region: "eu-west-2"})
		defer srv.Close()
		creds, err := kivuli.New(ctx, kivuli.WithEndpoint(srv.URL), kivuli.WithoutRefresh())
		require.NoError(t, err)
		defer creds.Close()
		before := srv.Stats()
		region, err := creds.Region(ctx)
		require.NoError(t, err)
		assert.Equal(t, "eu-west-2", region)
		after := srv.Stats()
		assert.Equal(t, 1, after.Total-before.Total, "one GET, with the token the credentials fetched")
		assert.Zero(t, after.Unauthorized)
	})
	t.Run("a transport signs for it", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{Region: "ap-south-1"})
		defer srv.Close()
		p, err := kivuli.NewIMDS(kivuli.WithEndpoint(srv.URL))
		require.NoError(t, err)
		region, err := p.Region(ctx)
		require.NoError(t, err)
		tr := &kivuli.Transport{Service: "es", Region: region, AllowedHosts: []string{"search.example.com"}}
		got, err := newScopeSigner(t, tr).scope("search.example.com", "/")
		require.NoError(t, err)
		assert.Equal(t, "es/ap-south-1", got)
	})
	t.Run("retried after a 503", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Status: http.StatusServiceUnavailable, Times: 1})
		p, err := kivuli.NewIMDS(kivuli.WithEndpoint(srv.URL))
		require.NoError(t, err)
		region, err := p.Region(ctx)
		require.NoError(t, err)
		assert.Equal(t, "us-east-1", region)
	})
	t.Run("not found is not a missing role", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Status: http.StatusNotFound})
		p, err := kivuli.NewIMDS(kivuli.WithEndpoint(srv.URL), kivuli.WithoutAPIToken())
		require.NoError(t, err)
		_, err = p.Region(ctx)
		var ierr *kivuli.IMDSError
		require.ErrorAs(t, err, &ierr)
		assert.Equal(t, http.StatusNotFound, ierr.StatusCode)
		assert.NotErrorIs(t, err, kivuli.ErrNoRole)
	})
	t.Run("a body that is no region", func(t *testing.T) {
		srv := imdstest.NewServer(imdstest.Config{Region: "eu-west-2\r\nX-Injected: 1"})
		defer srv.Close()
		p, err := kivuli.NewIMDS(kivuli.WithEndpoint(srv.URL))
		require.NoError(t, err)
		_, err = p.Region(ctx)
		require.ErrorIs(t, err, kivuli.ErrInvalidDocument)
	})
	t.Run("disabled", func(t *testing.T) {
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		p, err := kivuli.NewIMDS(kivuli.WithEndpoint("http://127.0.0.1:1"))
		require.NoError(t, err)
		_, err = p.Region(ctx)
		require.ErrorIs(t, err, kivuli.ErrIMDSDisabled)
	})
	t.Run("credentials from another source", func(t *testing.T) {
		creds, err := kivuli.New(ctx, kivuli.WithProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
		})), kivuli.WithoutRefresh())
		require.NoError(t, err)
		defer creds.Close()
		_, err = creds.Region(ctx)
		require.ErrorIs(t, err, kivuli.ErrNotIMDS)
	})
}

// TestIMDSRegionRetriesAsRetrieve (issue 18, point 3): Region is a request
// of the same provider as Retrieve, so it knows what Retrieve knows. Once
// IMDS has answered, a request that times out is a slow IMDS, not a
// missing one: Retrieve retries it, and so must Region.
func TestIMDSRegionRetriesAsRetrieve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{Region: "eu-west-2"})
		defer srv.Close()
		hc := &http.Client{Transport: srv.RoundTripper(), Timeout: 500 * time.Millisecond}
		p := newIMDS(t, kivuli.WithHTTPClient(hc))
		_, err := p.Retrieve(t.Context())
		require.NoError(t, err, "IMDS has answered")

		srv.Inject(imdstest.Fault{Delay: time.Second, Times: 1})
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err, "Retrieve retries a request that timed out")

		srv.Inject(imdstest.Fault{Delay: time.Second, Times: 1})
		before := srv.Stats().Total
		region, err := p.Region(t.Context())
		require.NoError(t, err, "Region retries it too")
		assert.Equal(t, "eu-west-2", region)
		assert.Equal(t, 2, srv.Stats().Total-before, "the timed-out GET and its retry")
	})
}
