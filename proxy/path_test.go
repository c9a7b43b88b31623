package proxy

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// climbs is exact: a client path climbs out of the prefix if and only if
// one of its readings does, each read by path.Clean, which shares no code
// with it. A reading takes each %2F, %5C and "\\" for a separator or for
// part of a name, decodes the rest, and cuts each segment at a ";".
func TestClimbsAgreesWithClean(t *testing.T) {
	parts := []string{"a", "b", ".", "..", "", "%2e", "%2E%2e", ".%2e", "%2f", "%2F", "%5c", "\\", ";", "..;x", "%3b", "..a", "x;"}
	rng := rand.New(rand.NewPCG(17, 8))
	const prefix = "/p/q"
	climbing := 0
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(6) {
			b.WriteString("/")
			for range 1 + rng.IntN(3) {
				b.WriteString(parts[rng.IntN(len(parts))])
			}
		}
		p := b.String()
		want, reading := false, ""
		for mask := range 1 << separators(p) {
			r := readAs(p, mask)
			if c := path.Clean(prefix + "/" + r); c != prefix && !strings.HasPrefix(c, prefix+"/") {
				want, reading = true, r
				break
			}
		}
		if got := climbs(p); got != want {
			t.Fatalf("climbs(%q) = %v; a reading that leaves the prefix: %q", p, got, reading)
		}
		if want {
			climbing++
		}
	}
	if climbing < 1000 {
		t.Errorf("only %d of the paths climb: the test tries too few", climbing)
	}
}

// separators counts the optional separators of p.
func separators(p string) int {
	return strings.Count(p, `\`) + strings.Count(strings.ToUpper(p), "%2F") + strings.Count(strings.ToUpper(p), "%5C")
}

// readAs is p read with the optional separators whose bits mask sets as
// separators, the others as a byte of a name (NUL, which no path holds),
// every segment decoded and cut at a ";".
func readAs(p string, mask int) string {
	var segs []string
	var cur strings.Builder
	end := func() {
		s := cur.String()
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		s, _, _ = strings.Cut(s, ";")
		segs = append(segs, s)
		cur.Reset()
	}
	bit := 0
	for i := 0; i < len(p); i++ {
		n := 0
		switch u := strings.ToUpper(p[i:min(i+3, len(p))]); {
		case p[i] == '/':
			end()
			continue
		case p[i] == '\\':
			n = 1
		case u == "%2F" || u == "%5C":
			n = 3
		}
		if n == 0 {
			cur.WriteByte(p[i])
			continue
		}
		if mask&(1<<bit) != 0 {
			end()
		} else {
			cur.WriteByte(0)
		}
		bit++
		i += n - 1
	}
	end()
	return strings.Join(segs, "/")
}

// startPrefixed runs a proxy whose Upstream is f's endpoint with the
// path prefix, signing for signHost.
func startPrefixed(t *testing.T, f *wiretest.Fixture, prefix, signHost string, cfg Config) *proxyRun {
	t.Helper()
	cfg.Upstream, cfg.SignHost = "http://"+f.Host()+prefix, signHost
	return startProxy(t, f, cfg)
}

// An Upstream with a path holds the client under it (issue 17): a
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
	aps := Config{Service: "aps", Region: "us-east-1"}
	for _, c := range []struct {
		name, upstream, signHost string
		cfg                      Config
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
		{"s3, path style", "/bucket-a", "s3.eu-west-2.amazonaws.com", Config{}, []string{
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
			p := startPrefixed(t, pf.Fixture, c.upstream, c.signHost, c.cfg)
			for _, e := range c.escapes {
				before := len(pf.AWS.Records())
				resp, body := wiretest.RawRequest(t, p.host(), "GET "+e+" HTTP/1.1\nHost: localhost\n\n")
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Config.Upstream") {
					t.Errorf("%s: %d %q", e, resp.StatusCode, body)
				}
				if recs := pf.AWS.Records(); len(recs) != before {
					t.Errorf("%s reached the upstream as %s", e, recs[len(recs)-1].Path)
				}
			}
			// The absolute form is read the same way.
			resp, body := wiretest.RawRequest(t, p.host(), "GET http://localhost/../ws-2/api/v1/query HTTP/1.1\nHost: localhost\n\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("absolute form: %d %q", resp.StatusCode, body)
			}
			for in, want := range c.stays {
				before := len(pf.Requests())
				resp, body := wiretest.RawRequest(t, p.host(), "GET "+in+" HTTP/1.1\nHost: localhost\n\n")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %q", in, resp.StatusCode, body)
					continue
				}
				reqs := pf.Requests()
				if len(reqs) != before+1 || reqs[len(reqs)-1].URI != want {
					t.Errorf("%s reached the upstream as %v, want %s", in, reqs[before:], want)
				}
			}
			wiretest.Accepted(t, pf.AWS)
		})
	}
}
