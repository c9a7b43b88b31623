package proxycmd

import (
	"io"
	"runtime/debug"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// gcPercentNow reads the process's GC percent.
func gcPercentNow() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestProxyGCPercent: kivuli proxy collects its small heap at GOGC 400
// unless the environment's GOGC says otherwise, and puts the process's
// percent back when it stops. (GOMEMLIMIT=off keeps the soft memory limit
// out of it, and GOMAXPROCS the processor governor; the other tests'
// proxies set GOGC, so leave the percent alone.)
func TestProxyGCPercent(t *testing.T) {
	before := gcPercentNow()
	for _, c := range []struct {
		env  []string
		want int
	}{
		{[]string{"GOMEMLIMIT=off", "GOMAXPROCS=2"}, gcPercent},
		{[]string{"GOMEMLIMIT=off", "GOMAXPROCS=2", "GOGC=50"}, before},
		{[]string{"GOMEMLIMIT=off", "GOMAXPROCS=2", "GOGC=off"}, before},
	} {
		f := &proxyFlags{App: &base.App{Stderr: io.Discard, Env: base.NewEnviron(c.env)}}
		_, done := f.startProcess()
		if got := gcPercentNow(); got != c.want {
			t.Errorf("%v: GC percent %d while serving, want %d", c.env, got, c.want)
		}
		done()
		if got := gcPercentNow(); got != before {
			t.Errorf("%v: GC percent %d after, want %d back", c.env, got, before)
		}
	}
}
