package kivuli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A signed request names two hosts: the one net/http dials (URL.Host) and
// the one the signature is for (Request.Host when set, else URL.Host). A
// request may be signed only when both are AWS endpoints or listed in
// [Transport.AllowedHosts]: checking the signed name alone would let a
// request signed for sts.amazonaws.com be delivered to any server the URL
// names, which could replay it to AWS.

// hostName is a host of a request, parsed for the allow-list.
type hostName struct {
	name string // lower case, without port or brackets; an IP literal with its zone
	port string // "" when none
	ip   bool   // an IP literal: never an AWS endpoint
}

// parseHost parses host (host, host:port, [v6], [v6]:port) strictly: a
// name must be ASCII letters, digits, '-' and '_' in non-empty labels,
// because names are matched on their ASCII form (strings.ToLower folds
// non-ASCII letters such as 'İ' into ASCII ones, so a name could pass the
// check and be dialled as a different, punycode, name). IDNA names arrive
// as "xn--" labels, which are ASCII.
func parseHost(host string) (hostName, error) {
	var h hostName
	rest := host
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return h, fmt.Errorf("host %q: unclosed '['", host)
		}
		h.name, rest = rest[1:end], rest[end+1:]
		h.ip = true
		if _, err := netip.ParseAddr(h.name); err != nil {
			return h, fmt.Errorf("host %q is not a valid IPv6 literal", host)
		}
		if rest != "" && rest[0] != ':' {
			return h, fmt.Errorf("host %q: unexpected text after ']'", host)
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		h.name, rest = rest[:i], rest[i:]
	} else {
		h.name, rest = rest, ""
	}
	if rest != "" {
		h.port = rest[1:]
		if n, err := strconv.Atoi(h.port); err != nil || n < 1 || n > 65535 || strings.Trim(h.port, "0123456789") != "" {
			return h, fmt.Errorf("host %q has a malformed port", host)
		}
	}
	if h.ip {
		h.name = asciiLower(h.name)
		return h, nil
	}
	if strings.ContainsAny(h.name, ":%") {
		return h, fmt.Errorf("host %q: an IPv6 literal must be in brackets", host)
	}
	if strings.Trim(h.name, "0123456789.") == "" { // ParseAddr allocates its error
		if a, err := netip.ParseAddr(h.name); err == nil && a.Is4() {
			h.ip = true
			return h, nil
		}
	}
	if err := checkHostName(h.name); err != nil {
		return h, fmt.Errorf("host %q %s", host, err)
	}
	h.name = asciiLower(h.name)
	return h, nil
}

// checkHostName returns what is wrong with a DNS name, or nil.
func checkHostName(name string) error {
	if name == "" {
		return fmt.Errorf("is empty")
	}
	if strings.HasSuffix(name, ".") {
		return fmt.Errorf("ends with a dot: remove it")
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 0x80:
			return fmt.Errorf("is not ASCII: use its IDNA form (xn--...)")
		case c == '.':
			if label == 0 {
				return fmt.Errorf("has an empty label")
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return fmt.Errorf("holds %q, which no host name holds", c)
		}
		if label++; label > 63 {
			return fmt.Errorf("has a label longer than 63 bytes")
		}
	}
	return nil
}

// asciiLower lowers ASCII letters only, allocating only when s has upper
// case ones.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isLoopback reports whether h is a loopback address or localhost.
func (h hostName) isLoopback() bool {
	if h.ip {
		a, err := netip.ParseAddr(h.name)
		return err == nil && a.Unmap().IsLoopback()
	}
	return h.name == "localhost" || strings.HasSuffix(h.name, ".localhost")
}

// isAWSEndpoint reports whether h is a host AWS runs: a name under an AWS
// domain that is not one of the hosts customers run there (EC2 instances'
// public names, load balancers, PrivateLink endpoint services), or an
// endpoint of the table under another domain (signin's). An IP
// literal never is. API Gateway, Lambda function URLs and VPC Lattice
// services are AWS endpoints: signing for them is their IAM authorisation.
func (h hostName) isAWSEndpoint() bool {
	if h.ip {
		return false
	}
	for _, d := range awsDomains {
		if prefix, ok := strings.CutSuffix(h.name, d); ok && prefix != "" {
			return !customerHost(prefix)
		}
	}
	// Under another domain, only the exact names that the SDK's endpoint
	// rules give (REGION.signin.aws.amazon.com): nothing else of
	// amazon.com is.
	_, _, ok := lookupHost(h.name)
	return ok
}

// runsCustomerCode reports whether h is an AWS endpoint that hands
// requests to customers' code (API Gateway, Lambda function URLs, VPC
// Lattice services, AppSync resolvers, S3 Object Lambda functions):
// requests may be signed for it, but what it answers is the customer's.
func (h hostName) runsCustomerCode() bool {
	return strings.HasSuffix(h.name, ".on.aws") || strings.Contains(h.name, ".execute-api.") ||
		strings.Contains(h.name, ".appsync-api.") || strings.Contains(h.name, ".appsync-realtime-api.") ||
		strings.Contains(h.name, ".s3-object-lambda.")
}

