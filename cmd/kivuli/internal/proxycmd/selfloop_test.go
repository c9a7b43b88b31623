package proxycmd

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// An upstream that is the proxy's own address is refused at start, under
// every name for it; a loop the start cannot see (through another proxy)
// is cut at the first request that comes back, with 508.
func TestProxySelfLoop(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	port := freePort(t)
	for _, c := range []struct{ listen, upstream string }{
		{"127.0.0.1:" + port, "http://127.0.0.1:" + port},
		{"127.0.0.1:" + port, "http://localhost:" + port},
		{"127.0.0.1:" + port, "http://127.0.0.1:" + port + "/base"},
		{"0.0.0.0:" + port, "http://127.0.0.1:" + port},
	} {
		t.Run(c.listen+" "+c.upstream, func(t *testing.T) {
			host := strings.TrimPrefix(c.upstream, "http://")
			host, _, _ = strings.Cut(host, "/")
			r := runCmd(t, "", "proxy", "--listen", c.listen, "--allow-remote", "--admin", "",
				"--imds-endpoint", f.IMDS.URL, "--upstream", c.upstream, "--allow-host", host,
				"--sign-host", "sts.eu-west-2.amazonaws.com")
			if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "this proxy's own address") {
				t.Errorf("exit %d, want %d:\n%s", r.Code, base.ExitUsage, r.Stderr)
			}
		})
	}

	// Two proxies in a ring: a -> b -> a.
	pa, pb := freePort(t), freePort(t)
	ring := func(listen, next string) []string {
		return []string{"proxy", "--listen", "127.0.0.1:" + listen, "--admin", "", "--imds-endpoint", f.IMDS.URL,
			"--upstream", "http://127.0.0.1:" + next, "--allow-host", "127.0.0.1:" + next,
			"--sign-host", "sts.eu-west-2.amazonaws.com", "--serve-host", "sts.eu-west-2.amazonaws.com"}
	}
	b := startRaw(t, f, ring(pb, pa))
	a := startRaw(t, f, ring(pa, pb))
	resp, body := wiretest.RawRequest(t, a.host(), "GET /?Action=GetCallerIdentity HTTP/1.1\nHost: localhost\n\n")
	if resp.StatusCode != http.StatusLoopDetected || !strings.Contains(body, "before") {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
	_ = b
}

// imdstestConfig is the emulator's default configuration.
func imdstestConfig() imdstest.Config { return imdstest.Config{} }

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
