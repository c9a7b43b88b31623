package proxycmd

import (
	"crypto/tls"
	"net/url"
	"strings"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// --no-verify-ssl (aws-sigv4-proxy's flag) turns off the verification of
// the upstream's certificate, for a tunnel or a test endpoint with a
// self-signed one. Whoever can answer for the upstream then gets the
// requests, signed as the role, and the answers the clients trust: so it
// is allowed only for an https upstream that is not an AWS name (which
// kivuli proxy reaches only when it is listed with --allow-host), never
// with --upstream-server-name, whose point is verification, and it is
// loud: a warning at start, and /readyz says so.

// awsDomains are the DNS suffixes of AWS's endpoints (the library's
// endpoints_table.go awsDomains, which it does not export).
var awsDomains = []string{
	".amazonaws.com", ".amazonaws.com.cn", ".amazonaws.eu", ".api.aws", ".on.aws",
	".api.amazonwebservices.com.cn", ".api.amazonwebservices.eu", ".c2s.ic.gov", ".sc2s.sgov.gov",
	".cloud.adc-e.uk", ".csp.hci.ic.gov", ".api.aws.ic.gov", ".api.aws.scloud", ".api.aws.hci.ic.gov",
	".api.cloud-aws.adc-e.uk",
}

// awsName reports whether host (host[:port]) is under an AWS domain, or
// an endpoint the library knows.
func awsName(host string) bool {
	if service, _ := kivuli.InferScope(host, "/"); service != "" {
		return true
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if h, _, ok := strings.Cut(name, ":"); ok && !strings.Contains(h, "]") {
		name = h
	}
	for _, d := range awsDomains {
		if strings.HasSuffix(name, d) || name == d[1:] {
			return true
		}
	}
	return false
}

// checkNoVerify adds a problem if --no-verify-ssl is given where it is
// not allowed, and returns the upstream's TLS configuration it makes.
func (f *proxyFlags) checkNoVerify(p *problems) *tls.Config {
	if !f.noVerifySSL {
		return nil
	}
	u, err := url.Parse(f.upstream)
	switch {
	case err != nil || f.upstream == "":
		return nil // --upstream's own problem
	case u.Scheme != "https":
		p.add(base.UsageErrorf("--no-verify-ssl: --upstream %s is not https: there is no certificate to verify", u.Redacted()))
	case awsName(u.Host):
		p.add(base.UsageErrorf("--no-verify-ssl: --upstream's host %s is an AWS name: its certificate is always verified (a tunnel to it is an --upstream of your own, listed with --allow-host, and --sign-host %s)", u.Host, u.Host))
	case f.serverName != "":
		p.add(base.UsageErrorf("--no-verify-ssl and --upstream-server-name: the one turns off the verification the other asks for"))
	default:
		return &tls.Config{InsecureSkipVerify: true}
	}
	return nil
}
