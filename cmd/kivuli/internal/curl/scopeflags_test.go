package curl

import (
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// A --region or --service that the host contradicts is a usage error
// naming both, before any credentials are fetched; where the host names
// nothing, or is a tunnel or listed with --allow-host, the flags are the
// scope.
func TestCurlScopeFlagsAgainstHost(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	dry := func(args ...string) []string {
		return append([]string{"curl", "--imds-endpoint", f.IMDS.URL, "--dry-run"}, args...)
	}
	es := "https://search-x.eu-west-2.es.amazonaws.com/"
	mrap := "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com/k"
	for _, c := range []struct {
		args []string
		want []string // in the message
	}{
		{dry("--region", "eu-west2", es), []string{"--region eu-west2", "eu-west-2", "search-x.eu-west-2.es.amazonaws.com"}},
		{dry("--region", "us-east-1", "--service", "es", es), []string{"--region us-east-1", "eu-west-2"}},
		{dry("--service", "s3", es), []string{"--service s3", "es's"}},
		{dry("--region", "us-east-1", "https://b.s3.eu-west-2.amazonaws.com/k"), []string{"--region us-east-1", "eu-west-2"}},
		{dry("--region", "eu-west-1", "https://s3.dualstack.eu-west-2.amazonaws.com/b/k"), []string{"--region eu-west-1", "eu-west-2"}},
		{dry("--region", "eu-west-1", mrap), []string{"--region eu-west-1", "SigV4a", "region set *"}},
	} {
		r := runCmd(t, "", c.args...)
		if r.Code != base.ExitUsage {
			t.Errorf("%v: exit %d, want 2: %s", c.args[4:], r.Code, r.Stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%v: message lacks %q: %s", c.args[4:], w, r.Stderr)
			}
		}
	}
	for _, c := range []struct {
		args  []string
		scope string // in the string to sign
	}{
		{dry("--region", "eu-west-2", "--service", "es", es), "/eu-west-2/es/aws4_request"},
		// The global S3 name implies us-east-1 but names no region: a
		// bucket there may be in any.
		{dry("--region", "eu-west-1", "https://b.s3.amazonaws.com/k"), "/eu-west-1/s3/aws4_request"},
		{dry("--region", "*", mrap), "s3/aws4_request"},
		// A tunnel, and a host listed: the flags say.
		{dry("--region", "eu-west-1", "--allow-host", f.Host(), "-H", "Host: search-x.eu-west-2.es.amazonaws.com", "http://"+f.Host()+"/"), "/eu-west-1/es/aws4_request"},
		{dry("--service", "aoss", "--allow-host", "*.es.amazonaws.com", es), "/eu-west-2/aoss/aws4_request"},
		{dry("--region", "eu-west-1", "--service", "es", "--allow-host", "search.example.com", "https://search.example.com/"), "/eu-west-1/es/aws4_request"},
	} {
		r := runCmd(t, "", c.args...)
		if r.Code != 0 || !strings.Contains(r.Stderr, c.scope) {
			t.Errorf("%v: exit %d, want 0 and %q signed: %s", c.args[4:], r.Code, c.scope, r.Stderr)
		}
	}
}
