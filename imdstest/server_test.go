package imdstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

const (
	credsPath = roleListPath + defaultRole
	waitLimit = 10 * time.Second // guards against a hung test, never reached when passing
)

var epoch = time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)

// fakeClock is a Config.Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// harness is a server and a client reaching it.
type harness struct {
	srv    *Server
	client *http.Client
	base   string
}

// transports start a server reached over real HTTP or in memory.
var transports = []struct {
	name  string
	start func(t *testing.T, cfg Config) harness
}{
	{"http", func(t *testing.T, cfg Config) harness {
		s := NewServer(cfg)
		t.Cleanup(s.Close)
		return harness{s, s.st.ts.Client(), s.URL}
	}},
	{"roundtripper", func(t *testing.T, cfg Config) harness {
		s := NewHandler(cfg)
		t.Cleanup(s.Close)
		return harness{s, &http.Client{Transport: s.RoundTripper()}, "http://169.254.169.254"}
	}},
}

// eachTransport runs f as a subtest over each transport.
func eachTransport(t *testing.T, f func(t *testing.T, start func(Config) harness)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			f(t, func(cfg Config) harness { return tr.start(t, cfg) })
		})
	}
}

type result struct {
	status int
	body   string
	header http.Header
}

// send makes a request with the given header pairs, returning its error.
func (h harness) send(ctx context.Context, method, path string, hdr ...string) (result, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, nil)
	if err != nil {
		return result{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{resp.StatusCode, string(b), resp.Header}, nil
}

// do makes a request that must get an answer.
func (h harness) do(t *testing.T, method, path string, hdr ...string) result {
	t.Helper()
	res, err := h.send(t.Context(), method, path, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

// token gets an IMDSv2 token.
func (h harness) token(t *testing.T, ttl string) string {
	t.Helper()
	res := h.do(t, http.MethodPut, tokenPath, ttlHeader, ttl)
	if res.status != http.StatusOK {
		t.Fatalf("token PUT: status %d, want 200", res.status)
	}
	return res.body
}

// doc is a decoded credential document.
type doc struct {
	Code, Message, LastUpdated, Type string
	AccessKeyID                      string `json:"AccessKeyId"`
	SecretAccessKey, Token           string
	Expiration                       string
}

// creds GETs the credential document, which must be a 200.
func (h harness) creds(t *testing.T) doc {
	t.Helper()
	res := h.do(t, http.MethodGet, credsPath)
	if res.status != http.StatusOK {
		t.Fatalf("credential GET: status %d, want 200", res.status)
	}
	var d doc
	if err := json.Unmarshal([]byte(res.body), &d); err != nil {
		t.Fatalf("credential document %q: %v", res.body, err)
	}
	return d
}

// watchWaits reports each request starting and stopping to wait on a fault.
func watchWaits(s *Server) (started, stopped <-chan struct{}) {
	start, stop := make(chan struct{}, 16), make(chan struct{}, 16)
	s.st.mu.Lock()
	s.st.onWait = func(begin bool) {
		if begin {
			start <- struct{}{}
		} else {
			stop <- struct{}{}
		}
	}
	s.st.mu.Unlock()
	return start, stop
}

func receive(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestTokenPUT(t *testing.T) {
	tokenRE := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	cases := []struct {
		name    string
		method  string
		hdr     []string
		want    int
		wantTTL string
	}{
		{"max ttl", http.MethodPut, []string{ttlHeader, "21600"}, 200, "21600"},
		{"min ttl", http.MethodPut, []string{ttlHeader, "1"}, 200, "1"},
		{"canonical header case", http.MethodPut, []string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60"}, 200, "60"},
		{"missing ttl", http.MethodPut, nil, 400, ""},
		{"empty ttl", http.MethodPut, []string{ttlHeader, ""}, 400, ""},
		{"zero ttl", http.MethodPut, []string{ttlHeader, "0"}, 400, ""},
		{"ttl too long", http.MethodPut, []string{ttlHeader, "21601"}, 400, ""},
		{"negative ttl", http.MethodPut, []string{ttlHeader, "-1"}, 400, ""},
		{"signed ttl", http.MethodPut, []string{ttlHeader, "+60"}, 400, ""},
		{"fractional ttl", http.MethodPut, []string{ttlHeader, "1.5"}, 400, ""},
		{"word ttl", http.MethodPut, []string{ttlHeader, "abc"}, 400, ""},
		{"two ttls", http.MethodPut, []string{ttlHeader, "60", ttlHeader, "60"}, 400, ""},
		{"forwarded", http.MethodPut, []string{ttlHeader, "60", "X-Forwarded-For", "10.0.0.1"}, 403, ""},
		{"GET", http.MethodGet, []string{ttlHeader, "60"}, 405, ""},
		{"POST", http.MethodPost, []string{ttlHeader, "60"}, 405, ""},
		{"DELETE", http.MethodDelete, nil, 405, ""},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := start(Config{Mode: TokenRequired})
				res := h.do(t, tc.method, tokenPath, tc.hdr...)
				if res.status != tc.want {
					t.Fatalf("status %d, want %d (body %q)", res.status, tc.want, res.body)
				}
				if got := res.header.Get(ttlHeader); got != tc.wantTTL {
					t.Errorf("TTL header %q, want %q", got, tc.wantTTL)
				}
				if tc.want != http.StatusOK {
					if res.body == "" {
						t.Error("empty error body")
					}
					return
				}
				if !tokenRE.MatchString(res.body) {
					t.Errorf("token %q is not base64url of 32 bytes", res.body)
				}
				if ct := res.header.Get("Content-Type"); ct != textPlain {
					t.Errorf("Content-Type %q, want %q", ct, textPlain)
				}
				if got := h.do(t, http.MethodGet, roleListPath, tokenHeader, res.body).status; got != 200 {
					t.Errorf("GET with the token: status %d, want 200", got)
				}
				if other := h.token(t, "60"); other == res.body {
					t.Errorf("two PUTs gave the same token")
				}
			})
		}
	})
}

func TestTokenModes(t *testing.T) {
	const bogus = "AQAEAbogusbogusbogusbogusbogusbogusbogus=="
	cases := []struct {
		name string
		cfg  Config
		put  int
		none int // GET status without a token
		good int // with a valid token (0: none can be had)
		bad  int // with an unknown token
	}{
		{"optional", Config{}, 200, 200, 200, 401},
		{"required", Config{Mode: TokenRequired}, 200, 401, 200, 401},
		{"unsupported", Config{Mode: TokenUnsupported}, 404, 200, 0, 200},
		{"unsupported 403", Config{Mode: TokenUnsupported, TokenStatus: 403}, 403, 200, 0, 200},
		{"unsupported 405", Config{Mode: TokenUnsupported, TokenStatus: 405}, 405, 200, 0, 200},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := start(tc.cfg)
				put := h.do(t, http.MethodPut, tokenPath, ttlHeader, "21600")
				if put.status != tc.put {
					t.Fatalf("token PUT: status %d, want %d", put.status, tc.put)
				}
				for _, path := range []string{roleListPath, credsPath} {
					if got := h.do(t, http.MethodGet, path).status; got != tc.none {
						t.Errorf("GET %s without token: status %d, want %d", path, got, tc.none)
					}
					if tc.good != 0 {
						if got := h.do(t, http.MethodGet, path, tokenHeader, put.body).status; got != tc.good {
							t.Errorf("GET %s with a valid token: status %d, want %d", path, got, tc.good)
						}
					}
					if got := h.do(t, http.MethodGet, path, tokenHeader, bogus).status; got != tc.bad {
						t.Errorf("GET %s with an unknown token: status %d, want %d", path, got, tc.bad)
					}
				}
			})
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	for _, mode := range []Mode{TokenOptional, TokenRequired} {
		t.Run(mode.String(), func(t *testing.T) {
			eachTransport(t, func(t *testing.T, start func(Config) harness) {
				clock := newClock()
				h := start(Config{Mode: mode, Clock: clock.Now})
				short := h.token(t, "60")
				long := h.token(t, "21600")
				get := func(tok string) int { return h.do(t, http.MethodGet, credsPath, tokenHeader, tok).status }
				if got := get(short); got != 200 {
					t.Fatalf("fresh token: status %d, want 200", got)
				}
				clock.Advance(59 * time.Second)
				if got := get(short); got != 200 {
					t.Fatalf("token 1s before expiry: status %d, want 200", got)
				}
				clock.Advance(time.Second)
				if got := get(short); got != 401 {
					t.Fatalf("expired token: status %d, want 401", got)
				}
				if got := get(long); got != 200 {
					t.Fatalf("longer token: status %d, want 200", got)
				}
				clock.Advance(6*time.Hour - time.Minute)
				if got := get(long); got != 401 {
					t.Fatalf("longer token expired: status %d, want 401", got)
				}
				if got := h.srv.Stats().Unauthorized; got != 2 {
					t.Errorf("Stats().Unauthorized = %d, want 2", got)
				}
			})
		})
	}
}

