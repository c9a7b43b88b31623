package guard

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The guard's parts: the names a Host may have, the origins that are the
// server's own.
func TestGuardRules(t *testing.T) {
	g, err := New([]string{"Proxy.Internal:8080", "[fd00::1]"}, "ServeHosts", []string{"https://grafana.example"}, "AllowOrigins")
	if err != nil {
		t.Fatal(err)
	}
	g.ServeListen("myhost:8080")
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:1": true, "[::1]:80": true, "[::1]": true, "192.0.2.7:9": true, "169.254.169.254": true,
		"localhost": true, "LOCALHOST:8080": true, "proxy.internal": true, "proxy.internal:1": true, "myhost:9": true, "": true,
		"evil.example": false, "evil.example:8080": false, "localhost.": false, "a.localhost": false, "127.0.0.1.nip.io": false,
		"2130706433": false, "0x7f.0.0.1": false, "proxy.internal.evil.example": false, "myhost.evil.example": false,
	} {
		if got := g.hostServed(host); got != want {
			t.Errorf("Host %q served: %v, want %v", host, got, want)
		}
	}
	for _, c := range []struct {
		host, origin string
		tls          bool
		want         bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", false, true},
		{"localhost:8080", "http://LOCALHOST:8080", false, true},
		{"localhost:80", "http://localhost", false, true},
		{"localhost", "http://localhost:80", false, true},
		{"localhost:443", "https://localhost", true, true},
		{"[::1]:8080", "http://[::1]:8080", false, true},
		{"127.0.0.1:8080", "https://127.0.0.1:8080", false, false},
		{"127.0.0.1:8443", "http://127.0.0.1:8443", true, false},
		{"127.0.0.1:8080", "http://127.0.0.1:8081", false, false},
		{"127.0.0.1:8080", "http://localhost:8080", false, false},
		{"127.0.0.1:8080", "null", false, false},
		{"127.0.0.1:8080", "http://127.0.0.1:8080/path", false, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = c.host
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := sameOrigin(r, []string{c.origin}); got != c.want {
			t.Errorf("Host %s, Origin %s, TLS %v: same origin %v, want %v", c.host, c.origin, c.tls, got, c.want)
		}
	}
	r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
	r.Header["Origin"] = []string{"http://127.0.0.1", "http://evil.example"}
	if rf := g.Check(r); rf == nil || rf.Status != http.StatusForbidden {
		t.Errorf("two Origins: %+v", rf)
	}
	r.Host = strings.Repeat("a", 1000) + ".example"
	if rf := g.Check(r); rf == nil || len(rf.Msg) > 400 {
		t.Errorf("a long Host: %s", fmt.Sprint(rf))
	}
}
