package proxycmd

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// --access-log sets the access log's level, or turns it off; answers of
// 500 or more stay warnings unless it is off.
func TestProxyAccessLogLevel(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		}
	}))
	for _, c := range []struct {
		args []string
		want []string // the access log's lines, by level and status
	}{
		{[]string{"--access-log", "off"}, nil},
		{[]string{"--access-log", "debug"}, []string{"WARN 503"}},
		{[]string{"--access-log", "debug", "-v"}, []string{"DEBUG 200", "DEBUG 200", "WARN 503"}},
		{nil, []string{"INFO 200", "INFO 200", "WARN 503"}},
	} {
		p := startProxy(t, f, append([]string{"--sign-host", "sts.eu-west-2.amazonaws.com", "--max-attempts", "1"}, c.args...)...)
		for _, path := range []string{"/", "/", "/fail"} {
			resp, err := http.Get(p.url + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		// Once stopped, every request's Done has run.
		if code := p.shutdown(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var got []string
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, "msg=request") {
				level, status := field(l, "level"), field(l, "status")
				got = append(got, level+" "+status)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%v: access log %q, want %q", c.args, got, c.want)
		}
	}
	r := runCmd(t, "", append(proxyArgs(f), "--access-log", "verbose")...)
	if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "--access-log") {
		t.Errorf("exit %d: %s", r.Code, r.Stderr)
	}
}

// field is the value of key=value in a text log line.
func field(line, key string) string {
	_, v, _ := strings.Cut(line, " "+key+"=")
	if key == "level" {
		_, v, _ = strings.Cut(line, "level=")
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}