func TestRoleList(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		method string
		status int
		body   string
	}{
		{"default role", Config{}, http.MethodGet, 200, "kivuli-test-role"},
		{"named role", Config{Role: "app-role"}, http.MethodGet, 200, "app-role"},
		{"no role", Config{NoRole: true}, http.MethodGet, 404, ""},
		{"PUT", Config{}, http.MethodPut, 405, ""},
		{"POST", Config{}, http.MethodPost, 405, ""},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := start(tc.cfg)
				res := h.do(t, tc.method, roleListPath)
				if res.status != tc.status {
					t.Fatalf("status %d, want %d", res.status, tc.status)
				}
				if tc.status != 200 {
					return
				}
				if res.body != tc.body {
					t.Errorf("body %q, want %q", res.body, tc.body)
				}
				if ct := res.header.Get("Content-Type"); ct != textPlain {
					t.Errorf("Content-Type %q, want %q", ct, textPlain)
				}
			})
		}
	})
}

// TestRegion: the instance's region is served like the other metadata,
// under the same token rules.
func TestRegion(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		status int
		body   string
	}{
		{"default", Config{}, 200, "us-east-1"},
		{"configured", Config{Region: "eu-west-2"}, 200, "eu-west-2"},
		{"no token when required", Config{Mode: TokenRequired}, 401, ""},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := start(tc.cfg).do(t, http.MethodGet, regionPath)
				if res.status != tc.status || tc.status == 200 && res.body != tc.body {
					t.Fatalf("status %d, body %q; want %d, %q", res.status, res.body, tc.status, tc.body)
				}
			})
		}
	})
}

