package main

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
)

// Every listener the command opens is on loopback unless --allow-remote
// says otherwise: the proxy's --admin as its --listen, refused before
// anything else is done.
func TestListenersLoopback(t *testing.T) {
	f := testkit.NewFixture(t, imdstest.Config{}, nil)
	for _, c := range []struct{ flag, addr string }{
		{"--admin", "0.0.0.0:0"},
		{"--admin", ":0"},
		{"--admin", "[::]:0"},
		{"--admin", "192.0.2.1:8081"},
		{"--listen", "0.0.0.0:0"},
	} {
		t.Run(c.flag+" "+c.addr, func(t *testing.T) {
			args := []string{"proxy", "--upstream", "https://sqs.eu-west-2.amazonaws.com", "--imds-endpoint", f.IMDS.URL,
				"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", c.flag, c.addr}
			// Bounded for a proxy that serves, as one that does not check
			// would: it returns at once otherwise.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var stderr testkit.SyncBuffer
			code := runContext(ctx, args, strings.NewReader(""), io.Discard, &stderr, os.Environ())
			if code != base.ExitUsage || !strings.Contains(stderr.String(), c.flag+" "+c.addr+" is not loopback") {
				t.Errorf("exit %d, want %d: %s", code, base.ExitUsage, stderr.String())
			}
		})
	}
	// With --allow-remote, both may be anywhere.
	p := startRaw(t, f, []string{"proxy", "--upstream", "http://" + f.Host(), "--allow-host", f.Host(), "--imds-endpoint", f.IMDS.URL,
		"--sign-host", "sqs.eu-west-2.amazonaws.com", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0", "--allow-remote"})
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(p.admin, "http://"))
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("admin on %s", p.admin)
	}
}
