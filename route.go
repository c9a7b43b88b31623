package kivuli

// A route is what a Transport decides from a request's URL and Host
// alone, before any credentials are fetched: that it may be signed at all
// (hosts.go), its signing scope (scope.go) and its policy (policy.go).

import (
	"net/http"
	"net/url"
	"strings"
)

// route is what a Transport decides from a request's hosts and scheme
// alone: that it may be signed, its signing scope and its policy. The
// fields it comes from are fixed once the Transport is in use, so it is
// kept for the last hosts, and a run of requests to one host (the common
// case) decides it once rather than parsing the hosts, checking the
// allow-list, inferring the scope and looking up the policy on every
// request.
type route struct {
	// The key: URL.Host, Request.Host and URL.Scheme, as given.
	dial, host, scheme string

	service, region string // region: the region set when sigv4a
	policy          Policy
	// sigv4a: signed with SigV4a (sigv4a.go), for the region set region.
	sigv4a bool
	// fromAWS reports that the dialled host is an AWS endpoint that runs
	// no customer's code, so that its answers may correct the clock.
	fromAWS bool
	// plaintext reports a request sent in clear (http://, ws://), which
	// may go out only where no HTTP proxy sees it (plaintext.go).
	plaintext bool
}

// route returns the route of req, the last one's when its hosts and
// scheme are the same. It returns a copy, so that a route not kept costs
// no allocation.
func (t *Transport) route(req *http.Request) (route, error) {
	u := req.URL
	if rt := t.last.Load(); rt != nil && rt.dial == u.Host && rt.host == req.Host && rt.scheme == u.Scheme {
		return *rt, nil
	}
	rt, byPath, err := t.decide(req)
	if err != nil {
		return route{}, err
	}
	if !byPath {
		kept := rt
		t.last.Store(&kept)
	}
	return rt, nil
}

// decide makes the route of req: both its hosts must be AWS endpoints or
// listed in AllowedHosts, and a request in clear must go to a listed or
// loopback host. byPath reports that the scope depended on the path too.
func (t *Transport) decide(req *http.Request) (rt route, byPath bool, err error) {
	u := req.URL
	if u.Host == "" {
		return rt, false, invalidRequest("the URL has no host", nil)
	}
	for _, a := range t.AllowedHosts {
		if err := checkAllowed(a); err != nil {
			return rt, false, err
		}
	}
	scheme := asciiLower(u.Scheme)
	var plaintext bool
	switch scheme {
	case "https", "wss":
	case "http", "ws":
		plaintext = true
	default:
		return rt, false, invalid(ErrInvalidRequest, "the URL's scheme %q is none of https, wss, http and ws", u.Scheme)
	}
	dial, err := parseHost(u.Host)
	if err != nil {
		return rt, false, invalid(ErrHostNotAllowed, "%v", err)
	}
	dialListed, dialAWS := dial.listed(t.AllowedHosts), dial.isAWSEndpoint()
	if !dialListed && !dialAWS {
		return rt, false, invalid(ErrHostNotAllowed, "%q is not an AWS endpoint (add it to Transport.AllowedHosts if it is yours)", u.Host)
	}
	signed := dial
	if req.Host != "" && req.Host != u.Host {
		if signed, err = parseHost(req.Host); err != nil {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host: %v", err)
		}
		if !signed.listed(t.AllowedHosts) && !signed.isAWSEndpoint() {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host %q, the host the request would be signed for, is not an AWS endpoint (add it to Transport.AllowedHosts if it is yours)", req.Host)
		}
		// Only a listed host, a tunnel, is dialled for another one: an AWS
		// host that runs customers' code (a function URL, an API) must not
		// receive a request signed for STS.
		if !dialListed && signed.name != dial.name {
			return rt, false, invalid(ErrHostNotAllowed, "Request.Host %q is not URL.Host %q, which is not listed in Transport.AllowedHosts: only a listed host (a tunnel) may be sent a request signed for another", req.Host, u.Host)
		}
	}
	if plaintext && !dialListed && !dial.isLoopback() {
		return rt, false, invalid(ErrPlaintext, "%s://%s would carry the signature and the session token readable by the network and any HTTP proxy: use %ss://, or list the host in Transport.AllowedHosts to allow it", scheme, u.Host, scheme)
	}
	service, region, pol, v4a, byPath, err := t.signingScope(signed.name, u.Path)
	if err != nil {
		return rt, false, err
	}
	return route{
		dial: u.Host, host: req.Host, scheme: u.Scheme,
		service: service, region: region, policy: pol, sigv4a: v4a,
		fromAWS:   dialAWS && !dial.runsCustomerCode(),
		plaintext: plaintext,
	}, byPath, nil
}