func TestPaths(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		method string
		path   string
		status int
	}{
		{"role", Config{}, http.MethodGet, credsPath, 200},
		{"named role", Config{Role: "app-role"}, http.MethodGet, roleListPath + "app-role", 200},
		{"other role", Config{}, http.MethodGet, roleListPath + "other-role", 404},
		{"default role when named", Config{Role: "app-role"}, http.MethodGet, credsPath, 404},
		{"no role", Config{NoRole: true}, http.MethodGet, credsPath, 404},
		// As on EC2, a '/' after a name does not change it (issue 19,
		// point 16: these were 404).
		{"role with slash", Config{}, http.MethodGet, credsPath + "/", 200},
		{"list without slash", Config{}, http.MethodGet, strings.TrimSuffix(roleListPath, "/"), 200},
		{"meta-data", Config{}, http.MethodGet, "/latest/meta-data/", 200},
		{"role list of no role", Config{NoRole: true}, http.MethodGet, roleListPath, 404},
		{"root", Config{}, http.MethodGet, "/", 404},
		{"token with slash", Config{}, http.MethodPut, tokenPath + "/", 404},
		{"HEAD credentials", Config{}, http.MethodHead, credsPath, 200},
		{"HEAD role list", Config{}, http.MethodHead, roleListPath, 200},
		{"HEAD other role", Config{}, http.MethodHead, roleListPath + "other-role", 404},
		{"HEAD token", Config{}, http.MethodHead, tokenPath, 405},
		{"POST credentials", Config{}, http.MethodPost, credsPath, 405},
		{"DELETE credentials", Config{}, http.MethodDelete, credsPath, 405},
		{"POST unknown", Config{}, http.MethodPost, "/latest/user-data", 404},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := start(tc.cfg)
				if got := h.do(t, tc.method, tc.path, ttlHeader, "60").status; got != tc.status {
					t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, got, tc.status)
				}
			})
		}
	})
}

func TestCredentialDocument(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		clock := newClock()
		clock.Advance(1500 * time.Millisecond) // the document shows whole seconds
		h := start(Config{Clock: clock.Now})
		if n := len(h.srv.st.sets); n != 0 {
			t.Fatalf("%d sets issued before any request, want 0", n)
		}
		res := h.do(t, http.MethodGet, credsPath, tokenHeader, h.token(t, "60"))
		if res.status != 200 {
			t.Fatalf("status %d, want 200", res.status)
		}
		if ct := res.header.Get("Content-Type"); ct != appJSON {
			t.Errorf("Content-Type %q, want %q", ct, appJSON)
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(res.body), &fields); err != nil {
			t.Fatalf("document %q: %v", res.body, err)
		}
		keys := make([]string, 0, len(fields))
		for k, v := range fields {
			keys = append(keys, k)
			if _, ok := v.(string); !ok {
				t.Errorf("field %s is %T, want a string", k, v)
			}
		}
		slices.Sort(keys)
		wantKeys := []string{"AccessKeyId", "Code", "Expiration", "LastUpdated", "SecretAccessKey", "Token", "Type"}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("fields %v, want %v", keys, wantKeys)
		}
		for _, re := range []string{
			`"Code"\s*:\s*"Success"`,
			`"Type"\s*:\s*"AWS-HMAC"`,
			`"LastUpdated"\s*:\s*"2026-11-28T17:00:01Z"`,
			`"Expiration"\s*:\s*"2026-11-28T23:00:01Z"`,
			`"AccessKeyId"\s*:\s*"ASIA[A-Z2-7]{16}"`,
			`"SecretAccessKey"\s*:\s*"[A-Za-z0-9/+]{40}"`,
			`"Token"\s*:\s*"[A-Za-z0-9/+]{398}=="`,
		} {
			if !regexp.MustCompile(re).MatchString(res.body) {
				t.Errorf("document does not match %s", re)
			}
		}
		var d doc
		if err := json.Unmarshal([]byte(res.body), &d); err != nil {
			t.Fatal(err)
		}
		cur := h.srv.Current()
		want := Credentials{d.AccessKeyID, d.SecretAccessKey, d.Token, time.Date(2026, 11, 28, 23, 0, 1, 0, time.UTC)}
		if cur != want {
			t.Errorf("Current() = %#v, want the document's set", cur)
		}
		if cur.Expiration.Location() != time.UTC {
			t.Errorf("Expiration in %v, want UTC", cur.Expiration.Location())
		}
		if got, ok := h.srv.Lookup(d.AccessKeyID); !ok || got != want {
			t.Errorf("Lookup(%q) = %v, %v; want the document's set", d.AccessKeyID, got, ok)
		}
		tokenRE := regexp.MustCompile(`^[A-Za-z0-9/+]{398}==$`)
		for i := range 50 {
			tok := d.Token
			if i > 0 {
				h.srv.Rotate()
				tok = h.srv.Current().SessionToken
			}
			if !tokenRE.MatchString(tok) || !strings.Contains(tok, "/") || !strings.Contains(tok, "+") {
				t.Fatalf("session token %d %q lacks '/', '+' or the final '=='", i, tok)
			}
		}
	})
}

func TestCurrentIssuesFirstSet(t *testing.T) {
	clock := newClock()
	s := NewHandler(Config{Clock: clock.Now})
	c := s.Current()
	if !strings.HasPrefix(c.AccessKeyID, "ASIA") || !c.Expiration.Equal(epoch.Add(6*time.Hour)) {
		t.Fatalf("Current() = %v, want a fresh set expiring at %v", c, epoch.Add(6*time.Hour))
	}
	h := harness{s, &http.Client{Transport: s.RoundTripper()}, "http://imds"}
	if got := h.creds(t).AccessKeyID; got != c.AccessKeyID {
		t.Errorf("GET returned %s, want the set Current issued, %s", got, c.AccessKeyID)
	}
}

