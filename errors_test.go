package kivuli_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorsSayKivuliOnce: errors made of others say "kivuli: " once, and
// both errors.Is and errors.As find what they wrap.
func TestErrorsSayKivuliOnce(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{NoRole: true})
	defer srv.Close()
	_, errNoRole := kivuli.New(context.Background(), kivuli.WithEndpoint(srv.URL))
	tr := &kivuli.Transport{Credentials: staticCreds, Base: &countingBase{}}
	req, _ := http.NewRequest(http.MethodGet, "https://evil.example/", nil)
	_, errHost := tr.RoundTrip(req)
	_, errExpiry := tr.Presign(req, -1)
	_, errConfig := kivuli.NewIMDS(kivuli.WithTokenTTL(0))

	for _, tc := range []struct {
		err  error
		kind error
	}{
		{errNoRole, kivuli.ErrNoRole},
		{errHost, kivuli.ErrHostNotAllowed},
		{errExpiry, kivuli.ErrHostNotAllowed},
		{errConfig, kivuli.ErrInvalidConfig},
	} {
		require.Error(t, tc.err)
		assert.Equal(t, 1, strings.Count(tc.err.Error(), "kivuli:"), tc.err.Error())
		assert.ErrorIs(t, tc.err, tc.kind)
		var ke *kivuli.Error
		assert.ErrorAs(t, tc.err, &ke)
	}
	var ie *kivuli.IMDSError
	assert.ErrorAs(t, errNoRole, &ie, "the remote answer's own type is found too")
	assert.Equal(t, http.StatusNotFound, ie.StatusCode)
}

// TestError: the message joins kind, reason and cause.
func TestError(t *testing.T) {
	cause := errors.New("kivuli: disk on fire")
	err := &kivuli.Error{Kind: kivuli.ErrInvalidRequest, Reason: "reading the body", Err: cause}
	assert.Equal(t, "kivuli: cannot sign the request: reading the body: disk on fire", err.Error())
	assert.ErrorIs(t, err, kivuli.ErrInvalidRequest)
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, "kivuli: just this", (&kivuli.Error{Reason: "just this"}).Error())
}
