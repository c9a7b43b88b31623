package proxycmd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// procsRecorder stands in for GOMAXPROCS: it records what the governor
// sets, and tells the test each time.
type procsRecorder struct {
	mu  sync.Mutex
	set []int
	ch  chan int
	// during, if set, runs inside the change to one processor, as a
	// request arriving at that moment.
	during func()
}

func newProcsRecorder() *procsRecorder { return &procsRecorder{ch: make(chan int, 16)} }

func (p *procsRecorder) setProcs(n int) {
	p.mu.Lock()
	p.set = append(p.set, n)
	during := p.during
	p.mu.Unlock()
	if n == 1 && during != nil {
		during()
	}
	p.ch <- n
}

// next waits for the governor's next change.
func (p *procsRecorder) next(t *testing.T) int {
	t.Helper()
	select {
	case n := <-p.ch:
		return n
	case <-time.After(wiretest.FailAfter):
		t.Fatal("the governor changed nothing")
		return -1
	}
}

// startGovernor starts a governor on a recorder and a tick channel of the
// test's, and waits for its first change, to one processor.
func startGovernor(t *testing.T) (*procsRecorder, chan time.Time, *procGovernor) {
	t.Helper()
	rec := newProcsRecorder()
	ticks := make(chan time.Time)
	g := newProcGovernor(ticks, rec.setProcs)
	if n := rec.next(t); n != 1 {
		t.Fatalf("set %d at start, want 1", n)
	}
	return rec, ticks, g
}

// none fails the test if the governor changed anything yet.
func (p *procsRecorder) none(t *testing.T, when string) {
	t.Helper()
	select {
	case n := <-p.ch:
		t.Fatalf("set %d %s", n, when)
	default:
	}
}

// settle proves the governor has handled everything sent before: a tick
// is taken only after what came before it.
func settle(ticks chan time.Time) { ticks <- time.Time{}; ticks <- time.Time{} }

// gate is a handler whose requests wait in it until released.
type gate struct {
	in      chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{in: make(chan struct{}, 8), release: make(chan struct{})} }

func (g *gate) ServeHTTP(http.ResponseWriter, *http.Request) {
	g.in <- struct{}{}
	<-g.release
}

// serveOne sends a request to h in a goroutine; done is closed once h
// has answered it.
func serveOne(h http.Handler) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		close(done)
	}()
	return done
}