func TestRotation(t *testing.T) {
	cases := []struct {
		name               string
		cfg                Config
		lifetime, rotateAt time.Duration
	}{
		// A new set every hour, as on EC2 (issue 9: the old default, 15
		// minutes before expiry, fell inside kivuli's own refresh window).
		{"defaults", Config{}, 6 * time.Hour, time.Hour},
		{"default share of a short lifetime", Config{Lifetime: time.Hour}, time.Hour, 10 * time.Minute},
		{"configured", Config{Lifetime: time.Hour, RotateBefore: 5 * time.Minute}, time.Hour, 55 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, start func(Config) harness) {
				clock := newClock()
				cfg := tc.cfg
				cfg.Clock = clock.Now
				h := start(cfg)

				a := h.creds(t)
				if want := timestamp(epoch.Add(tc.lifetime)); a.Expiration != want {
					t.Errorf("first Expiration %s, want %s", a.Expiration, want)
				}
				clock.Advance(tc.rotateAt - time.Second)
				if got := h.creds(t); got != a {
					t.Fatalf("set changed %v before the rotation point", tc.rotateAt-time.Second)
				}
				clock.Advance(time.Second)
				b := h.creds(t)
				if b.AccessKeyID == a.AccessKeyID || b.SecretAccessKey == a.SecretAccessKey || b.Token == a.Token {
					t.Fatalf("no new set at the rotation point")
				}
				now := clock.Now()
				if b.LastUpdated != timestamp(now) || b.Expiration != timestamp(now.Add(tc.lifetime)) {
					t.Errorf("new set LastUpdated %s Expiration %s, want %s and %s",
						b.LastUpdated, b.Expiration, timestamp(now), timestamp(now.Add(tc.lifetime)))
				}
				if got := h.creds(t); got != b {
					t.Errorf("set changed again right after rotating")
				}
				for _, d := range []doc{a, b} {
					c, ok := h.srv.Lookup(d.AccessKeyID)
					if !ok || c.SecretAccessKey != d.SecretAccessKey || c.SessionToken != d.Token || timestamp(c.Expiration) != d.Expiration {
						t.Errorf("Lookup(%s) = %v, %v; want the set served", d.AccessKeyID, c, ok)
					}
				}
				if _, ok := h.srv.Lookup("ASIAAAAAAAAAAAAAAAAA"); ok {
					t.Error("Lookup found a key never issued")
				}
			})
		})
	}
}

func TestRotateAndCurrent(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		clock := newClock()
		h := start(Config{Clock: clock.Now})
		a := h.creds(t)
		h.srv.Rotate()
		c := h.srv.Current()
		if c.AccessKeyID == a.AccessKeyID {
			t.Fatal("Rotate did not issue a new set")
		}
		if got := h.creds(t); got.AccessKeyID != c.AccessKeyID {
			t.Fatalf("GET after Rotate returned %s, want %s", got.AccessKeyID, c.AccessKeyID)
		}
		clock.Advance(6*time.Hour - 15*time.Minute)
		if got := h.srv.Current(); got != c {
			t.Fatalf("Current() rotated: %v, want %v", got, c)
		}
		d := h.creds(t)
		if d.AccessKeyID == c.AccessKeyID {
			t.Fatal("GET at the rotation point did not rotate")
		}
		if got := h.srv.Current().AccessKeyID; got != d.AccessKeyID {
			t.Errorf("Current() = %s after rotation, want %s", got, d.AccessKeyID)
		}
		if n := len(h.srv.st.sets); n != 3 {
			t.Errorf("%d sets issued, want 3", n)
		}
	})
}

func TestFaultStatus(t *testing.T) {
	cases := []struct {
		status, retryAfter int
		target             Target
		path               string
	}{
		{500, 0, CredentialsPath, credsPath},
		{503, 2, CredentialsPath, credsPath},
		{429, 1, RoleListPath, roleListPath},
		{404, 0, RoleListPath, roleListPath},
		{401, 0, CredentialsPath, credsPath},
		{403, 0, TokenPath, tokenPath},
		{405, 0, TokenPath, tokenPath},
		{502, 0, AnyPath, credsPath},
	}
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%d %v", tc.status, tc.target), func(t *testing.T) {
				h := start(Config{})
				h.srv.Inject(Fault{Target: tc.target, Status: tc.status, RetryAfter: tc.retryAfter, Times: 1})
				method := http.MethodGet
				if tc.path == tokenPath {
					method = http.MethodPut
				}
				res := h.do(t, method, tc.path, ttlHeader, "60")
				if res.status != tc.status {
					t.Fatalf("status %d, want %d", res.status, tc.status)
				}
				if res.body != http.StatusText(tc.status) {
					t.Errorf("body %q, want %q", res.body, http.StatusText(tc.status))
				}
				wantRA := ""
				if tc.retryAfter > 0 {
					wantRA = fmt.Sprint(tc.retryAfter)
				}
				if got := res.header.Get("Retry-After"); got != wantRA {
					t.Errorf("Retry-After %q, want %q", got, wantRA)
				}
				if got := h.do(t, method, tc.path, ttlHeader, "60").status; got != 200 {
					t.Errorf("second request: status %d, want 200 (fault used up)", got)
				}
				wantUnauth := 0
				if tc.status == 401 {
					wantUnauth = 1
				}
				if got := h.srv.Stats().Unauthorized; got != wantUnauth {
					t.Errorf("Stats().Unauthorized = %d, want %d", got, wantUnauth)
				}
			})
		}
	})
}

