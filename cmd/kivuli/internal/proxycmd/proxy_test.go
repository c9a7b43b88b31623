package proxycmd

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// proxyRun is a kivuli proxy running in this process, as runContext runs
// it, in front of a fixture's sigv4test upstream.
type proxyRun struct {
	url, admin string // http://host:port of the listener and the admin listener
	logs       *lineLog
	stop       context.CancelFunc
	done       chan int
}

// lineLog is the proxy's standard error: it keeps the lines and wakes the
// test when the listening line is written (slog writes a record in one
// Write).
type lineLog struct {
	testkit.SyncBuffer
	mu      sync.Mutex
	started chan struct{}
	once    sync.Once
	listen  string
	admin   string
	logged  int // access log lines
	waiters map[int][]chan struct{}
}

// requests returns a channel closed once n requests have been logged.
func (l *lineLog) requests(n int) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := make(chan struct{})
	if l.logged >= n {
		close(c)
		return c
	}
	if l.waiters == nil {
		l.waiters = map[int][]chan struct{}{}
	}
	l.waiters[n] = append(l.waiters[n], c)
	return c
}

var (
	listenRE = regexp.MustCompile(`listen=(\S+)`)
	adminRE  = regexp.MustCompile(`admin=(\S+)`)
)

func newLineLog() *lineLog { return &lineLog{started: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	s := string(p)
	// Kept before the waiters are woken: they read what was written.
	n, err := l.SyncBuffer.Write(p)
	l.mu.Lock()
	if m := adminRE.FindStringSubmatch(s); m != nil && strings.Contains(s, "kivuli proxy: admin") {
		l.admin = m[1]
	}
	if m := listenRE.FindStringSubmatch(s); m != nil && strings.Contains(s, "kivuli proxy: listening") {
		l.listen = m[1]
		l.once.Do(func() { close(l.started) })
	}
	// The access log comes in batches: a write may hold several lines.
	for range strings.Count(s, "msg=request") {
		l.logged++
		for _, c := range l.waiters[l.logged] {
			close(c)
		}
		delete(l.waiters, l.logged)
	}
	l.mu.Unlock()
	return n, err
}

// proxyArgs are the arguments that point a proxy at f: its IMDS for
// credentials, its upstream (listed, in clear on loopback), port 0 for
// both listeners.
func proxyArgs(f *wiretest.Fixture) []string {
	return []string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--imds-endpoint", f.IMDS.URL, "--upstream", "http://" + f.Host(), "--allow-host", f.Host()}
}

// startProxy runs kivuli proxy with proxyArgs(f) and args, and waits until
// it listens. It is stopped (as by SIGTERM) at the end of the test, and
// must then exit 0.
func startProxy(t *testing.T, f *wiretest.Fixture, args ...string) *proxyRun {
	t.Helper()
	return startRaw(t, f, append(proxyArgs(f), args...))
}

// startRaw runs kivuli with args, a proxy command line, as startProxy does.
func startRaw(t *testing.T, f *wiretest.Fixture, args []string) *proxyRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLineLog()
	p := &proxyRun{logs: logs, stop: cancel, done: make(chan int, 1)}
	// GOMEMLIMIT and GOGC set: a proxy in this process leaves its soft
	// memory limit and GC percent alone, which are the process's, and
	// parallel tests share (runContext sets GOMAXPROCS).
	env := append(os.Environ(), "GOMEMLIMIT=off", "GOGC="+cmp.Or(os.Getenv("GOGC"), "100"))
	go func() {
		p.done <- runContext(ctx, args, strings.NewReader(""), io.Discard, logs, env)
	}()
	select {
	case <-logs.started:
	case code := <-p.done:
		cancel()
		t.Fatalf("kivuli proxy exited %d before listening:\n%s", code, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("kivuli proxy did not start:\n%s", logs.String())
	}
	logs.mu.Lock()
	p.url, p.admin = logs.listen, logs.admin
	logs.mu.Unlock()
	t.Cleanup(func() {
		if code := p.shutdown(t); code != 0 {
			t.Errorf("kivuli proxy exited %d:\n%s", code, logs.String())
		}
		wiretest.NoSecrets(t, f, "the proxy's log", logs.String())
	})
	return p
}

// shutdown stops the proxy and returns its exit status.
func (p *proxyRun) shutdown(t *testing.T) int {
	t.Helper()
	p.stop()
	select {
	case code := <-p.done:
		p.done <- code // a second call gets it too
		return code
	case <-time.After(40 * time.Second):
		t.Fatal("kivuli proxy did not stop")
		return -1
	}
}

// host is the proxy's host:port.
func (p *proxyRun) host() string { return strings.TrimPrefix(p.url, "http://") }

// metricValue returns the value of one sample of the proxy's metrics
// (series: the name with its labels as written, e.g.
// `kivuli_proxy_requests_total{code="200",method="GET"}`), or -1.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// proxyProcess is kivuli proxy as a process of its own (the test binary
// run as kivuli), for signals and for its memory.
type proxyProcess struct {
	cmd        *exec.Cmd
	url, admin string
	lines      <-chan string
	stderr     *testkit.SyncBuffer
	logged     int // access log lines read by waitLine and waitRequests
}

func startProxyProcess(t *testing.T, f *wiretest.Fixture, args ...string) *proxyProcess {
	t.Helper()
	return startProxyProcessArgs(t, f, append(proxyArgs(f), args...))
}

// startProxyProcessArgs starts kivuli with args, a proxy command line, and
// env added to its environment.
func startProxyProcessArgs(t *testing.T, f *wiretest.Fixture, args []string, env ...string) *proxyProcess {
	t.Helper()
	c := testkit.Command(t, args...)
	c.Env = append(c.Env, env...)
	return startProxyCmd(t, c)
}

// startProxyCmd starts c, a kivuli proxy command, and waits until it
// listens.
func startProxyCmd(t *testing.T, c *exec.Cmd) *proxyProcess {
	t.Helper()
	pipe, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProcess{cmd: c, stderr: &testkit.SyncBuffer{}}
	all := testkit.Lines(t, bufio.NewScanner(pipe))
	ch := make(chan string, 64)
	p.lines = ch
	go func() {
		defer close(ch)
		for l := range all {
			p.stderr.Write([]byte(l + "\n"))
			ch <- l
		}
	}()
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	deadline := time.After(30 * time.Second)
	for p.url == "" {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("kivuli proxy ended before listening:\n%s", p.stderr.String())
			}
			if m := adminRE.FindStringSubmatch(l); m != nil && strings.Contains(l, "kivuli proxy: admin") {
				p.admin = m[1]
			}
			if m := listenRE.FindStringSubmatch(l); m != nil && strings.Contains(l, "kivuli proxy: listening") {
				p.url = m[1]
			}
		case <-deadline:
			t.Fatalf("kivuli proxy did not start:\n%s", p.stderr.String())
		}
	}
	return p
}

