package main

import (
	"fmt"
	"sort"
	"strings"
)

// variant is an endpoint variant, as the SDKs' endpoint data has them.
type variant uint8

const (
	fips      variant = 1 << iota // a FIPS 140 endpoint
	dualStack                     // an IPv4 and IPv6 endpoint
)

var variants = []variant{0, fips, dualStack, fips | dualStack}

func (v variant) String() string {
	switch v {
	case 0:
		return "standard"
	case fips:
		return "fips"
	case dualStack:
		return "dualstack"
	case fips | dualStack:
		return "fips-dualstack"
	}
	return fmt.Sprintf("variant(%d)", uint8(v))
}

// endpoint is one entry of a service's endpoint data: every field may be
// empty, to be filled from the defaults.
type endpoint struct {
	hostname     string // may hold "{region}"
	scopeRegion  string // credential scope
	scopeService string
	deprecated   bool
}

// merge returns e with the fields that o sets replaced, as the SDKs merge
// an endpoint over its defaults.
func (e endpoint) merge(o endpoint) endpoint {
	if o.hostname != "" {
		e.hostname = o.hostname
	}
	if o.scopeRegion != "" {
		e.scopeRegion = o.scopeRegion
	}
	if o.scopeService != "" {
		e.scopeService = o.scopeService
	}
	e.deprecated = e.deprecated || o.deprecated
	return e
}

type endpointKey struct {
	region  string
	variant variant
}

// servicePartition is a service's endpoint data in one partition.
type servicePartition struct {
	regionalized      bool
	partitionEndpoint string
	defaults          map[variant]endpoint
	endpoints         map[endpointKey]endpoint
}

// service is one service's endpoint data and signing name, from whichever
// source had it.
type service struct {
	name        string // the Go module's last element, or botocore's service name
	source      string // where the data came from, e.g. "service/sts@v1.52.0"
	signingName string
	partitions  map[string]*servicePartition
}

// resolve returns the endpoint the SDKs resolve for region and v in
// partition p, as aws-sdk-go-v2's internal/endpoints/v2 does: the region's
// entry (or the partition endpoint's, for a service that is not
// regionalized) merged over the variant's defaults.
func (s *service) resolve(p, region string, v variant) (host, signingName, signingRegion string, ok bool) {
	sp := s.partitions[p]
	if sp == nil {
		return "", "", "", false
	}
	e, found := sp.endpoints[endpointKey{region, v}]
	if !found && !sp.regionalized {
		// The SDK would fill the variant's template in with the region,
		// signed for the partition endpoint's region: a host that does
		// not exist. A global endpoint has the variants it lists.
		if e, found = sp.endpoints[endpointKey{sp.partitionEndpoint, v}]; !found {
			return "", "", "", false
		}
	}
	m := sp.defaults[v].merge(e)
	if m.hostname == "" {
		return "", "", "", false
	}
	host = strings.Replace(m.hostname, "{region}", region, 1)
	signingRegion = m.scopeRegion
	if signingRegion == "" {
		signingRegion = region
	}
	signingName = m.scopeService
	if signingName == "" {
		signingName = s.signingName
	}
	return host, signingName, signingRegion, true
}

// regions returns the regions for which the SDKs resolve s in partition
// p: every region of the partition (a regionalized service's defaults
// hold for any region that matches the partition's pattern, a global
// service's endpoint serves them all), and those s lists besides, sorted.
func (s *service) regions(p *partition) []string {
	sp := s.partitions[p.id]
	if sp == nil {
		return nil
	}
	rs := append([]string(nil), p.regions...)
	for k := range sp.endpoints {
		if k.variant == 0 && p.isRegion(k.region) {
			rs = append(rs, k.region)
		}
	}
	sort.Strings(rs)
	return compactStrings(rs)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// standardPrefix returns the labels before ".{region}." of s's standard
// template in partition aws, or "".
func (s *service) standardPrefix() string {
	for _, p := range []string{"aws", "aws-us-gov", "aws-cn"} {
		sp := s.partitions[p]
		if sp == nil {
			continue
		}
		if pre, _, ok := strings.Cut(sp.defaults[0].hostname, ".{region}."); ok {
			return pre
		}
	}
	return ""
}
