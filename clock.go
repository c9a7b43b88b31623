package kivuli

import (
	"sync"
	"time"
)

// maxTimerStep is the longest a credential timer sleeps before it looks at
// the wall clock again.
const maxTimerStep = time.Minute

// wallNow is the wall clock the timers read; tests move it.
var wallNow = time.Now

// A wallTimer calls a function once the wall clock reaches a time.
//
// Go's timers run on the monotonic clock, which stands still while an EC2
// instance hibernates: a timer set for the refresh deadline hours ahead
// would fire late by as long as the instance slept, and the read path
// would serve expired credentials until then. So a wallTimer waits in
// steps of at most maxTimerStep, each checking the wall clock: after a
// resume it fires within a minute.
type wallTimer struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// afterWall returns a timer that calls f in its own goroutine once the
// wall clock reaches at.
func afterWall(at time.Time, f func()) *wallTimer {
	w := &wallTimer{}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armLocked(at.Round(0), f) // Round(0): compare wall clocks only
	return w
}

func (w *wallTimer) armLocked(at time.Time, f func()) {
	d := at.Sub(wallNow())
	if d > maxTimerStep {
		w.t = time.AfterFunc(maxTimerStep, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if !w.stopped {
				w.armLocked(at, f)
			}
		})
		return
	}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		fire := !w.stopped
		w.stopped = true
		w.mu.Unlock()
		if fire {
			f()
		}
	})
}

// Stop keeps the timer from firing if it has not yet; it may be called on
// a nil timer.
func (w *wallTimer) Stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}