// waitLine waits for a line of the process's standard error holding s.
func (p *proxyProcess) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("kivuli proxy ended before logging %q:\n%s", s, p.stderr.String())
			}
			if strings.Contains(l, "msg=request") {
				p.logged++
			}
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("kivuli proxy did not log %q:\n%s", s, p.stderr.String())
		}
	}
}

// waitRequests waits until the process has logged n requests in all: a
// request is counted, in the log and the metrics, once its handler has
// returned, which may be after the client has read the whole answer.
func (p *proxyProcess) waitRequests(t *testing.T, n int) {
	t.Helper()
	for p.logged < n {
		p.waitLine(t, "msg=request")
	}
}

// waitRequests waits until the proxy has logged n requests in all, as
// proxyProcess.waitRequests does.
func (p *proxyRun) waitRequests(t *testing.T, n int) {
	t.Helper()
	select {
	case <-p.logs.requests(n):
	case <-time.After(wiretest.FailAfter):
		t.Fatalf("the proxy did not log %d requests:\n%s", n, p.logs.String())
	}
}

// proxyFixture is a fixture whose upstream records the headers and the
// Host each accepted request arrived with.
type proxyFixture struct {
	*wiretest.Fixture
	*wiretest.Recorder
}

func newProxyFixture(t *testing.T, next http.Handler) *proxyFixture {
	t.Helper()
	rec := wiretest.NewRecorder(next)
	return &proxyFixture{wiretest.NewFixture(t, imdstest.Config{}, rec), rec}
}
