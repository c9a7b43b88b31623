package main

import (
	"bytes"
	"fmt"
	"go/format"
	"sort"
	"strings"
)

// sampleRegions are the regions of the test data: three partitions at
// least, as the tests ask, and every partition that has a FIPS or
// dual-stack suffix of its own.
var sampleRegions = map[string]bool{
	"us-east-1": true, "eu-west-2": true, "ap-southeast-1": true, // aws
	"cn-north-1":     true, // aws-cn
	"us-gov-west-1":  true, // aws-us-gov
	"us-iso-east-1":  true, // aws-iso
	"eusc-de-east-1": true, // aws-eusc
}

type scope struct{ name, region string }

// resolved is what the SDKs resolve to one host.
type resolved struct {
	scopes   map[scope][]string // the services that sign for the host so
	part     int                // partition index
	variants uint8              // 1<<variant for each variant resolving to it
}

type prefixEntry struct {
	prefix   string
	name     string
	parts    uint16 // 1<<partition index
	variants uint8  // 1<<variant
}

type hostEntry struct{ host, name, region string }

type sample struct {
	host, partition, region string
	v                       variant
	services                []string
	name, signingRegion     string // "" when the host is ambiguous
}

type table struct {
	parts    []*partition
	names    []string
	prefixes []prefixEntry
	hosts    []hostEntry
	samples  []sample
	notes    []string
	leftOut  []string
}

// suffix returns the AWS DNS suffix that host ends with (the longest) and
// the partitions that use it.
func suffixOf(parts []*partition, host string) (string, uint16) {
	best, mask := "", uint16(0)
	for i, p := range parts {
		for _, s := range []string{p.dnsSuffix, p.dualStackSuffix} {
			if strings.HasSuffix(host, "."+s) {
				if len(s) > len(best) {
					best, mask = s, 0
				}
				if s == best {
					mask |= 1 << i
				}
			}
		}
	}
	return best, mask
}

// regionLabel reports whether label is a region of one of the partitions
// in mask.
func regionLabel(parts []*partition, mask uint16, label string) bool {
	for i, p := range parts {
		if mask&(1<<i) != 0 && matchRegionPrefixes(p.regionPrefixes, label) {
			return true
		}
	}
	return false
}