// TestProcGovernor: one processor from the start and while requests come
// one at a time; all of them as soon as two overlap, and for a whole
// tick without overlap after; the default again when it stops.
func TestProcGovernor(t *testing.T) {
	rec, ticks, g := startGovernor(t)
	gt := newGate()
	h := g.wrap(gt)

	// One at a time: nothing changes, whatever the ticks.
	for range 3 {
		d := serveOne(h)
		<-gt.in
		gt.release <- struct{}{}
		<-d
		settle(ticks)
	}
	// Two at once: all the processors, without waiting for a tick.
	d1, d2 := serveOne(h), serveOne(h)
	<-gt.in
	<-gt.in
	if n := rec.next(t); n != 0 {
		t.Fatalf("set %d when two requests overlapped, want 0 (the default)", n)
	}
	gt.release <- struct{}{}
	gt.release <- struct{}{}
	<-d1
	<-d2
	// The tick that ends the window of the overlap keeps them; the next,
	// after a window of one request at a time, goes back to one.
	ticks <- time.Time{}
	handled(g)
	rec.none(t, "at the tick that ends the overlap's window, want it kept for another")
	d := serveOne(h)
	<-gt.in
	gt.release <- struct{}{}
	<-d
	ticks <- time.Time{}
	if n := rec.next(t); n != 1 {
		t.Fatalf("set %d after a window without overlap, want 1", n)
	}
	g.close()
	if n := rec.next(t); n != 0 {
		t.Fatalf("set %d when stopped, want 0 (the default)", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []int{1, 0, 1, 0}; !slices.Equal(rec.set, want) {
		t.Errorf("GOMAXPROCS set to %v, want %v", rec.set, want)
	}
}

// handled returns once the governor has taken what was sent to it
// before: the second send waits until it took the first. Only while on
// all processors, where a wake changes nothing.
func handled(g *procGovernor) { g.wake <- struct{}{}; g.wake <- struct{}{} }

// TestProcGovernorStaysWide: requests in flight together across ticks keep
// all the processors, and so does the window in which they end; only a
// whole window after goes back to one.
func TestProcGovernorStaysWide(t *testing.T) {
	rec, ticks, g := startGovernor(t)
	defer g.close()
	gt := newGate()
	h := g.wrap(gt)
	d1, d2 := serveOne(h), serveOne(h)
	<-gt.in
	<-gt.in
	if n := rec.next(t); n != 0 {
		t.Fatalf("set %d when two requests overlapped, want 0", n)
	}
	// Two long requests, held across windows.
	ticks <- time.Time{}
	ticks <- time.Time{}
	handled(g)
	gt.release <- struct{}{}
	gt.release <- struct{}{}
	<-d1
	<-d2
	ticks <- time.Time{} // the window they ended in
	handled(g)
	rec.none(t, "at the end of a window with two requests in flight")
	ticks <- time.Time{}
	if n := rec.next(t); n != 1 {
		t.Fatalf("set %d after a quiet window, want 1", n)
	}
}

// TestProcGovernorRace: requests that overlap while the governor goes to
// one processor bring it back at once, whichever of the two sides sees
// the other (TestProcGovernor covers the plain cases).
func TestProcGovernorRace(t *testing.T) {
	rec, ticks, g := startGovernor(t)
	defer g.close()
	// Widen first: two requests overlap.
	g.enter()
	g.enter()
	if n := rec.next(t); n != 0 {
		t.Fatalf("set %d, want 0", n)
	}
	g.inFlight.Add(-2)
	ticks <- time.Time{} // ends the overlap's window
	// The next tick narrows, and two requests arrive while it does: in
	// the first case they see it narrowing and wake the governor; in the
	// second they looked before it began, and only marked the overlap,
	// which the governor sees once narrowed.
	for _, during := range []func(){
		func() { g.enter(); g.enter() },
		func() {
			select { // no wake left over from before: this case is the other side's
			case <-g.wake:
			default:
			}
			g.inFlight.Add(2)
			g.overlapped.Store(true)
		},
	} {
		rec.mu.Lock()
		rec.during = during
		rec.mu.Unlock()
		ticks <- time.Time{}
		if n := rec.next(t); n != 1 {
			t.Fatalf("set %d, want 1", n)
		}
		if n := rec.next(t); n != 0 {
			t.Fatalf("set %d with two requests in flight, want 0 (the default)", n)
		}
		rec.mu.Lock()
		rec.during = nil
		rec.mu.Unlock()
		g.inFlight.Add(-2)
		handled(g)
		ticks <- time.Time{} // ends the overlap's window
	}
}

// TestProxyProcGovernor: kivuli proxy governs GOMAXPROCS unless the
// environment sets it, and leaves the runtime's default when it stops.
func TestProxyProcGovernor(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to govern")
	}
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, c := range []struct {
		env  []string
		want bool
	}{
		{[]string{"GOMEMLIMIT=off", "GOGC=100"}, true},
		{[]string{"GOMEMLIMIT=off", "GOGC=100", "GOMAXPROCS=2"}, false},
	} {
		runtime.GOMAXPROCS(2)
		f := &proxyFlags{App: &base.App{Stderr: io.Discard, Env: base.NewEnviron(c.env)}}
		_, done := f.startProcess()
		if got := f.procs != nil; got != c.want {
			t.Errorf("%v: governed %v, want %v", c.env, got, c.want)
		}
		if want := map[bool]int{true: 1, false: 2}[c.want]; runtime.GOMAXPROCS(0) != want {
			t.Errorf("%v: GOMAXPROCS %d while serving nothing, want %d", c.env, runtime.GOMAXPROCS(0), want)
		}
		done()
		if c.want && runtime.GOMAXPROCS(0) < 2 {
			t.Errorf("%v: GOMAXPROCS %d after, want the default", c.env, runtime.GOMAXPROCS(0))
		}
	}
}
