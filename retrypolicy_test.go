package kivuli_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
)

// relayTimeout is a caller's transport that gives each request d of its
// own and wraps the errors of the transport under it, as relays and
// instrumenting transports do: a timeout reaches IMDS as an error that
// wraps context.DeadlineExceeded, and is no net.Error timeout itself.
type relayTimeout struct {
	next http.RoundTripper
	d    time.Duration
}

func (r relayTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), r.d)
	defer cancel() // the in-memory server's bodies are read already
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("imds relay: %w", err)
	}
	return resp, nil
}

// TestIMDSTokenTimeoutThroughARelay (issue 18, point 3): a token PUT that
// times out is a container's hop limit, whatever transport reports it:
// the call falls back to IMDSv1 after one PUT, as it does when the
// client's own timeout fires. The library's timeout test knew only
// net.Error timeouts, the proxy's also context.DeadlineExceeded; the
// second is right.
func TestIMDSTokenTimeoutThroughARelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := imdstest.NewHandler(imdstest.Config{})
		defer srv.Close()
		srv.Inject(imdstest.Fault{Target: imdstest.TokenPath, Hang: true})
		hc := &http.Client{Transport: relayTimeout{srv.RoundTripper(), 300 * time.Millisecond}}
		v, err := newIMDS(t, kivuli.WithHTTPClient(hc)).Retrieve(t.Context())
		require.NoError(t, err, "IMDSv1 for this call")
		assertCurrent(t, srv, v)
		assert.Equal(t, 1, srv.Stats().TokenPUTs, "a timed-out PUT is not retried")
	})
}
