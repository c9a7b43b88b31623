package imds

import (
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
)

func TestParseFault(t *testing.T) {
	for spec, want := range map[string]imdstest.Fault{
		"500":                                {Status: 500},
		"token:hang,times=1":                 {Target: imdstest.TokenPath, Hang: true, Times: 1},
		"credentials:429,retry-after=2":      {Target: imdstest.CredentialsPath, Status: 429, RetryAfter: 2},
		"any:delay=2s":                       {Delay: 2 * time.Second},
		"creds:expired":                      {Target: imdstest.CredentialsPath, Expired: true},
		"roles:404,times=3":                  {Target: imdstest.RoleListPath, Status: 404, Times: 3},
		"credentials:body={\"a\":1,\"b\":2}": {Target: imdstest.CredentialsPath, Body: `{"a":1,"b":2}`},
		"credentials:code=Bad,message=no":    {Target: imdstest.CredentialsPath, Code: "Bad", Message: "no"},
	} {
		got, err := parseFault(spec)
		if err != nil || got != want {
			t.Errorf("parseFault(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "disk:500", "token:", "999", "status=42", "times=-1", "delay=soon", "delay=-1s", "flaky", "code="} {
		if _, err := parseFault(bad); err == nil {
			t.Errorf("parseFault(%q) accepted", bad)
		}
	}
	r := runCmd(t, "", "imds", "--fault", "disk:500")
	if r.Code != base.ExitUsage || !strings.Contains(r.Stderr, "unknown target") {
		t.Errorf("bad fault: exit %d %q", r.Code, r.Stderr)
	}
	for _, args := range [][]string{{"--v1", "--v2-only"}, {"--rotate-before", "7h"}, {"--imds-endpoint", "http://127.0.0.1:1"}, {"extra"}} {
		if r := runCmd(t, "", append([]string{"imds"}, args...)...); r.Code != base.ExitUsage {
			t.Errorf("imds %v: exit %d %q", args, r.Code, r.Stderr)
		}
	}
}
