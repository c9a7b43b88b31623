package curl

import (
	"net"
	"net/http"
	"strings"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// checkScope refuses a --service or --region that contradicts the AWS
// host the request is signed for: the endpoint knows its own service and
// region and refuses any other, so a typo (eu-west2) would only come back
// as a signature error. The host is the flags' alone where it names
// nothing, and for a tunnel or a host listed with --allow-host, which is
// signed as the flags say (the way to sign for an endpoint newer than the
// library's data). A host that takes SigV4a only (an S3 Multi-Region
// Access Point) is signed for its region set, *, which the library keeps
// whatever the region is: another --region is refused rather than
// dropped.
func (f *curlFlags) checkScope(req *http.Request) error {
	if f.service == "" && f.region == "" {
		return nil
	}
	host := req.URL.Host
	if req.Host != "" && !strings.EqualFold(req.Host, host) {
		return nil // a tunnel: only a listed host may carry another's name
	}
	if listedHost(host, f.allowHosts) {
		return nil
	}
	service, region := kivuli.InferScope(host, req.URL.Path)
	if service != "" && f.service != "" && !strings.EqualFold(f.service, service) {
		return base.UsageErrorf("--service %s contradicts the host %s, which is %s's: leave --service out (or list the host with --allow-host to sign it as the flags say)", f.service, host, service)
	}
	switch {
	case f.region == "" || region == "" || f.region == region:
	case region == "*":
		return base.UsageErrorf("--region %s: the host %s takes SigV4a only, signed for the region set *, whatever --region says: leave --region out", f.region, host)
	case namesRegion(host, region):
		return base.UsageErrorf("--region %s contradicts the host %s, which names %s: leave --region out (or list the host with --allow-host to sign it as the flags say)", f.region, host, region)
	}
	return nil
}

// namesRegion reports whether host spells region out, as
// search-x.eu-west-2.es.amazonaws.com and s3-eu-west-2.amazonaws.com do;
// the global names (s3.amazonaws.com, sts.amazonaws.com) imply
// us-east-1 without naming it, and a bucket there may be in any region.
func namesRegion(host, region string) bool {
	h := strings.ToLower(hostOnly(host))
	for off := 0; ; {
		i := strings.Index(h[off:], region)
		if i < 0 {
			return false
		}
		i += off
		end := i + len(region)
		if (i == 0 || h[i-1] == '.' || h[i-1] == '-') && (end == len(h) || h[end] == '.') {
			return true
		}
		off = i + 1
	}
}

// listedHost reports whether host matches an --allow-host entry: a host
// on any port, a host:port, or *.domain over its subdomains.
func listedHost(host string, allowed []string) bool {
	name := strings.ToLower(hostOnly(host))
	for _, a := range allowed {
		a = strings.ToLower(a)
		if d, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(name, "."+d) {
				return true
			}
			continue
		}
		if a == strings.ToLower(host) || hostOnly(a) == name && !strings.Contains(strings.TrimPrefix(a, name), ":") {
			return true
		}
	}
	return false
}

// hostOnly is host without its port or IPv6 brackets.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}
