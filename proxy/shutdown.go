package proxy

import (
	"context"
	"sync"
	"time"
)

// Shutdown waits for the requests that became WebSocket tunnels to end,
// which http.Server.Shutdown does not wait for (it forgets hijacked
// connections). Call it after Server.Shutdown has returned. When ctx ends
// first, it ends the tunnels, waits a second at most for their handlers to
// return, and returns ctx's error.
func (p *Proxy) Shutdown(ctx context.Context) error {
	select {
	case <-p.upgrades.idle():
		return nil
	case <-ctx.Done():
	}
	p.Close()
	return ctx.Err()
}

// Close ends the WebSocket tunnels at once, and waits a second at most for
// their handlers to return. Requests that are not tunnels are the
// http.Server's to end (Server.Close).
func (p *Proxy) Close() error {
	p.stopHard()
	select { // the tunnels end as their contexts do
	case <-p.upgrades.idle():
	case <-time.After(time.Second):
	}
	return nil
}

// tracker counts running handlers, for a drain to wait on.
type tracker struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n--; t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
}

// idle returns a channel closed when no handler runs.
func (t *tracker) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	return t.zero
}