func TestFaultMatching(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		t.Run("target", func(t *testing.T) {
			h := start(Config{})
			h.srv.Inject(Fault{Target: TokenPath, Status: 500})
			if got := h.do(t, http.MethodGet, roleListPath).status; got != 200 {
				t.Errorf("role list: status %d, want 200 (fault on TokenPath)", got)
			}
			if got := h.do(t, http.MethodPut, tokenPath, ttlHeader, "60").status; got != 500 {
				t.Errorf("token: status %d, want 500", got)
			}
		})
		t.Run("any path", func(t *testing.T) {
			h := start(Config{})
			h.srv.Inject(Fault{Status: 500})
			for _, p := range []struct{ method, path string }{
				{http.MethodPut, tokenPath}, {http.MethodGet, roleListPath}, {http.MethodGet, credsPath},
				{http.MethodGet, "/latest/user-data"}, {http.MethodPost, credsPath},
			} {
				if got := h.do(t, p.method, p.path).status; got != 500 {
					t.Errorf("%s %s: status %d, want 500", p.method, p.path, got)
				}
			}
		})
		t.Run("times", func(t *testing.T) {
			h := start(Config{})
			h.srv.Inject(Fault{Target: CredentialsPath, Status: 500, Times: 2})
			var got []int
			for range 3 {
				got = append(got, h.do(t, http.MethodGet, credsPath).status)
			}
			if want := []int{500, 500, 200}; !slices.Equal(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
		})
		t.Run("until cleared", func(t *testing.T) {
			h := start(Config{})
			h.srv.Inject(Fault{Target: CredentialsPath, Status: 503})
			for i := range 5 {
				if got := h.do(t, http.MethodGet, credsPath).status; got != 503 {
					t.Fatalf("request %d: status %d, want 503", i, got)
				}
			}
			h.srv.ClearFaults()
			if got := h.do(t, http.MethodGet, credsPath).status; got != 200 {
				t.Errorf("after ClearFaults: status %d, want 200", got)
			}
		})
		t.Run("order", func(t *testing.T) {
			h := start(Config{})
			h.srv.Inject(Fault{Target: CredentialsPath, Status: 500, Times: 1})
			h.srv.Inject(Fault{Status: 503, Times: 1})
			h.srv.Inject(Fault{Target: CredentialsPath, Status: 429, Times: 1})
			var got []int
			for range 4 {
				got = append(got, h.do(t, http.MethodGet, credsPath).status)
			}
			if want := []int{500, 503, 429, 200}; !slices.Equal(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
		})
		t.Run("replaces checks", func(t *testing.T) {
			h := start(Config{Mode: TokenRequired})
			h.srv.Inject(Fault{Target: CredentialsPath, Body: "ok", Times: 1})
			if got := h.do(t, http.MethodGet, credsPath).status; got != 200 {
				t.Errorf("Body fault without token: status %d, want 200", got)
			}
			if got := h.do(t, http.MethodGet, credsPath).status; got != 401 {
				t.Errorf("after the fault: status %d, want 401", got)
			}
		})
	})
}

func TestFaultBody(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{})
		const malformed = `{"Code":"Success","AccessKeyId":`
		h.srv.Inject(Fault{Target: CredentialsPath, Body: malformed, Times: 1})
		h.srv.Inject(Fault{Target: RoleListPath, Body: "oops\n", Status: 500, RetryAfter: 3, Times: 1})
		res := h.do(t, http.MethodGet, credsPath)
		if res.status != 200 || res.body != malformed {
			t.Errorf("credentials: %d %q, want 200 %q", res.status, res.body, malformed)
		}
		res = h.do(t, http.MethodGet, roleListPath)
		if res.status != 500 || res.body != "oops\n" || res.header.Get("Retry-After") != "3" {
			t.Errorf("role list: %d %q Retry-After %q, want 500 %q 3", res.status, res.body, res.header.Get("Retry-After"), "oops\n")
		}
		if d := h.creds(t); d.Code != "Success" {
			t.Errorf("after the fault: Code %q, want Success", d.Code)
		}
	})
}

func TestFaultCode(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		clock := newClock()
		h := start(Config{Clock: clock.Now})
		const code, msg = "AssumeRoleUnauthorizedAccess", "EC2 cannot assume the role kivuli-test-role."
		h.srv.Inject(Fault{Code: code, Message: msg, Times: 1}) // AnyPath, but credentials only
		if got := h.do(t, http.MethodPut, tokenPath, ttlHeader, "60").status; got != 200 {
			t.Errorf("token PUT: status %d, want 200", got)
		}
		if res := h.do(t, http.MethodGet, roleListPath); res.status != 200 || res.body != defaultRole {
			t.Errorf("role list: %d %q, want 200 %q", res.status, res.body, defaultRole)
		}
		res := h.do(t, http.MethodGet, credsPath)
		if res.status != 200 || res.header.Get("Content-Type") != appJSON {
			t.Fatalf("credentials: status %d Content-Type %q, want 200 %s", res.status, res.header.Get("Content-Type"), appJSON)
		}
		var fields map[string]string
		if err := json.Unmarshal([]byte(res.body), &fields); err != nil {
			t.Fatalf("document %q: %v", res.body, err)
		}
		want := map[string]string{"Code": code, "Message": msg, "LastUpdated": "2026-11-28T17:00:00Z"}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Errorf("document %v, want %v", fields, want)
		}
		if d := h.creds(t); d.Code != "Success" || d.AccessKeyID == "" {
			t.Errorf("after the fault: %q %q, want Success and a key", d.Code, d.AccessKeyID)
		}
	})
}

func TestFaultExpired(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		clock := newClock()
		h := start(Config{Clock: clock.Now})
		h.srv.Inject(Fault{Expired: true, Times: 1})
		if got := h.do(t, http.MethodGet, roleListPath).status; got != 200 {
			t.Errorf("role list: status %d, want 200", got)
		}
		clock.Advance(time.Hour)
		d := h.creds(t)
		if want := "2026-11-28T17:59:00Z"; d.Expiration != want {
			t.Errorf("Expiration %s, want %s (clock minus a minute)", d.Expiration, want)
		}
		cur := h.srv.Current()
		if d.AccessKeyID != cur.AccessKeyID || d.SecretAccessKey != cur.SecretAccessKey {
			t.Errorf("expired document serves %s, want the current set %s", d.AccessKeyID, cur.AccessKeyID)
		}
		if want := epoch.Add(7 * time.Hour); !cur.Expiration.Equal(want) {
			t.Errorf("current set expires %v, want %v (unchanged)", cur.Expiration, want)
		}
		if d := h.creds(t); d.Expiration != timestamp(epoch.Add(7*time.Hour)) {
			t.Errorf("after the fault: Expiration %s, want %s", d.Expiration, timestamp(epoch.Add(7*time.Hour)))
		}
	})
}

