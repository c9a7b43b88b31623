package proxycmd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// noIMDS is an IMDS endpoint on loopback where nothing listens: a run
// that asked it for credentials would exit 3, and nothing leaves the
// machine.
const noIMDS = "http://127.0.0.1:1"

// Every wrong or missing flag is named in one run, the signer's refusals
// included, before the credential source is asked.
func TestProxyStartNamesEveryProblem(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--upstream", "https://localhost:9200"}, base.ExitRefused,
			[]string{"2 problems", "--allow-host", "--service"}},
		{[]string{"--upstream", "https://localhost:9200", "--max-attempts", "0", "--log-format", "xml", "--listen", "0.0.0.0:0"}, base.ExitUsage,
			[]string{"5 problems", "--allow-host", "--service", "--max-attempts", "--log-format", "--allow-remote"}},
		{[]string{"--upstream", "http://search-x.eu-west-2.es.amazonaws.com", "--max-conns", "0"}, base.ExitUsage,
			[]string{"2 problems", "in clear", "--max-conns"}},
		// One problem is said as it is.
		{[]string{"--upstream", "https://localhost:9200", "--allow-host", "localhost:9200"}, base.ExitRefused,
			[]string{"--upstream https://localhost:9200: cannot tell the signing service or region: no rule knows the service of host \"localhost\": set --service"}},
	} {
		r := runCmd(t, "", append([]string{"proxy", "--imds-endpoint", noIMDS, "--listen", "127.0.0.1:0"}, c.args...)...)
		if r.Code != c.code {
			t.Errorf("%v: exit %d, want %d:\n%s", c.args, r.Code, c.code, r.Stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%v: no %q in:\n%s", c.args, w, r.Stderr)
			}
		}
		if strings.Contains(r.Stderr, "EC2") || strings.Count(r.Stderr, "kivuli: ") != 1 {
			t.Errorf("%v: want one message, and no credentials asked for:\n%s", c.args, r.Stderr)
		}
	}
}

// A host that names no region is signed in the instance's region, from
// IMDS's placement/region, as kivuli exec does; one that names its own
// keeps it.
func TestProxyRegionFromIMDS(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	f := wiretest.NewFixture(t, imdstest.Config{Region: "ap-southeast-2"}, nil)
	for _, c := range []struct {
		args   []string
		region string
	}{
		{[]string{"--service", "es"}, "ap-southeast-2"},
		{[]string{"--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com"}, "eu-west-2"},
		{[]string{"--service", "es", "--region", "eu-north-1"}, "eu-north-1"},
	} {
		p := startProxy(t, f, c.args...)
		resp, err := http.Get(p.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if rec := f.Accepted(t); rec.Region != c.region || resp.StatusCode != http.StatusOK {
			t.Errorf("%v: %d, signed for %s, want %s", c.args, resp.StatusCode, rec.Region, c.region)
		}
		if code := p.shutdown(t); code != 0 {
			t.Fatalf("exit %d:\n%s", code, p.logs.String())
		}
	}
}

// When IMDS does not tell the region either, the run stops, saying what
// would.
func TestProxyRegionNowhere(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	imds := imdstest.NewHandler(imdstest.Config{})
	t.Cleanup(imds.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The SDK reads the region from the identity document.
		if strings.Contains(r.URL.Path, "/placement/") || strings.Contains(r.URL.Path, "/instance-identity/") {
			http.NotFound(w, r)
			return
		}
		imds.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// Nothing listens on port 9: the run must stop before it listens,
	// or, if it does not, when the test ends.
	ctx, cancel := context.WithTimeout(t.Context(), wiretest.FailAfter)
	defer cancel()
	var stderr testkit.SyncBuffer
	code := runContext(ctx, []string{"proxy", "--listen", "127.0.0.1:0", "--imds-endpoint", srv.URL,
		"--upstream", "http://127.0.0.1:9", "--allow-host", "127.0.0.1:9", "--service", "es"}, strings.NewReader(""), io.Discard, &stderr, os.Environ())
	if code != base.ExitRefused || !strings.Contains(stderr.String(), "set --region") || !strings.Contains(stderr.String(), "placement/region") {
		t.Errorf("exit %d:\n%s", code, stderr.String())
	}
}

// Several proxies run on one machine with no flag but their --listen:
// the admin listener is opened only when --admin asks for it.
func TestProxyNoAdminByDefault(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	args := []string{"proxy", "--listen", "127.0.0.1:0", "--imds-endpoint", f.IMDS.URL,
		"--upstream", "http://" + f.Host(), "--allow-host", f.Host(), "--sign-host", "sts.eu-west-2.amazonaws.com"}
	a, b := startRaw(t, f, args), startRaw(t, f, args)
	for _, p := range []*proxyRun{a, b} {
		if p.admin != "" || strings.Contains(p.logs.String(), "kivuli proxy: admin") {
			t.Errorf("an admin listener without --admin:\n%s", p.logs.String())
		}
		resp, err := http.Get(p.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p.url, resp.StatusCode)
		}
	}
}
