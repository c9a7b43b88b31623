package kivuli

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestWallTimerAfterHibernation: while an instance hibernates the monotonic
// clock stands still and the wall clock does not; a timer due during the
// sleep fires within maxTimerStep of the resume, not hours later.
func TestWallTimerAfterHibernation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slept atomic.Int64 // how far the wall clock is ahead of the bubble's
		wallNow = func() time.Time { return time.Now().Add(time.Duration(slept.Load())) }
		defer func() { wallNow = time.Now }()

		var fired atomic.Bool
		w := afterWall(time.Now().Add(2*time.Hour), func() { fired.Store(true) })
		defer w.Stop()

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		assert.False(t, fired.Load(), "not due yet")

		slept.Store(int64(3 * time.Hour)) // hibernated for three hours
		time.Sleep(time.Minute)           // maxTimerStep
		synctest.Wait()
		assert.True(t, fired.Load(), "due during the sleep: fires within a step of the resume")
	})
}

// TestWallTimer: without a jump it fires at its time, not a step later,
// and once; Stop keeps it from firing.
func TestWallTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		var at atomic.Int64
		w := afterWall(start.Add(90*time.Minute+time.Second), func() {
			calls.Add(1)
			at.Store(int64(time.Since(start)))
		})
		defer w.Stop()
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		assert.Equal(t, int32(1), calls.Load())
		assert.Equal(t, 90*time.Minute+time.Second, time.Duration(at.Load()))

		stopped := afterWall(time.Now().Add(time.Hour), func() { calls.Add(1) })
		time.Sleep(30 * time.Minute)
		stopped.Stop()
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, int32(1), calls.Load(), "a stopped timer does not fire")
	})
}
