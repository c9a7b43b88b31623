package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// partition is one AWS partition, from the core module's
// internal/endpoints/awsrulesfn/partitions.json.
type partition struct {
	id              string
	dnsSuffix       string
	dualStackSuffix string
	globalRegion    string   // implicitGlobalRegion
	regionRegex     string   // as published
	regionPrefixes  []string // the regex as "PREFIX-\w+-\d+" for each PREFIX
	regions         []string // the regions listed, without the *-global pseudo-regions
	re              *regexp.Regexp
}

func (p *partition) isRegion(r string) bool { return p.re.MatchString(r) }

// regexShape is the one form the published region regexes take:
// ^PREFIXES\-\w+\-\d+$, where PREFIXES is a literal with at most one
// group of alternatives, such as (us|eu|ap) or eusc\-(de).
var regexShape = regexp.MustCompile(`^\^([a-z\\\-]*)(?:\(([a-z|]+)\))?\\-\\w\+\\-\\d\+\$$`)

func readPartitions(path string) ([]*partition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Partitions []struct {
			ID          string                     `json:"id"`
			RegionRegex string                     `json:"regionRegex"`
			Regions     map[string]json.RawMessage `json:"regions"`
			Outputs     struct {
				DNSSuffix            string `json:"dnsSuffix"`
				DualStackDNSSuffix   string `json:"dualStackDnsSuffix"`
				ImplicitGlobalRegion string `json:"implicitGlobalRegion"`
			} `json:"outputs"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ps []*partition
	for _, d := range doc.Partitions {
		p := &partition{
			id:              d.ID,
			dnsSuffix:       d.Outputs.DNSSuffix,
			dualStackSuffix: d.Outputs.DualStackDNSSuffix,
			globalRegion:    d.Outputs.ImplicitGlobalRegion,
			regionRegex:     d.RegionRegex,
			re:              regexp.MustCompile(d.RegionRegex),
		}
		m := regexShape.FindStringSubmatch(d.RegionRegex)
		if m == nil {
			return nil, fmt.Errorf("partition %s: region regex %q is not of the form ^PREFIX\\-\\w+\\-\\d+$: teach the generator and the runtime matcher its form", d.ID, d.RegionRegex)
		}
		lit := strings.ReplaceAll(m[1], `\-`, "-")
		if m[2] == "" {
			p.regionPrefixes = []string{strings.TrimSuffix(lit, "-")}
		} else {
			for _, alt := range strings.Split(m[2], "|") {
				p.regionPrefixes = append(p.regionPrefixes, lit+alt)
			}
		}
		for r := range d.Regions {
			if !strings.HasSuffix(r, "-global") {
				p.regions = append(p.regions, r)
			}
		}
		sort.Strings(p.regions)
		ps = append(ps, p)
	}
	// The runtime matcher reads a region as PREFIX "-" \w+ "-" \d+: check
	// that it agrees with the published regex on the published regions and
	// on a few that must not match.
	for _, p := range ps {
		probes := append([]string{"x-east-1", "us-east", "useast-1", "us-east-1a", "us--1"}, p.regions...)
		for _, q := range ps {
			probes = append(probes, q.regions...)
		}
		for _, r := range probes {
			if got, want := matchRegionPrefixes(p.regionPrefixes, r), p.re.MatchString(r); got != want {
				return nil, fmt.Errorf("partition %s: the prefixes %v and the regex %q disagree on %q", p.id, p.regionPrefixes, p.regionRegex, r)
			}
		}
	}
	return ps, nil
}

// matchRegionPrefixes is the runtime's matcher (scope.go), to check the
// conversion: label is PREFIX-WORD-NUMBER for one of prefixes, WORD being
// \w+ and NUMBER \d+.
func matchRegionPrefixes(prefixes []string, label string) bool {
	for _, pre := range prefixes {
		rest, ok := strings.CutPrefix(label, pre+"-")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '-')
		if i <= 0 || i == len(rest)-1 {
			continue
		}
		word, num := rest[:i], rest[i+1:]
		if strings.Trim(num, "0123456789") != "" {
			continue
		}
		okWord := true
		for _, c := range word {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				okWord = false
			}
		}
		if okWord {
			return true
		}
	}
	return false
}