func TestFaultExpiredKeepsChecks(t *testing.T) {
	h := transports[1].start(t, Config{Mode: TokenRequired})
	h.srv.Inject(Fault{Expired: true})
	if got := h.do(t, http.MethodGet, credsPath).status; got != 401 {
		t.Errorf("no token: status %d, want 401", got)
	}
	tok := h.token(t, "60")
	res := h.do(t, http.MethodGet, credsPath, tokenHeader, tok)
	if res.status != 200 || !strings.Contains(res.body, `"Code": "Success"`) {
		t.Errorf("with token: %d %s, want 200 and a document", res.status, res.body)
	}
}

func TestFaultHang(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		t.Run("context", func(t *testing.T) {
			h := start(Config{})
			started, stopped := watchWaits(h.srv)
			h.srv.Inject(Fault{Target: TokenPath, Hang: true})
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() {
				_, err := h.send(ctx, http.MethodPut, tokenPath, ttlHeader, "60")
				errc <- err
			}()
			receive(t, started, "the PUT to hang")
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("hung PUT: error %v, want context.Canceled", err)
			}
			receive(t, stopped, "the hung PUT to end")
			if got := h.do(t, http.MethodGet, credsPath).status; got != 200 {
				t.Errorf("GET while the PUT hangs: status %d, want 200", got)
			}
			if got := h.srv.Stats().TokenPUTs; got != 1 {
				t.Errorf("Stats().TokenPUTs = %d, want 1", got)
			}
		})
		t.Run("close", func(t *testing.T) {
			h := start(Config{})
			started, stopped := watchWaits(h.srv)
			h.srv.Inject(Fault{Hang: true})
			const n = 3
			errc := make(chan error, n)
			for range n {
				go func() {
					_, err := h.send(context.Background(), http.MethodGet, credsPath)
					errc <- err
				}()
			}
			for range n {
				receive(t, started, "the GETs to hang")
			}
			closed := make(chan struct{})
			go func() {
				h.srv.Close()
				close(closed)
			}()
			receive(t, closed, "Close to return")
			for range n {
				receive(t, stopped, "the hung GETs to end")
				if err := <-errc; err == nil {
					t.Error("hung GET released by Close got an answer, want an error")
				} else if h.srv.URL == "" && !errors.Is(err, errClosed) {
					t.Errorf("hung GET released by Close: error %v, want errClosed", err)
				}
			}
			if _, err := h.send(t.Context(), http.MethodGet, roleListPath); err == nil {
				t.Error("request after Close got an answer, want an error")
			}
			h.srv.Close() // a second Close is harmless
		})
	})
}

func TestFaultDelaySynctest(t *testing.T) {
	// elapsed makes a credential GET through the RoundTripper and returns
	// its outcome and the fake time it took.
	elapsed := func(ctx context.Context, s *Server) (int, time.Duration, error) {
		h := harness{s, &http.Client{Transport: s.RoundTripper()}, "http://169.254.169.254"}
		t0 := time.Now()
		res, err := h.send(ctx, http.MethodGet, credsPath)
		return res.status, time.Since(t0), err
	}
	t.Run("answers after the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			defer s.Close()
			s.Inject(Fault{Target: CredentialsPath, Delay: 3 * time.Second, Times: 1})
			if status, d, err := elapsed(t.Context(), s); err != nil || status != 200 || d != 3*time.Second {
				t.Errorf("delayed GET: %d, %v after %v; want 200 after 3s", status, err, d)
			}
			if status, d, err := elapsed(t.Context(), s); err != nil || status != 200 || d != 0 {
				t.Errorf("next GET: %d, %v after %v; want 200 at once", status, err, d)
			}
		})
	})
	t.Run("status after the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			defer s.Close()
			s.Inject(Fault{Delay: 2 * time.Second, Status: 503})
			if status, d, err := elapsed(t.Context(), s); err != nil || status != 503 || d != 2*time.Second {
				t.Errorf("delayed GET: %d, %v after %v; want 503 after 2s", status, err, d)
			}
		})
	})
	t.Run("context ends the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			defer s.Close()
			s.Inject(Fault{Delay: time.Minute})
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if _, d, err := elapsed(ctx, s); !errors.Is(err, context.DeadlineExceeded) || d != time.Second {
				t.Errorf("delayed GET: %v after %v; want context.DeadlineExceeded after 1s", err, d)
			}
			if got := s.Stats().CredentialGETs; got != 1 {
				t.Errorf("Stats().CredentialGETs = %d, want 1", got)
			}
		})
	})
	t.Run("close ends the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			s.Inject(Fault{Delay: time.Hour})
			go func() {
				time.Sleep(time.Second)
				s.Close()
			}()
			if _, d, err := elapsed(context.Background(), s); !errors.Is(err, errClosed) || d != time.Second {
				t.Errorf("delayed GET: %v after %v; want errClosed after 1s", err, d)
			}
		})
	})
	t.Run("hang until the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			defer s.Close()
			s.Inject(Fault{Target: TokenPath, Hang: true})
			h := harness{s, &http.Client{Transport: s.RoundTripper()}, "http://169.254.169.254"}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := h.send(ctx, http.MethodPut, tokenPath, ttlHeader, "60")
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) != 5*time.Second {
				t.Errorf("hung PUT: %v after %v; want context.DeadlineExceeded after 5s", err, time.Since(t0))
			}
		})
	})
	t.Run("hang until close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := NewHandler(Config{})
			s.Inject(Fault{Hang: true})
			go func() {
				time.Sleep(2 * time.Second)
				s.Close()
			}()
			if _, d, err := elapsed(context.Background(), s); !errors.Is(err, errClosed) || d != 2*time.Second {
				t.Errorf("hung GET: %v after %v; want errClosed after 2s", err, d)
			}
		})
	})
}

