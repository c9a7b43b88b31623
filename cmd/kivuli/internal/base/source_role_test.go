package base_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// --role-arn: AssumeRole on top of the instance role, signed with its
// credentials (checked by the endpoint standing in for STS).
func TestSourceRoleARN(t *testing.T) {
	testkit.ChainEnv(t)
	var form string
	sts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		form = r.Form.Encode()
		exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAASSUMEDROLE12345</AccessKeyId><SecretAccessKey>assumed/secret</SecretAccessKey>
<SessionToken>assumed/token+AQ==</SessionToken><Expiration>` + exp + `</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/deploy/x</Arn></AssumedRoleUser>
</AssumeRoleResult></AssumeRoleResponse>`))
	})
	f := wiretest.NewFixture(t, imdstest.Config{}, sts)
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://"+f.Host())
	t.Setenv("AWS_REGION", "eu-west-2")
	r := runCmd(t, "", "creds", "--imds-endpoint", f.IMDS.URL, "--role-arn", "arn:aws:iam::123456789012:role/deploy",
		"--external-id", "ext-1", "--role-session-name", "nightly", "--format", "env")
	if r.Code != 0 || !strings.Contains(r.Stdout, "AWS_ACCESS_KEY_ID=ASIAASSUMEDROLE12345\n") || !strings.Contains(r.Stdout, "AWS_SESSION_TOKEN=assumed/token+AQ==\n") {
		t.Fatalf("exit %d %q %s", r.Code, r.Stdout, r.Stderr)
	}
	rec := f.Accepted(t)
	if rec.Service != "sts" || rec.AccessKeyID != f.IMDS.Current().AccessKeyID {
		t.Errorf("AssumeRole signed as %s with %s", rec.Service, rec.AccessKeyID)
	}
	for _, want := range []string{"Action=AssumeRole", "ExternalId=ext-1", "RoleSessionName=nightly", "RoleArn=arn"} {
		if !strings.Contains(form, want) {
			t.Errorf("AssumeRole form %q lacks %q", form, want)
		}
	}
}
