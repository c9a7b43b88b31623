package kivuli

import "strings"

// Some AWS endpoints take SigV4a only, signed for a region set rather than
// a region: S3 Multi-Region Access Points
// (ALIAS.mrap.accesspoint.s3-global.amazonaws.com), CloudFront
// KeyValueStore (ACCOUNT.cloudfront-kvs.global.api.aws), EventBridge
// global endpoints (ID.endpoint.events.amazonaws.com); S3 on Outposts
// takes SigV4a or SigV4. The forms of their hosts come from the endpoint
// rules, as the rest of the table does (sigv4aForms, endpoints_table.go).

// sigv4aForm is a form of host that the endpoint rules sign with SigV4a:
// LABELS.MIDDLE[.REGION].DOMAIN, where the customer names `labels` labels
// (an alias, an account, an endpoint's ID), REGION is the host's region
// when regional, and DOMAIN is one of the partitions' in parts, a
// dual-stack one when dual. It signs as signingNames[name] for regionSet;
// alt: the rules offer SigV4 after SigV4a, which kivuli signs with unless
// a policy says otherwise (S3 on Outposts, which takes both).
type sigv4aForm struct {
	middle    string
	labels    uint8
	regional  bool
	dual      bool
	parts     uint16
	name      uint16
	regionSet string
	alt       bool
}

// sigv4aFormOf returns the SigV4a form of host (lower case, without port),
// or nil.
func sigv4aFormOf(host string) *sigv4aForm {
	h, ok := splitAWSHost(host)
	if !ok {
		return nil
	}
	for i := range sigv4aForms {
		f := &sigv4aForms[i]
		if f.parts&h.parts == 0 || f.dual != h.dual {
			continue
		}
		rest := h.prefix
		if f.regional {
			var region string
			if rest, region = cutLast(rest); !regionIn(h.parts&f.parts, region) {
				continue
			}
		}
		name, ok := strings.CutSuffix(rest, "."+f.middle)
		if ok && name != "" && strings.Count(name, ".")+1 == int(f.labels) {
			return f
		}
	}
	return nil
}

// inferSigV4A: the hosts that take SigV4a only give their signing name
// and, as the region, their region set ("*").
func inferSigV4A(h awsHost, _ string) (string, string, bool) {
	if f := sigv4aFormOf(h.name); f != nil && !f.alt {
		return signingNames[f.name], f.regionSet, false
	}
	return "", "", false
}

// chooseAlgorithm returns whether a request to host, whose SigV4a form is
// f (nil: none) and whose SigV4 scope is service and region, is signed
// with SigV4a per the policy's Algorithm, and the region, or region set,
// it is signed for.
func chooseAlgorithm(alg Algorithm, f *sigv4aForm, host, service, region string) (bool, string, error) {
	only := f != nil && !f.alt
	switch alg {
	case AlgorithmAuto:
		return only, region, nil
	case AlgorithmSigV4:
		if only {
			return false, "", invalid(ErrUnknownScope, "host %q is signed with SigV4a only, for the region set %q, which the policy of service %q refuses (Policy.Algorithm is AlgorithmSigV4)", host, f.regionSet, service)
		}
		return false, region, nil
	case AlgorithmSigV4A:
		if f != nil {
			return true, f.regionSet, nil
		}
		return true, region, nil
	}
	return false, "", invalid(ErrInvalidConfig, "the policy of service %q has an unknown Algorithm %d", service, int(alg))
}
