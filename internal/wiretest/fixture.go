package wiretest

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// Fixture is an emulated IMDS and a checking endpoint that knows its keys.
type Fixture struct {
	IMDS *imdstest.Server
	AWS  *sigv4test.Server
}

// NewFixture starts the emulator with cfg, and the endpoint in front of
// next (see sigv4test.NewServer); both close when the test ends.
func NewFixture(t *testing.T, cfg imdstest.Config, next http.Handler) *Fixture {
	t.Helper()
	imds := imdstest.NewServer(cfg)
	t.Cleanup(imds.Close)
	v := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
		c, ok := imds.Lookup(id)
		return sigv4test.Credentials(c), ok
	}}
	aws := sigv4test.NewServer(v, next)
	t.Cleanup(aws.Close)
	return &Fixture{IMDS: imds, AWS: aws}
}

// Host is the checking endpoint's host:port.
func (f *Fixture) Host() string { return f.AWS.Listener.Addr().String() }

// Secrets are the strings that must never appear in output other than
// the credentials printed on purpose: every secret key and token issued.
func (f *Fixture) Secrets() []string {
	c := f.IMDS.Current()
	return []string{c.SecretAccessKey, c.SessionToken}
}

// NoSecrets fails t if s holds a secret of f or a signature.
func NoSecrets(t *testing.T, f *Fixture, what, s string) {
	t.Helper()
	for _, sec := range f.Secrets() {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s holds a secret:\n%s", what, s)
		}
	}
	if m := signatureRE.FindString(s); m != "" && !strings.HasSuffix(m, "REDACTED") {
		t.Errorf("%s holds a signature %q", what, m)
	}
	for _, m := range sigParamRE.FindAllString(s, -1) {
		if !strings.HasSuffix(m, "=REDACTED") {
			t.Errorf("%s holds %q", what, m)
		}
	}
}

var (
	sigParamRE  = regexp.MustCompile(`X-Amz-Signature=[^&\s]*`)
	signatureRE = regexp.MustCompile(`(?i)(Signature=)[0-9a-f]+`)
)

// Accepted fails t unless the endpoint's last record is an accepted
// signature, and returns it.
func (f *Fixture) Accepted(t *testing.T) sigv4test.Record {
	t.Helper()
	recs := f.AWS.Records()
	if len(recs) == 0 {
		t.Fatal("the endpoint received nothing")
	}
	rec := recs[len(recs)-1]
	if rec.Err != nil {
		t.Fatalf("the endpoint refused the signature: %v", rec.Err)
	}
	return rec
}
