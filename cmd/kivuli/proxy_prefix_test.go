package main

import (
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// An --upstream path with a dot segment is refused at start: the prefix
// clients are held under is the one written.
func TestProxyUpstreamDotSegments(t *testing.T) {
	for _, u := range []string{"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/../ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/./ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/%2e%2e/ws-1"} {
		// A loopback IMDS that is not there: nothing leaves this machine
		// if the flag is let through.
		r := runCmd(t, "", "proxy", "--upstream", u, "--imds-endpoint", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "")
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--upstream") || !strings.Contains(r.Stderr, "'..'") {
			t.Errorf("%s: exit %d: %s", u, r.Code, r.Stderr)
		}
	}
}
