package proxycmd

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

// procGovernor runs the process on one processor (GOMAXPROCS 1) while it
// serves one request at a time, and on the runtime's default as soon as
// two overlap.
//
// A request through the proxy passes between goroutines several times:
// the client's connection, the upstream connection's writer and reader,
// net/http's background read. With more than one processor, each hand-off
// wakes another OS thread (a futex call on each side, and a thread that
// spins looking for work and sleeps again), so a lone client's request
// costs more CPU and waits longer than on one processor, where the
// goroutine handed to simply runs next on the same thread. Measured with
// benchmarks/internal/proxybench on 2 CPUs, GOMAXPROCS 1 against the
// default: small GETs from one client 1.20x the requests a second, p99
// 0.76x, CPU per request 0.70x; a 1 GiB upload and download 1.17x and
// 1.24x faster; but 16 and 64 clients 0.86x and 0.83x the requests a
// second, which is why it is only for requests that do not overlap.
//
// Going to one processor waits for a tick (window) in which no two
// requests were in flight at once, so a busy proxy does not flap; going
// back is asked for by the request that makes two, and takes effect once
// the governor's own goroutine runs and any collection in progress has
// finished marking (the change stops the world, which waits for that).
// A request that ends while another is in flight marks its window too: a
// tick between two overlapping uploads' ends is not a quiet one.
type procGovernor struct {
	inFlight   atomic.Int64
	overlapped atomic.Bool // two requests were in flight at once since the last tick
	single     atomic.Bool // on one processor, or going there
	wake       chan struct{}
	stop       chan struct{}
	stopped    chan struct{}
	// setProcs sets GOMAXPROCS: 1, or 0 for the runtime's default (which
	// follows the CPUs and the cgroup's quota as they change).
	setProcs func(n int)
}

// procsWindow is how long a proxy serves requests one at a time before it
// goes to one processor.
const procsWindow = time.Second

// newProcGovernor starts a governor on one processor, as a proxy that
// serves no request yet, which decides at each tick of ticks; stop it
// with close.
func newProcGovernor(ticks <-chan time.Time, setProcs func(n int)) *procGovernor {
	g := &procGovernor{wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}), setProcs: setProcs}
	g.single.Store(true)
	setProcs(1)
	go g.run(ticks)
	return g
}

// setRuntimeProcs is procGovernor.setProcs for the running process.
func setRuntimeProcs(n int) {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}

// wrap counts the requests h serves. A nil governor returns h.
func (g *procGovernor) wrap(h http.Handler) http.Handler {
	if g == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		h.ServeHTTP(w, r)
	})
}

// enter counts a request, and asks for all the processors if it is the
// second at once.
func (g *procGovernor) enter() {
	if g.inFlight.Add(1) < 2 {
		return
	}
	if !g.overlapped.Load() { // a load, not a store, on the hot path
		g.overlapped.Store(true)
	}
	if g.single.Load() {
		select {
		case g.wake <- struct{}{}:
		default: // asked already
		}
	}
}

// leave uncounts a request. One that ends while another is in flight
// overlapped it in this window, whenever the two began.
func (g *procGovernor) leave() {
	if g.inFlight.Add(-1) > 0 && !g.overlapped.Load() {
		g.overlapped.Store(true)
	}
}

func (g *procGovernor) run(ticks <-chan time.Time) {
	defer close(g.stopped)
	for {
		select {
		case <-g.stop:
			if g.single.Load() {
				g.setProcs(0)
			}
			return
		case <-g.wake:
			g.widen()
		case <-ticks:
			if g.single.Load() || g.overlapped.Swap(false) || g.inFlight.Load() > 1 {
				continue
			}
			// single before the change, then overlapped after it: a
			// request that makes two either sees single and wakes us, or
			// set overlapped before we look here.
			g.single.Store(true)
			g.setProcs(1)
			if g.overlapped.Load() {
				g.widen()
			}
		}
	}
}

// widen goes back to the runtime's default, and stays there for a whole
// window at least.
func (g *procGovernor) widen() {
	if !g.single.Load() {
		return
	}
	g.setProcs(0)
	g.overlapped.Store(true)
	g.single.Store(false)
}

// close stops the governor and leaves the process on the runtime's
// default. A nil governor does nothing.
func (g *procGovernor) close() {
	if g == nil {
		return
	}
	close(g.stop)
	<-g.stopped
}