func build(services []*service, parts []*partition) (*table, error) {
	if len(parts) > 16 {
		return nil, fmt.Errorf("%d partitions: the table's masks hold 16", len(parts))
	}
	t := &table{parts: parts}
	hosts := map[string]*resolved{}
	samples := map[string]*sample{}
	add := func(s *service, pi int, region string, v variant, sampled bool) {
		host, name, sregion, ok := s.resolve(parts[pi].id, region, v)
		if !ok {
			return
		}
		if sfx, _ := suffixOf(parts, host); sfx == "" {
			if !strings.HasPrefix(host, "localhost") {
				t.notes = append(t.notes, fmt.Sprintf("%s: host %s is under no partition's DNS suffix: left out", s.name, host))
			}
			return
		}
		r := hosts[host]
		if r == nil {
			r = &resolved{scopes: map[scope][]string{}, part: pi}
			hosts[host] = r
		}
		sc := scope{name, sregion}
		if !contains(r.scopes[sc], s.name) {
			r.scopes[sc] = append(r.scopes[sc], s.name)
		}
		r.variants |= 1 << v
		if sampled {
			key := host + " " + v.String()
			sm := samples[key]
			if sm == nil {
				sm = &sample{host: host, partition: parts[pi].id, region: region, v: v}
				samples[key] = sm
			}
			if !contains(sm.services, s.name) {
				sm.services = append(sm.services, s.name)
			}
		}
	}
	for _, s := range services {
		if s.signingName == "" {
			t.leftOut = append(t.leftOut, fmt.Sprintf("%s (%s): signs no request with SigV4 (bearer tokens only)", s.name, s.source))
			continue
		}
		for pi, p := range parts {
			sp := s.partitions[p.id]
			if sp == nil {
				continue
			}
			for _, r := range s.regions(p) {
				for _, v := range variants {
					add(s, pi, r, v, sampleRegions[r])
				}
			}
			// Pseudo-regions (aws-global, fips-us-east-1, ...) name
			// endpoints too, when they give the host and the region to
			// sign for: the SDKs turn the others (fips-us-east-1 without
			// a scope) into a region and a variant before resolving.
			for k, e := range sp.endpoints {
				if !p.isRegion(k.region) && e.hostname != "" && sp.defaults[k.variant].merge(e).scopeRegion != "" {
					add(s, pi, k.region, k.variant, false)
				}
			}
		}
	}

	// A host is either PREFIX.REGION.SUFFIX, signed for REGION with the
	// name that PREFIX says wherever it appears, or a host of its own.
	type cand struct {
		names    map[string]bool
		parts    uint16
		variants uint8
		hosts    []string
	}
	cands := map[string]*cand{}
	var own []string
	for host, r := range hosts {
		if len(r.scopes) > 1 {
			t.notes = append(t.notes, fmt.Sprintf("host %s is signed differently by %s: refused", host, describe(r.scopes)))
			continue
		}
		var sc scope
		for sc = range r.scopes {
		}
		sfx, mask := suffixOf(parts, host)
		labels := strings.Split(strings.TrimSuffix(host, "."+sfx), ".")
		last := labels[len(labels)-1]
		if len(labels) >= 2 && regionLabel(parts, mask, last) && last == sc.region {
			x := strings.Join(labels[:len(labels)-1], ".")
			c := cands[x]
			if c == nil {
				c = &cand{names: map[string]bool{}}
				cands[x] = c
			}
			c.names[sc.name] = true
			c.parts |= 1 << r.part
			c.variants |= r.variants
			c.hosts = append(c.hosts, host)
			continue
		}
		own = append(own, host)
	}
	names := map[string]bool{}
	for x, c := range cands {
		if len(c.names) > 1 {
			t.notes = append(t.notes, fmt.Sprintf("prefix %s signs as %v depending on the host: its hosts are listed one by one", x, keys(c.names)))
			own = append(own, c.hosts...)
			continue
		}
		name := keys(c.names)[0]
		names[name] = true
		t.prefixes = append(t.prefixes, prefixEntry{prefix: x, name: name, parts: c.parts, variants: c.variants})
	}
	for _, h := range own {
		for sc := range hosts[h].scopes {
			names[sc.name] = true
			t.hosts = append(t.hosts, hostEntry{h, sc.name, sc.region})
		}
	}
	t.names = keys(names)
	sort.Slice(t.prefixes, func(i, j int) bool { return t.prefixes[i].prefix < t.prefixes[j].prefix })
	sort.Slice(t.hosts, func(i, j int) bool { return t.hosts[i].host < t.hosts[j].host })

	for _, sm := range samples {
		r := hosts[sm.host]
		if len(r.scopes) == 1 {
			for sc := range r.scopes {
				sm.name, sm.signingRegion = sc.name, sc.region
			}
		}
		sort.Strings(sm.services)
		t.samples = append(t.samples, *sm)
	}
	sort.Slice(t.samples, func(i, j int) bool {
		a, b := t.samples[i], t.samples[j]
		if a.services[0] != b.services[0] {
			return a.services[0] < b.services[0]
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		if a.region != b.region {
			return a.region < b.region
		}
		if a.v != b.v {
			return a.v < b.v
		}
		return a.host < b.host
	})
	sort.Strings(t.notes)
	return t, nil
}

func describe(m map[scope][]string) string {
	var parts []string
	for sc, svcs := range m {
		parts = append(parts, fmt.Sprintf("%v as %s/%s", svcs, sc.name, sc.region))
	}
	sort.Strings(parts)
	return strings.Join(parts, " and ")
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// extraDomains are AWS domains that no partition's data names: on.aws
// holds Lambda function URLs (ID.lambda-url.REGION.on.aws) and OpenSearch
// Service's dual-stack domains (NAME.aos.REGION.on.aws).
var extraDomains = []string{"on.aws"}

// domains returns the partitions' DNS suffixes and extraDomains, longest
// first, without repeats.
func (t *table) domains() []string {
	seen := map[string]bool{}
	var ds []string
	for _, p := range t.parts {
		for _, d := range []string{p.dnsSuffix, p.dualStackSuffix} {
			if !seen[d] {
				seen[d] = true
				ds = append(ds, d)
			}
		}
	}
	ds = append(ds, extraDomains...)
	sort.SliceStable(ds, func(i, j int) bool { return len(ds[i]) > len(ds[j]) })
	return ds
}

// emit returns the Go source of the table.
func (t *table) emit(sources, goSources []string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by internal/endpointgen (go generate); DO NOT EDIT.\n//\n")
	fmt.Fprintf(&b, "// Generated from:\n")
	for _, s := range sources {
		fmt.Fprintf(&b, "//   - %s\n", s)
	}
	fmt.Fprintf(&b, "//   - these %d service modules of %s:\n", len(goSources), corePath)
	line := "//    "
	for _, s := range goSources {
		s = strings.TrimPrefix(s, "service/")
		if len(line)+1+len(s) > 100 {
			fmt.Fprintf(&b, "%s\n", line)
			line = "//    "
		}
		line += " " + s
	}
	fmt.Fprintf(&b, "%s\n\npackage kivuli\n\n", line)

	idx := map[string]int{}
	for i, n := range t.names {
		idx[n] = i
	}
	fmt.Fprintf(&b, "// awsPartitions are AWS's partitions, in the order of the masks below.\n")
	fmt.Fprintf(&b, "var awsPartitions = [...]awsPartition{\n")
	for _, p := range t.parts {
		fmt.Fprintf(&b, "\t{id: %q, dnsSuffix: %q, dualStackSuffix: %q, regionPrefixes: %#v}, // %s\n",
			p.id, p.dnsSuffix, p.dualStackSuffix, p.regionPrefixes, p.regionRegex)
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// awsDomains are the DNS suffixes of AWS endpoints, to which signed requests\n")
	fmt.Fprintf(&b, "// may always go: every partition's, standard and dual-stack, longest first,\n")
	fmt.Fprintf(&b, "// and %s, which no partition's data names.\n", strings.Join(extraDomains, ", "))
	fmt.Fprintf(&b, "var awsDomains = [...]string{\n")
	for _, d := range t.domains() {
		fmt.Fprintf(&b, "\t%q,\n", "."+d)
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// signingNames are the SigV4 signing names that endpoints sign with.\n")
	fmt.Fprintf(&b, "var signingNames = [...]string{\n")
	for i, n := range t.names {
		fmt.Fprintf(&b, "\t%q, // %d\n", n, i)
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// endpointPrefixes are the labels before the region of the endpoints\n")
	fmt.Fprintf(&b, "// PREFIX.REGION.SUFFIX, sorted: each signs with one name, in the partitions\n")
	fmt.Fprintf(&b, "// and variants listed (the data's; the name holds in any).\n")
	fmt.Fprintf(&b, "var endpointPrefixes = [...]endpointPrefix{\n")
	for _, e := range t.prefixes {
		fmt.Fprintf(&b, "\t{%q, %d, %#04x, %#x},\n", e.prefix, idx[e.name], e.parts, e.variants)
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// endpointHosts are the endpoints whose host does not say their scope\n")
	fmt.Fprintf(&b, "// (global endpoints, and hosts that name no region or another one), sorted.\n")
	fmt.Fprintf(&b, "var endpointHosts = [...]endpointHost{\n")
	for _, h := range t.hosts {
		fmt.Fprintf(&b, "\t{%q, %d, %q},\n", h.host, idx[h.name], h.region)
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}

// testdata returns the sample hosts, one a line: host, variant,
// partition, the services whose data names it, and the signing name and
// region the SDKs use ("-" for a host that services sign differently).
func (t *table) testdata(sources []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by internal/endpointgen (go generate); DO NOT EDIT.\n")
	fmt.Fprintf(&b, "# The host, signing name and region the SDKs' endpoint data give, for every\n")
	fmt.Fprintf(&b, "# service and variant in the regions %s.\n", strings.Join(keys(sampleRegions), ", "))
	for _, s := range sources {
		fmt.Fprintf(&b, "# From %s.\n", s)
	}
	fmt.Fprintf(&b, "# host\tvariant\tpartition\tservices\tsigning-name\tregion\n")
	for _, s := range t.samples {
		name, region := s.name, s.signingRegion
		if name == "" {
			name, region = "-", "-"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", s.host, s.v, s.partition, strings.Join(s.services, ","), name, region)
	}
	return b.Bytes()
}
