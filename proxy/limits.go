package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// What the handler bounds of each request: its turn (MaxRequests, with a
// queue of QueueTimeout: a burst is absorbed, and waiting costs no more
// than the connection already holds, then 503 with Retry-After), and the
// pace of its body (BodyIdleTimeout: a body that sends nothing for it is
// dropped with 408, its spool file closed and the space freed). Its body's
// bytes are body.go's budgets.

// budgets are what requests share: their turns, and the bytes their
// bodies hold in memory and spooled. A Proxy has its own; the routes of a
// Router share the Router's, which is what bounds the process.
type budgets struct {
	admit     *admission
	mem, disk *budget
}

func newBudgets(maxRequests int, queue time.Duration, memory, spool int64) *budgets {
	return &budgets{admit: newAdmission(maxRequests, queue), mem: &budget{limit: memory}, disk: &budget{limit: spool}}
}

// admission bounds the requests served at once.
type admission struct {
	slots  chan struct{}
	wait   time.Duration
	queued atomic.Int64
}

func newAdmission(max int, wait time.Duration) *admission {
	return &admission{slots: make(chan struct{}, max), wait: wait}
}

// enter takes a slot, waiting up to the queue timeout (first come, first
// served: blocked channel senders are woken in order). It reports false
// when none came free, or ctx ended first.
func (a *admission) enter(ctx context.Context) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	if a.wait <= 0 {
		return false
	}
	a.queued.Add(1)
	defer a.queued.Add(-1)
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (a *admission) leave() { <-a.slots }

// idleBody is a request body that must deliver bytes at least every idle:
// each read sets the connection's read deadline anew, so a slow upload
// that keeps moving goes on, and one that stalls fails with a timeout.
// At EOF the deadline is cleared: net/http then watches the connection
// for the client going away, and a deadline would end the request.
type idleBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	eof     atomic.Bool
	stalled atomic.Bool
	onStall func()
}

// errBodyStalled is the error of a read that timed out.
var errBodyStalled = errors.New("the client sent no body bytes within Config.BodyIdleTimeout")

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
		b.rc.SetReadDeadline(time.Time{})
	case err != nil && isTimeout(err):
		if b.stalled.CompareAndSwap(false, true) && b.onStall != nil {
			b.onStall()
		}
		return n, errBodyStalled
	}
	return n, err
}

// done bounds what net/http reads of an unfinished body after the
// handler (it discards up to 256 KiB of it, whatever the answer said):
// another idle period at most, in which a client still sending its body
// can finish it and read the answer.
func (b *idleBody) done() {
	if !b.eof.Load() {
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}
