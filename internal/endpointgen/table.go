package main

import (
	"bytes"
	"fmt"
	"go/format"
	"math/bits"
	"slices"
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

// source says where a fact came from: the legacy endpoint data
// (internal/endpoints, botocore's endpoints.json) or the SDK's endpoint
// rules (sdkrules).
type source uint8

const (
	fromData  source = 1 << iota // the legacy endpoint data
	fromRules                    // the SDK's endpoint rules and auth resolvers
)

// fact is one host that a service resolves to, for a region and variant
// of a partition, and the scope it signs with there.
type fact struct {
	service string
	part    int
	region  string
	v       variant
	host    string
	scope
	src source
}

// key is the question a fact answers.
type key struct {
	service string
	part    int
	region  string
	v       variant
}

func (f fact) key() key { return key{f.service, f.part, f.region, f.v} }

// resolved is what the SDKs resolve to one host.
type resolved struct {
	scopes   map[scope]*scopeUse // the scopes services sign the host with
	part     int                 // partition index
	variants uint8               // 1<<variant for each variant resolving to it
}

type scopeUse struct {
	services []string
	src      source
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
	v4a      []v4aForm
	// replaced are the data's hosts that the rules resolve the same
	// question to another host for: the rules' host is the SDK's.
	replaced []string
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

// escapeOnceNames are the signing names that kivuli's policies
// (policy.go's builtinPolicies) sign as S3 does: the path escaped once,
// the payload hash in a header. A host whose rules say so
// (disableDoubleEncoding) for another name is left out: kivuli would sign
// it with the wrong rules, and a refusal says so at once.
var escapeOnceNames = map[string]bool{"s3": true, "s3-object-lambda": true, "s3-outposts": true}

// dataFacts returns what the legacy endpoint data resolve, for every
// service, partition, region and variant.
func (t *table) dataFacts(services []*service) []fact {
	var facts []fact
	add := func(s *service, pi int, region string, v variant) {
		host, name, sregion, ok := s.resolve(t.parts[pi].id, region, v)
		if !ok {
			return
		}
		if sfx, _ := suffixOf(t.parts, host); sfx == "" {
			if !strings.HasPrefix(host, "localhost") {
				t.notes = append(t.notes, fmt.Sprintf("%s: host %s is under no partition's DNS suffix: left out", s.name, host))
			}
			return
		}
		facts = append(facts, fact{s.name, pi, region, v, host, scope{name, sregion}, fromData})
	}
	for _, s := range services {
		if s.signingName == "" {
			t.leftOut = append(t.leftOut, fmt.Sprintf("%s (%s): signs no request with SigV4 (bearer tokens only)", s.name, s.source))
			continue
		}
		for pi, p := range t.parts {
			sp := s.partitions[p.id]
			if sp == nil {
				continue
			}
			for _, r := range s.regions(p) {
				for _, v := range variants {
					add(s, pi, r, v)
				}
			}
			// Pseudo-regions (aws-global, fips-us-east-1, ...) name
			// endpoints too, when they give the host and the region to
			// sign for: the SDKs turn the others (fips-us-east-1 without
			// a scope) into a region and a variant before resolving.
			for k, e := range sp.endpoints {
				if !p.isRegion(k.region) && e.hostname != "" && sp.defaults[k.variant].merge(e).scopeRegion != "" {
					add(s, pi, k.region, k.variant)
				}
			}
		}
	}
	return facts
}

// ruleFacts returns the SigV4 hosts of the rules' answers, as the
// operations of each service (ops) send to them.
func (t *table) ruleFacts(answers []ruleAnswer, ops map[string][]operation) []fact {
	partOf := map[string]int{}
	for i, p := range t.parts {
		for _, r := range p.regions {
			partOf[r] = i
		}
	}
	var facts []fact
	type reason struct{ why, example string }
	skipped := map[string]*reason{} // why -> an example
	skippedFor := map[string]map[string]bool{}
	exact := map[string]bool{} // services with hosts under no suffix
	skip := func(why, example, service string) {
		if skipped[why] == nil {
			skipped[why] = &reason{why, example}
			skippedFor[why] = map[string]bool{}
		}
		skippedFor[why][service] = true
	}
	for _, a := range answers {
		pi, ok := partOf[a.Region]
		switch {
		case a.Customer != "":
			continue // a sample's: its SigV4a forms are v4aForms'
		case a.Err != "":
			continue // the rules refuse the question: nothing to learn
		case !ok:
			skip("asked for a region of no partition", a.Region, a.Service)
			continue
		case a.Scheme != "aws.auth#sigv4":
			skip("signed with "+a.Scheme+", not SigV4", a.Host, a.Service)
			continue
		case a.Name == "" || a.SigningRegion == "":
			skip("no SigV4 signing name or region", a.Host, a.Service)
			continue
		case a.DisableDoubleEncoding && !escapeOnceNames[a.Name]:
			skip(fmt.Sprintf("signed as %s with S3's rules (the path escaped once), which no policy of kivuli's gives that name", a.Name), a.Host, a.Service)
			continue
		}
		hosts, why := a.hosts(ops[a.Service])
		if why != "" {
			skip(why, a.Host, a.Service)
		}
		for _, host := range hosts {
			sfx, mask := suffixOf(t.parts, host)
			if sfx == "" {
				// A host the SDK's own rules send SigV4 requests to is
				// AWS's even under a domain of no partition (signin's
				// REGION.signin.aws.amazon.com): it is kept as that exact
				// name, which the allow-list then takes as an AWS
				// endpoint; nothing else under its domain is.
				exact[a.Service] = true
			}
			// SERVICE.SUFFIX is the form in which the rules of every
			// partition that shares SUFFIX (aws-us-gov reuses aws's
			// amazonaws.com and api.aws) name a global endpoint when
			// they know no other: the aws-us-gov rules give
			// budgets.amazonaws.com and cloudfront.api.aws, signed for
			// us-gov-west-1, for services GovCloud does not run. One
			// such name is one DNS name, run by the partition the suffix
			// is named for, the first that has it in partitions.json
			// (aws); GovCloud names its own global endpoints
			// (iam.us-gov.amazonaws.com). So these hosts are learnt from
			// that partition's rules only, or from the data, which lists
			// them partition by partition; budgets.api.aws, which only
			// the aws-us-gov rules give, stays refused.
			if first := bits.TrailingZeros16(mask); bits.OnesCount16(mask) > 1 && pi != first && !strings.Contains(strings.TrimSuffix(host, "."+sfx), ".") {
				skip(fmt.Sprintf("SERVICE.SUFFIX hosts of another partition than %s under a suffix it shares: they name no partition", t.parts[first].id), host+" for "+t.parts[pi].id, a.Service)
				continue
			}
			facts = append(facts, fact{a.Service, pi, a.Region, a.variant(), host, scope{a.Name, a.SigningRegion}, fromRules})
		}
	}
	if len(exact) > 0 {
		t.notes = append(t.notes, fmt.Sprintf("endpoint rules: hosts under no partition's DNS suffix, kept as exact names, of %s", strings.Join(keys(exact), ", ")))
	}
	for why, r := range skipped {
		t.notes = append(t.notes, fmt.Sprintf("endpoint rules: %s (such as %s): left out for %s", why, r.example, strings.Join(keys(skippedFor[why]), ", ")))
	}
	return facts
}

// merge returns the facts of both sources. Where the rules answer a
// question that the data answers too, with another host that the rules
// give for no question, and the data's host is a host entry (one that
// does not say its scope), the rules' host is the one the SDK sends to and
// the data's is dropped: the data has typos the SDK no longer uses, such
// as ramus-gov-east-1.api.aws for ram-fips.us-gov-east-1.api.aws. A
// PREFIX.REGION.SUFFIX host of the data's stays: its prefix signs with
// the same name wherever it appears, so an old name of it costs nothing
// (route53.eusc-de-east-1.amazonaws.eu, now route53.amazonaws.eu).
func (t *table) merge(data, rules []fact) []fact {
	ruleHosts := map[key]map[string]bool{}
	anyRule := map[string]bool{}
	for _, f := range rules {
		k := f.key()
		if ruleHosts[k] == nil {
			ruleHosts[k] = map[string]bool{}
		}
		ruleHosts[k][f.host] = true
		anyRule[f.host] = true
	}
	out := append([]fact(nil), rules...)
	kept := map[string]bool{}
	replaced := map[string]string{}
	for _, f := range data {
		if hs := ruleHosts[f.key()]; len(hs) > 0 && !hs[f.host] && !anyRule[f.host] {
			if _, ok := t.prefixOf(f.host, f.scope); !ok {
				replaced[f.host] = fmt.Sprintf("%s (%s %s %s %s: the rules say %s)", f.host, f.service, t.parts[f.part].id, f.region, f.v, strings.Join(keys(hs), ", "))
				continue
			}
		}
		kept[f.host] = true
		out = append(out, f)
	}
	for h, r := range replaced {
		if !kept[h] { // another question of the data's (aws-global) still has it
			t.replaced = append(t.replaced, r)
		}
	}
	sort.Strings(t.replaced)
	return out
}

// prefixOf returns PREFIX if host is PREFIX.REGION.SUFFIX and signs for
// REGION, a region of a partition that SUFFIX belongs to.
func (t *table) prefixOf(host string, sc scope) (string, bool) {
	sfx, mask := suffixOf(t.parts, host)
	rest, last := cutLast(strings.TrimSuffix(host, "."+sfx))
	if rest == "" || last != sc.region || !regionLabel(t.parts, mask, last) {
		return "", false
	}
	return rest, true
}

// cutLast splits s before its last label, as scope.go's cutLast.
func cutLast(s string) (rest, last string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// build makes the table from the facts of services' data and the rules'
// answers. It fails where the two sources sign one host, or one endpoint
// prefix, differently: which is right cannot be told from here.
func build(services []*service, parts []*partition, answers []ruleAnswer, ops map[string][]operation) (*table, error) {
	if len(parts) > 16 {
		return nil, fmt.Errorf("%d partitions: the table's masks hold 16", len(parts))
	}
	t := &table{parts: parts}
	facts := t.merge(t.dataFacts(services), t.ruleFacts(answers, ops))

	hosts := map[string]*resolved{}
	samples := map[string]*sample{}
	for _, f := range facts {
		r := hosts[f.host]
		if r == nil {
			r = &resolved{scopes: map[scope]*scopeUse{}, part: f.part}
			hosts[f.host] = r
		}
		u := r.scopes[f.scope]
		if u == nil {
			u = &scopeUse{}
			r.scopes[f.scope] = u
		}
		if !slices.Contains(u.services, f.service) {
			u.services = append(u.services, f.service)
		}
		u.src |= f.src
		r.variants |= 1 << f.v
		if sampleRegions[f.region] {
			key := f.host + " " + f.v.String()
			sm := samples[key]
			if sm == nil {
				sm = &sample{host: f.host, partition: parts[f.part].id, region: f.region, v: f.v}
				samples[key] = sm
			}
			if !slices.Contains(sm.services, f.service) {
				sm.services = append(sm.services, f.service)
			}
		}
	}

	// A host is either PREFIX.REGION.SUFFIX, signed for REGION with the
	// name that PREFIX says wherever it appears, or a host of its own.
	type cand struct {
		names    map[string]source
		parts    uint16
		variants uint8
		hosts    []string
	}
	cands := map[string]*cand{}
	var own []string
	var disagree []string
	for host, r := range hosts {
		if len(r.scopes) > 1 {
			var bySrc [fromRules + 1][]string
			for sc, u := range r.scopes {
				for _, src := range []source{fromData, fromRules} {
					if u.src&src != 0 {
						bySrc[src] = append(bySrc[src], sc.name+"/"+sc.region)
					}
				}
			}
			if d, ru := bySrc[fromData], bySrc[fromRules]; len(d) > 0 && len(ru) > 0 && !sameSet(d, ru) {
				disagree = append(disagree, fmt.Sprintf("host %s: the data signs it as %v, the rules as %v", host, sorted(d), sorted(ru)))
				continue
			}
			t.notes = append(t.notes, fmt.Sprintf("host %s is signed differently by %s: refused", host, describe(r.scopes)))
			continue
		}
		var sc scope
		for sc = range r.scopes {
		}
		if x, ok := t.prefixOf(host, sc); ok {
			c := cands[x]
			if c == nil {
				c = &cand{names: map[string]source{}}
				cands[x] = c
			}
			c.names[sc.name] |= r.scopes[sc].src
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
			var d, ru []string
			for n, src := range c.names {
				if src&fromData != 0 {
					d = append(d, n)
				}
				if src&fromRules != 0 {
					ru = append(ru, n)
				}
			}
			if len(d) > 0 && len(ru) > 0 && !sameSet(d, ru) {
				disagree = append(disagree, fmt.Sprintf("prefix %s: the data signs it as %v, the rules as %v", x, sorted(d), sorted(ru)))
				continue
			}
			all := make([]string, 0, len(c.names))
			for n := range c.names {
				all = append(all, n)
			}
			t.notes = append(t.notes, fmt.Sprintf("prefix %s signs as %v depending on the host: its hosts are listed one by one", x, sorted(all)))
			own = append(own, c.hosts...)
			continue
		}
		var name string
		for name = range c.names {
		}
		names[name] = true
		t.prefixes = append(t.prefixes, prefixEntry{prefix: x, name: name, parts: c.parts, variants: c.variants})
	}
	if len(disagree) > 0 {
		sort.Strings(disagree)
		return nil, fmt.Errorf("the endpoint data and the SDK's endpoint rules disagree (decide which is right by hand, then teach the generator):\n\t%s", strings.Join(disagree, "\n\t"))
	}
	for _, h := range own {
		for sc := range hosts[h].scopes {
			names[sc.name] = true
			t.hosts = append(t.hosts, hostEntry{h, sc.name, sc.region})
		}
	}
	var err error
	if t.v4a, err = t.v4aForms(answers); err != nil {
		return nil, err
	}
	for _, f := range t.v4a {
		names[f.name] = true
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

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func sameSet(a, b []string) bool {
	a, b = sorted(a), sorted(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func describe(m map[scope]*scopeUse) string {
	var parts []string
	for sc, u := range m {
		parts = append(parts, fmt.Sprintf("%v as %s/%s", u.services, sc.name, sc.region))
	}
	sort.Strings(parts)
	return strings.Join(parts, " and ")
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
	fmt.Fprintf(&b, "// (global endpoints, hosts that name no region or another one, and the\n")
	fmt.Fprintf(&b, "// SDK's hosts under no partition's domain, such as signin's), sorted.\n")
	fmt.Fprintf(&b, "var endpointHosts = [...]endpointHost{\n")
	for _, h := range t.hosts {
		fmt.Fprintf(&b, "\t{%q, %d, %q},\n", h.host, idx[h.name], h.region)
	}
	fmt.Fprintf(&b, "}\n\n")
	fmt.Fprintf(&b, "// sigv4aForms are the forms of the hosts that the endpoint rules sign with\n")
	fmt.Fprintf(&b, "// SigV4a, asked about with sample names (internal/endpointgen/sdkrules):\n")
	fmt.Fprintf(&b, "// LABELS.MIDDLE[.REGION].DOMAIN, where the customer names the labels.\n")
	fmt.Fprintf(&b, "var sigv4aForms = [...]sigv4aForm{\n")
	for _, f := range t.v4a {
		fmt.Fprintf(&b, "\t{middle: %q, labels: %d, regional: %v, dual: %v, parts: %#04x, name: %d, regionSet: %q, alt: %v}, // %s\n",
			f.middle, f.labels, f.regional, f.dual, f.parts, idx[f.name], f.regionSet, f.alt, f.name)
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