// signingScope returns how a request signed for host (and path) is
// signed: its scope (scope.go), its policy and whether it is signed with
// SigV4a (scope_sigv4a.go), for the region set region.
func (t *Transport) signingScope(host, path string) (service, region string, pol Policy, v4a, byPath bool, err error) {
	form := sigv4aFormOf(host)
	if service, region, byPath, err = t.resolveScope(host, path, form); err != nil {
		return "", "", pol, false, false, err
	}
	pol = t.Policies.lookup(service)
	v4a, region, err = chooseAlgorithm(pol.Algorithm, form, host, service, region)
	return service, region, pol, v4a, byPath, err
}

// checkURL refuses the forms of a URL that net/http would send elsewhere
// than URL.Host: an Opaque naming another host, or a path without its
// leading '/' (through an HTTP proxy, the absolute form
// "http://search.example.com" + "@evil.example/" names another host).
func checkURL(u *url.URL) error {
	switch {
	case strings.HasPrefix(u.Opaque, "//"):
		authority := u.Opaque[2:]
		if i := strings.IndexAny(authority, "/?"); i >= 0 {
			authority = authority[:i]
		}
		if !strings.EqualFold(authority, u.Host) {
			return invalid(ErrHostNotAllowed, "URL.Opaque names the host %q, not URL.Host %q", authority, u.Host)
		}
	case u.Opaque != "" && u.Opaque[0] != '/':
		return invalidRequest("URL.Opaque is neither a path nor //host/path", nil)
	case u.Opaque == "" && (u.Path != "" && u.Path[0] != '/' || u.RawPath != "" && u.RawPath[0] != '/'):
		return invalidRequest("the URL's path does not start with '/'", nil)
	}
	return nil
}

// resolveScope returns the signing service and region: the fields when
// set, else inferred from the host (scope.go); a region that neither gives
// comes from AWS_REGION, else AWS_DEFAULT_REGION (read once per
// Transport). byPath reports that the inference depended on the path too
// (AWS IoT's data endpoints), so that the route of the host is not one for
// all its requests. A host that takes SigV4a only (form, not alt) is
// signed for the region set its rules give, whatever Region says: a
// Transport with a Region signs for it every other host.
func (t *Transport) resolveScope(hn, path string, form *sigv4aForm) (service, region string, byPath bool, err error) {
	service, region = t.Service, t.Region
	if form != nil && !form.alt {
		if service == "" {
			service = signingNames[form.name]
		}
		return service, form.regionSet, false, nil
	}
	if service != "" && region != "" {
		return service, region, false, nil
	}
	isvc, iregion, byPath := inferScope(hn, path)
	if service == "" {
		service = isvc
	} else {
		byPath = false
	}
	if region == "" {
		region = iregion
	}
	if region == "" {
		if region, err = t.envRegion(); err != nil {
			return "", "", false, err
		}
	}
	switch {
	case service == "":
		return "", "", false, invalid(ErrUnknownScope, "no rule knows the service of host %q: set Transport.Service", hn)
	case region == "":
		return "", "", false, invalid(ErrUnknownScope, "host %q does not name the region: set Transport.Region or AWS_REGION", hn)
	}
	return service, region, byPath, nil
}
