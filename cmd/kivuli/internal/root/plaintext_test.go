package root

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// failAfter bounds a wait that only a broken command makes long.
const failAfter = 20 * time.Second

// TestPlaintextNeverThroughAProxy (issue 17, point 2): Go's
// ProxyFromEnvironment sends "app.localhost" and "LOCALHOST" through
// HTTP_PROXY, though they name loopback. kivuli curl and kivuli proxy,
// whose transports wrap the library's Base, refuse a request in clear that
// the proxy would read, and the proxy receives nothing. Processes of their
// own: the environment's proxy is read once per process.
func TestPlaintextNeverThroughAProxy(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	var seen atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		t.Logf("the HTTP proxy received %s %s", r.Method, r.URL)
	}))
	defer proxy.Close()
	_, port, _ := net.SplitHostPort(f.Host())
	const signHost = "search-logs-abc.eu-west-2.es.amazonaws.com"
	env := []string{"HTTP_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL, "NO_PROXY=", "no_proxy="}
	for _, host := range []string{"app.localhost", "LOCALHOST", "LocalHost", "search.internal"} {
		upstream := host + ":" + port
		t.Run("curl "+host, func(t *testing.T) {
			c := testkit.Command(t, "curl", "--imds-endpoint", f.IMDS.URL, "--allow-host", upstream, "-H", "Host: "+signHost, "http://"+upstream+"/logs/_search")
			c.Env = append(c.Env, env...)
			out, _ := c.CombinedOutput()
			if code := c.ProcessState.ExitCode(); code != base.ExitRefused || !strings.Contains(string(out), "in clear") {
				t.Errorf("exit %d, want %d and a refusal in clear: %s", code, base.ExitRefused, out)
			}
		})
		t.Run("proxy "+host, func(t *testing.T) {
			c := testkit.Command(t, "proxy", "--listen", "127.0.0.1:0", "--admin", "", "--imds-endpoint", f.IMDS.URL,
				"--upstream", "http://"+upstream, "--allow-host", upstream, "--sign-host", signHost)
			c.Env = append(c.Env, env...)
			// A proxy that starts would serve until stopped: give it the
			// time to refuse at start, then stop it.
			timer := time.AfterFunc(failAfter, func() { c.Process.Kill() })
			defer timer.Stop()
			out, _ := c.CombinedOutput()
			if code := c.ProcessState.ExitCode(); code != base.ExitRefused || !strings.Contains(string(out), "in clear") {
				t.Errorf("exit %d, want %d and a refusal in clear at start: %s", code, base.ExitRefused, out)
			}
		})
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the HTTP proxy received %d signed requests in clear", n)
	}
}