func TestStats(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{})
		tok := h.token(t, "60")                                        // TokenPUTs 1
		h.do(t, http.MethodGet, roleListPath, tokenHeader, tok)        // RoleLists 1
		h.do(t, http.MethodGet, credsPath)                             // CredentialGETs 1, V1 1
		h.do(t, http.MethodGet, credsPath, tokenHeader, "not-a-token") // CredentialGETs 2, Unauthorized 1
		h.do(t, http.MethodGet, "/latest/meta-data/")                  // V1 2
		h.do(t, http.MethodPost, tokenPath)                            // none but Total
		h.do(t, http.MethodPut, roleListPath)                          // none but Total
		h.do(t, http.MethodDelete, credsPath, tokenHeader, tok)        // none but Total
		h.srv.Inject(Fault{Target: RoleListPath, Status: 500, Times: 1})
		h.do(t, http.MethodGet, roleListPath) // RoleLists 2, V1 3
		h.srv.Inject(Fault{Status: 401, Times: 1})
		h.do(t, http.MethodPut, tokenPath, ttlHeader, "60") // TokenPUTs 2, Unauthorized 2
		want := Stats{TokenPUTs: 2, RoleLists: 2, CredentialGETs: 2, Unauthorized: 2, V1Requests: 3, Total: 10}
		if got := h.srv.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
	t.Run("token required", func(t *testing.T) {
		h := transports[1].start(t, Config{Mode: TokenRequired})
		h.do(t, http.MethodGet, roleListPath)
		h.do(t, http.MethodGet, credsPath)
		want := Stats{RoleLists: 1, CredentialGETs: 1, Unauthorized: 2, V1Requests: 2, Total: 2}
		if got := h.srv.Stats(); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestNoSecretsInStrings(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{Role: "app-role"})
		tok := h.token(t, "60")
		h.srv.Rotate()
		c := h.srv.Current()
		h.srv.Inject(Fault{Status: 500, Times: 1})
		secrets := map[string]string{"secret access key": c.SecretAccessKey, "session token": c.SessionToken, "IMDS token": tok}

		var outs []string
		for _, v := range []any{h.srv, *h.srv, c, &c, []Credentials{c}, struct{ C Credentials }{c}} {
			outs = append(outs, fmt.Sprint(v))
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%f", "%10.3s", "%T"} {
				outs = append(outs, fmt.Sprintf(verb, v))
			}
		}
		// %p is for pointers: fmt (and vet) reject it for other values.
		outs = append(outs, fmt.Sprintf("%p %p", h.srv, &c))
		outs = append(outs, h.srv.String(), h.srv.GoString(), c.String(), c.GoString())
		for _, out := range outs {
			for what, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("%q contains the %s", out, what)
				}
			}
		}
		if s := c.String(); !strings.Contains(s, c.AccessKeyID) || !strings.Contains(s, timestamp(c.Expiration)) {
			t.Errorf("Credentials.String() = %q, want the AccessKeyID and Expiration", s)
		}
		if s := h.srv.String(); !strings.Contains(s, `"app-role"`) || !strings.Contains(s, "1 credential sets") || !strings.Contains(s, h.srv.URL) {
			t.Errorf("Server.String() = %q, want its URL, role and set count", s)
		}
	})
}

func TestRoundTripperResponse(t *testing.T) {
	s := NewHandler(Config{})
	defer s.Close()
	rt := s.RoundTripper()
	req, err := http.NewRequest(http.MethodGet, "http://169.254.169.254"+roleListPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Status != "200 OK" || resp.Proto != "HTTP/1.1" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Errorf("status line %q %d %q, want HTTP/1.1 200 OK", resp.Status, resp.StatusCode, resp.Proto)
	}
	if string(body) != defaultRole || resp.ContentLength != int64(len(defaultRole)) {
		t.Errorf("body %q ContentLength %d, want %q %d", body, resp.ContentLength, defaultRole, len(defaultRole))
	}
	if resp.Request != req {
		t.Error("Response.Request is not the request sent")
	}
	if resp.Header.Get("Content-Length") != fmt.Sprint(len(defaultRole)) {
		t.Errorf("Content-Length header %q", resp.Header.Get("Content-Length"))
	}
	if len(req.Header) != 0 || req.RequestURI != "" {
		t.Errorf("request modified: %v %q", req.Header, req.RequestURI)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.RoundTrip(req.WithContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled request: error %v, want context.Canceled", err)
	}
	if got := s.Stats().Total; got != 1 {
		t.Errorf("Stats().Total = %d, want 1 (the canceled request never sent)", got)
	}
	s.Close()
	if _, err := rt.RoundTrip(req); !errors.Is(err, errClosed) {
		t.Errorf("after Close: error %v, want errClosed", err)
	}
}

func TestServeHTTPAborts(t *testing.T) {
	s := NewHandler(Config{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, roleListPath, nil))
	if rec.Code != 200 || rec.Body.String() != defaultRole {
		t.Fatalf("ServeHTTP: %d %q, want 200 %q", rec.Code, rec.Body.String(), defaultRole)
	}
	s.Close()
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("ServeHTTP after Close panicked with %v, want http.ErrAbortHandler", r)
		}
	}()
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, roleListPath, nil))
}

func TestCloseServer(t *testing.T) {
	s := NewServer(Config{})
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || strings.HasSuffix(s.URL, "/") {
		t.Errorf("URL %q, want http://127.0.0.1:port", s.URL)
	}
	client := s.st.ts.Client()
	s.Close()
	s.Close()
	if resp, err := client.Get(s.URL + roleListPath); err == nil {
		resp.Body.Close()
		t.Error("GET after Close succeeded")
	}
	if !strings.Contains(s.String(), "closed") {
		t.Errorf("String() = %q, want it to say closed", s.String())
	}
}

