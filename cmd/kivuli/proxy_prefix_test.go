package main

import (
	"net/http"
	"strings"
	"testing"
)

// startPrefixed runs a proxy whose --upstream is f's endpoint with the
// path prefix, signing for signHost.
func startPrefixed(t *testing.T, f *fixture, prefix, signHost string, args ...string) *proxyRun {
	t.Helper()
	return startRaw(t, f, append([]string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--imds-endpoint", f.imds.URL, "--upstream", "http://" + f.host() + prefix,
		"--allow-host", f.host(), "--sign-host", signHost}, args...))
}

// An --upstream with a path holds the client under it (issue 17): a
// request whose path climbs above it, in any reading a server on the way
// may make, gets 400 and the upstream receives nothing; paths that stay
// under it, the prefix itself among them, go where they say, with the
// upstream given with and without a trailing slash. For S3, which keeps
// dot segments as parts of the key, the same: a reader on the way that
// removes them would leave the bucket.
func TestProxyPathPrefix(t *testing.T) {
	escapes := []string{
		"/../ws-2/api/v1/query",
		"//../../ws-3/api/v1/query",
		"/api/v1/../../../ws-2/api/v1/query",
		"/./../ws-2/api/v1/query",
		"/..",
		"/%2e%2e/ws-2/api/v1/query",
		"/.%2E/ws-2/api/v1/query",
		"/api%2f..%2f..%2fws-2/api/v1/query",
		"/api%2F..%2F../ws-2/api/v1/query",
		"/a%2Fb/../../ws-2/api/v1/query",
		"/..;/ws-2/api/v1/query",
		"/..%3b/ws-2/api/v1/query",
		"/..%5cws-2/api/v1/query",
		"/..%5Cws-2/api/v1/query",
		"/api/%2e%2e/%2e%2e/ws-2/api/v1/query",
	}
	aps := []string{"--service", "aps", "--region", "us-east-1"}
	for _, c := range []struct {
		name, upstream, signHost string
		args                     []string
		escapes                  []string
		stays                    map[string]string // client path: the path the upstream receives
	}{
		{"aps", "/workspaces/ws-1", "aps-workspaces.us-east-1.amazonaws.com", aps, escapes, map[string]string{
			"/api/v1/query":                "/workspaces/ws-1/api/v1/query",
			"/":                            "/workspaces/ws-1/",
			"/api/./v1/../v1/query?q=up":   "/workspaces/ws-1/api/v1/query?q=up",
			"/a/b/../../api/v1/query":      "/workspaces/ws-1/api/v1/query",
			"/api/v1/label/..job/values":   "/workspaces/ws-1/api/v1/label/..job/values",
			"/api/v1/label/job%2Fx/values": "/workspaces/ws-1/api/v1/label/job%2Fx/values",
		}},
		{"aps, trailing slash", "/workspaces/ws-1/", "aps-workspaces.us-east-1.amazonaws.com", aps, escapes[:4], map[string]string{
			"/api/v1/query": "/workspaces/ws-1/api/v1/query",
			"/":             "/workspaces/ws-1/",
		}},
		{"s3, path style", "/bucket-a", "s3.eu-west-2.amazonaws.com", nil, []string{
			"/../bucket-b/key",
			"/dir/../../bucket-b/key",
			"/%2e%2e/bucket-b/key",
			"/..%2fbucket-b/key",
		}, map[string]string{
			"/key":               "/bucket-a/key",
			"/dir/../key":        "/bucket-a/dir/../key",
			"/":                  "/bucket-a/",
			"/a%2Fb":             "/bucket-a/a/b",
			"/report%202025.csv": "/bucket-a/report%202025.csv",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pf := newProxyFixture(t, nil)
			p := startPrefixed(t, pf.fixture, c.upstream, c.signHost, c.args...)
			for _, e := range c.escapes {
				before := len(pf.aws.Records())
				resp, body := rawRequest(t, p.host(), "GET "+e+" HTTP/1.1\nHost: localhost\n\n")
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "--upstream") {
					t.Errorf("%s: %d %q", e, resp.StatusCode, body)
				}
				if recs := pf.aws.Records(); len(recs) != before {
					t.Errorf("%s reached the upstream as %s", e, recs[len(recs)-1].Path)
				}
			}
			// The absolute form is read the same way.
			resp, body := rawRequest(t, p.host(), "GET http://localhost/../ws-2/api/v1/query HTTP/1.1\nHost: localhost\n\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("absolute form: %d %q", resp.StatusCode, body)
			}
			for in, want := range c.stays {
				before := len(pf.requests())
				resp, body := rawRequest(t, p.host(), "GET "+in+" HTTP/1.1\nHost: localhost\n\n")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %q", in, resp.StatusCode, body)
					continue
				}
				reqs := pf.requests()
				if len(reqs) != before+1 || reqs[len(reqs)-1].uri != want {
					t.Errorf("%s reached the upstream as %v, want %s", in, reqs[before:], want)
				}
			}
			accepted(t, pf.aws)
		})
	}
}

// An --upstream path with a dot segment is refused at start: the prefix
// clients are held under is the one written.
func TestProxyUpstreamDotSegments(t *testing.T) {
	for _, u := range []string{"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/../ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/./ws-1",
		"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/%2e%2e/ws-1"} {
		// A loopback IMDS that is not there: nothing leaves this machine
		// if the flag is let through.
		r := runCmd(t, "", "proxy", "--upstream", u, "--imds-endpoint", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--upstream") || !strings.Contains(r.stderr, "'..'") {
			t.Errorf("%s: exit %d: %s", u, r.code, r.stderr)
		}
	}
}
