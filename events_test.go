package kivuli_test

import (
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubscribers(t *testing.T) {
	srv := imdstest.NewServer(imdstest.Config{})
	defer srv.Close()
	c := newCredentials(t, srv)
	slow, cancelSlow := c.Subscribe()
	_, cancelAbsent := c.Subscribe()
	defer cancelAbsent()

	const refreshes = 20
	for range refreshes {
		srv.Rotate() // a new set each time: forced refreshes that return the same one are rate-limited
		c.Invalidate()
		_, err := c.Retrieve(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, refreshes+1, srv.Stats().CredentialGETs, "full channels never hold a refresh back")
	for range 16 {
		ev := <-slow
		assert.Equal(t, kivuli.TriggerOnDemand, ev.Trigger)
		assert.Zero(t, ev.Missed)
	}
	srv.Rotate()
	c.Invalidate()
	_, err := c.Retrieve(t.Context())
	require.NoError(t, err)
	ev := <-slow
	assert.Equal(t, refreshes-16, ev.Missed, "dropped events are counted")
	cancelSlow()
	_, open := <-slow
	assert.False(t, open, "cancel closes the channel")

	late, _ := c.Subscribe()
	require.NoError(t, c.Close())
	_, open = <-late
	assert.False(t, open, "Close closes the channels")
	_, open = <-func() <-chan kivuli.RefreshEvent { ch, _ := c.Subscribe(); return ch }()
	assert.False(t, open, "Subscribe after Close gets a closed channel")
}
