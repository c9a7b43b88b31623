package proxycmd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// --no-verify-ssl reaches a listed tunnel with a self-signed certificate,
// loudly (a warning at start, /readyz); it is refused for an AWS name, an
// http:// upstream, and beside --upstream-server-name.
func TestProxyNoVerifySSL(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	v := &sigv4test.Verifier{Secrets: sigv4test.Lookup(f.IMDS.Lookup)}
	tunnel := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := v.Verify(r); rec.Err != nil {
			http.Error(w, rec.Err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(tunnel.Close)
	host := tunnel.Listener.Addr().String()
	args := []string{"proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--imds-endpoint", f.IMDS.URL,
		"--upstream", "https://" + host, "--allow-host", host, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com"}
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusBadGateway}, // httptest's certificate is of no CA this machine trusts
		{[]string{"--no-verify-ssl"}, http.StatusOK},
	} {
		p := startRaw(t, f, append(args, c.args...))
		resp, err := http.Get(p.url + "/_cluster/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%v: %d %s", c.args, resp.StatusCode, b)
		}
		ready, err := http.Get(p.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(ready.Body)
		ready.Body.Close()
		loud := strings.Contains(p.logs.String(), "level=WARN") && strings.Contains(p.logs.String(), "NOT verified")
		if said := strings.Contains(string(rb), "--no-verify-ssl"); said != (c.args != nil) || loud != (c.args != nil) {
			t.Errorf("%v: /readyz %q, warned %v:\n%s", c.args, rb, loud, p.logs.String())
		}
	}
	for _, c := range []struct{ args []string }{
		{[]string{"--upstream", "https://search-logs-abc.eu-west-2.es.amazonaws.com"}},
		{[]string{"--upstream", "https://my-alb-123.eu-west-2.elb.amazonaws.com", "--allow-host", "my-alb-123.eu-west-2.elb.amazonaws.com", "--service", "es", "--region", "eu-west-2"}},
		{[]string{"--upstream", "http://" + host, "--allow-host", host, "--service", "es", "--region", "eu-west-2"}},
		{[]string{"--upstream", "https://" + host, "--allow-host", host, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--upstream-server-name", "search-logs-abc.eu-west-2.es.amazonaws.com"}},
	} {
		r := runCmd(t, "", append([]string{"proxy", "--listen", "127.0.0.1:0", "--imds-endpoint", noIMDS, "--no-verify-ssl"}, c.args...)...)
		if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--no-verify-ssl") {
			t.Errorf("%v: exit %d:\n%s", c.args, r.Code, r.Stderr)
		}
	}
}