// customerHost reports whether prefix, the labels of a name before its AWS
// domain, names a host that a customer runs, or whose answers a customer's
// code or content makes:
//
//	ec2-203-0-113-25.compute-1.amazonaws.com          EC2 public DNS, us-east-1
//	ec2-203-0-113-25.eu-west-2.compute.amazonaws.com  EC2 public DNS, other regions
//	my-alb-123.eu-west-2.elb.amazonaws.com            Application and Classic Load Balancers
//	my-nlb-123.elb.eu-west-2.amazonaws.com            Network and Gateway Load Balancers
//	vpce-0abc.vpce-svc-0123.eu-west-2.vpce.amazonaws.com  a PrivateLink endpoint service
//	bucket.s3-website-us-east-1.amazonaws.com         S3 static websites
//	bucket.s3-website.eu-west-2.amazonaws.com
//	bucket.s3-website.dualstack.eu-west-2.amazonaws.com
//	env.vfs.cloud9.eu-west-2.amazonaws.com            Cloud9 application previews
//	app.edge-1.vai-2.prod.verified-access.eu-west-2.amazonaws.com  Verified Access applications
//	abcd.c2.eu-west-2.airflow.amazonaws.com           MWAA web servers
//
// It looks at the labels in place, without splitting them: it runs on every
// host switch of a Transport, which allocates only the route it keeps.
func customerHost(prefix string) bool {
	rest, last := cutLast(prefix)
	switch {
	case last == "compute-1", last == "compute", last == "elb":
		return true
	case last == "vpce":
		return strings.HasPrefix(prefix, "vpce-svc-") || strings.Contains(prefix, ".vpce-svc-")
	case strings.HasPrefix(last, "s3-website-"):
		return true
	case last == "airflow":
		// An environment's web server: NAME.cN.REGION.airflow; the MWAA
		// API is airflow.REGION and env.airflow.REGION.
		rest, region := cutLast(rest)
		_, cell := cutLast(rest)
		return isRegion(region) && len(cell) > 1 && cell[0] == 'c' && strings.Trim(cell[1:], "0123456789") == ""
	case isRegion(last):
		return hasLastLabels(rest, "elb") || hasLastLabels(rest, "s3-website") || hasLastLabels(rest, "s3-website.dualstack") ||
			hasLastLabels(rest, "vfs.cloud9") || hasLastLabels(rest, "verified-access")
	}
	return false
}

// hasLastLabels reports whether name ends with the whole labels labels.
func hasLastLabels(name, labels string) bool {
	return strings.HasSuffix(name, labels) && (len(name) == len(labels) || name[len(name)-len(labels)-1] == '.')
}

// listed reports whether h matches an entry of allowed: a host name or IP
// literal, which matches on any port ("search.example.com", "::1"), a host
// and port ("localhost:9200", "[::1]:9200"), or a wildcard that matches the
// subdomains of a name but never an IP literal ("*.example.com"). Entries
// are matched on their ASCII form, case-insensitively; an entry that is
// not a valid host matches nothing.
func (h hostName) listed(allowed []string) bool {
	for _, a := range allowed {
		if w, ok := strings.CutPrefix(a, "*."); ok {
			if !h.ip && checkHostName(w) == nil && len(h.name) > len(w) &&
				h.name[len(h.name)-len(w)-1] == '.' && strings.EqualFold(h.name[len(h.name)-len(w):], w) {
				return true
			}
			continue
		}
		e, err := parseHost(a)
		if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") { // "::1", unbracketed
			e, err = hostName{name: a, ip: true}, nil
		}
		if err != nil || e.ip != h.ip || e.port != "" && e.port != h.port {
			continue
		}
		if e.ip && sameAddr(e.name, h.name) || !e.ip && e.name == h.name {
			return true
		}
	}
	return false
}

// sameAddr reports whether two IP literals are the same address and zone.
func sameAddr(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x == y
}

// checkAllowed returns what is wrong with an AllowedHosts entry, or nil:
// each must be a host name, an IP address, either with a port, or a
// wildcard over a name of two labels or more ("*.example.com"; "*.com"
// would allow half the internet).
func checkAllowed(entry string) error {
	if w, ok := strings.CutPrefix(entry, "*."); ok {
		if err := checkHostName(w); err != nil || !strings.Contains(w, ".") {
			return invalid(ErrInvalidConfig, "Transport.AllowedHosts: %q: a wildcard must stand for the subdomains of a name of two labels or more, without a port", entry)
		}
		return nil
	}
	if strings.Count(entry, ":") > 1 && !strings.HasPrefix(entry, "[") {
		if _, err := netip.ParseAddr(entry); err == nil {
			return nil
		}
	}
	if _, err := parseHost(entry); err != nil {
		return invalid(ErrInvalidConfig, "Transport.AllowedHosts: %q is not a host, host:port, IP address or *.name", entry)
	}
	return nil
}