func TestConcurrent(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{Mode: TokenRequired})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 10 {
					res, err := h.send(context.Background(), http.MethodPut, tokenPath, ttlHeader, "60")
					if err != nil || res.status != 200 {
						t.Errorf("token PUT: %d, %v", res.status, err)
						return
					}
					res, err = h.send(context.Background(), http.MethodGet, credsPath, tokenHeader, res.body)
					if err != nil || res.status != 200 && res.status != 500 {
						t.Errorf("credential GET: %d, %v", res.status, err)
						return
					}
					switch i % 4 {
					case 0:
						h.srv.Rotate()
					case 1:
						h.srv.Inject(Fault{Target: CredentialsPath, Status: 500, Times: 1})
					case 2:
						_ = h.srv.Stats()
						_ = h.srv.String()
					case 3:
						h.srv.Lookup(h.srv.Current().AccessKeyID)
					}
				}
			})
		}
		wg.Wait()
		if got := h.srv.Stats(); got.TokenPUTs != 80 || got.CredentialGETs != 80 || got.Total != 160 {
			t.Errorf("Stats() = %+v, want 80 PUTs, 80 GETs", got)
		}
	})
}

func TestPanics(t *testing.T) {
	cases := map[string]func(){
		"invalid mode":     func() { NewHandler(Config{Mode: 7}) },
		"invalid target":   func() { NewHandler(Config{}).Inject(Fault{Target: 9}) },
		"negative times":   func() { NewHandler(Config{}).Inject(Fault{Times: -1}) },
		"invalid status":   func() { NewHandler(Config{}).Inject(Fault{Status: 42}) },
		"status too large": func() { NewHandler(Config{}).Inject(Fault{Status: 600}) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		TokenOptional: "TokenOptional", TokenRequired: "TokenRequired", TokenUnsupported: "TokenUnsupported", Mode(9): "Mode(9)",
		AnyPath: "AnyPath", TokenPath: "TokenPath", RoleListPath: "RoleListPath", CredentialsPath: "CredentialsPath", Target(9): "Target(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// TestHEAD: IMDS answers HEAD as GET, without a body (EC2 User Guide: the
// instance metadata service answers GET and HEAD).
func TestHEAD(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{Mode: TokenRequired})
		tok := h.token(t, "60")
		get := h.do(t, http.MethodGet, credsPath, tokenHeader, tok)
		head := h.do(t, http.MethodHead, credsPath, tokenHeader, tok)
		if head.status != 200 || head.body != "" {
			t.Fatalf("HEAD: %d %q, want 200 and no body", head.status, head.body)
		}
		if got, want := head.header.Get("Content-Length"), fmt.Sprint(len(get.body)); got != want {
			t.Errorf("HEAD Content-Length %s, want the GET's %s", got, want)
		}
		if got := head.header.Get("Content-Type"); got != appJSON {
			t.Errorf("HEAD Content-Type %q, want %q", got, appJSON)
		}
		if got := h.do(t, http.MethodHead, credsPath).status; got != 401 {
			t.Errorf("HEAD without a token in TokenRequired mode: %d, want 401", got)
		}
		if st := h.srv.Stats(); st.HEADs != 2 || st.CredentialGETs != 1 || st.V1Requests != 1 {
			t.Errorf("Stats() = %+v, want 2 HEADs, 1 credential GET, 1 IMDSv1 request", st)
		}
	})
}

// TestFaultReset: a Reset fault drops the connection without an answer,
// over a socket as an RST, in memory as ECONNRESET.
func TestFaultReset(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{})
		h.srv.Inject(Fault{Target: CredentialsPath, Reset: true, Times: 1})
		_, err := h.send(t.Context(), http.MethodGet, credsPath)
		if err == nil {
			t.Fatal("reset GET got an answer")
		}
		if h.srv.URL == "" && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("in memory: error %v, want ECONNRESET", err)
		}
		if got := h.do(t, http.MethodGet, credsPath).status; got != 200 {
			t.Errorf("GET after the fault: %d, want 200", got)
		}
	})
}

// TestListen: the emulator as a real server on a given address, stopped by
// Close; Serve on a listener of the caller's.
func TestListen(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Config{Role: "listen-role"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q, want http://127.0.0.1:port", s.URL)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	h := harness{s, client, s.URL}
	if res := h.do(t, http.MethodGet, roleListPath); res.status != 200 || res.body != "listen-role" {
		t.Fatalf("role list: %d %q", res.status, res.body)
	}
	s.Close()
	if _, err := h.send(t.Context(), http.MethodGet, roleListPath); err == nil {
		t.Error("GET after Close got an answer")
	}
	if _, err := Listen(strings.TrimPrefix(s.URL, "http://")+"0000", Config{}); err == nil {
		t.Error("Listen on a bad address succeeded")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = NewHandler(Config{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	h = harness{s, client, "http://" + ln.Addr().String()}
	if res := h.do(t, http.MethodGet, roleListPath); res.status != 200 {
		t.Fatalf("role list through Serve: %d", res.status)
	}
	s.Close()
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Close returned %v, want http.ErrServerClosed", err)
	}
}

// TestFaultStallBody: the answer's status, headers and half its body
// arrive, then nothing more until the client gives up.
func TestFaultStallBody(t *testing.T) {
	s := NewServer(Config{})
	defer s.Close()
	s.Inject(Fault{Target: RoleListPath, StallBody: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+roleListPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(defaultRole)) {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	half := make([]byte, len(defaultRole)/2)
	if _, err := io.ReadFull(resp.Body, half); err != nil || string(half) != defaultRole[:len(half)] {
		t.Fatalf("first half %q, %v", half, err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the rest of the body arrived")
	}
}
