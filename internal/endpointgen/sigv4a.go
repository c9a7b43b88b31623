package main

import (
	"fmt"
	"sort"
	"strings"
)

// Some endpoints are signed with SigV4a (ECDSA, for a region set rather
// than a region): S3 Multi-Region Access Points, CloudFront
// KeyValueStore, EventBridge global endpoints, whose hosts start with a
// name the customer has (an alias, an account, an endpoint's ID); and S3
// on Outposts, whose rules offer SigV4a first and SigV4 after it.
// sdkrules asks the rules about them with sample names (its samples); the
// hosts' forms, with the customer's labels cut off, are written as
// sigv4aForms.

const schemeSigV4A = "aws.auth#sigv4a"

// v4aForm is a form of host that the rules sign with SigV4a:
// LABELS.MIDDLE[.REGION].DOMAIN, where the customer names `labels` labels
// and REGION, when regional, is the host's region.
type v4aForm struct {
	middle    string
	labels    int
	regional  bool
	dual      bool   // DOMAIN is a dual-stack suffix
	parts     uint16 // the partitions whose rules give it
	name      string
	regionSet string
	alt       bool // the rules offer SigV4 after SigV4a
}

// v4aForms returns the forms of the hosts that the answers sign with
// SigV4a. Forms that sign differently stop the generator.
func (t *table) v4aForms(answers []ruleAnswer) ([]v4aForm, error) {
	partOf := map[string]int{}
	for i, p := range t.parts {
		for _, r := range p.regions {
			partOf[r] = i
		}
	}
	forms := map[string]*v4aForm{}
	left := map[string][]string{} // why -> hosts
	for _, a := range answers {
		if a.Err != "" || a.Scheme != schemeSigV4A {
			continue
		}
		f, why := t.v4aForm(a)
		if why != "" {
			left[why] = append(left[why], a.Host)
			continue
		}
		key := fmt.Sprintf("%s|%d|%v|%v", f.middle, f.labels, f.regional, f.dual)
		old := forms[key]
		if old == nil {
			forms[key], old = &f, &f
		}
		if old.name != f.name || old.regionSet != f.regionSet || old.alt != f.alt {
			return nil, fmt.Errorf("SigV4a hosts %s: signed as %s for %q (SigV4 too: %v) and as %s for %q (%v)",
				a.Host, old.name, old.regionSet, old.alt, f.name, f.regionSet, f.alt)
		}
		old.parts |= 1 << partOf[a.Region]
	}
	for why, hosts := range left {
		t.notes = append(t.notes, fmt.Sprintf("SigV4a: %d hosts such as %s: %s: left out", len(hosts), hosts[0], why))
	}
	out := make([]v4aForm, 0, len(forms))
	for _, f := range forms {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].middle != out[j].middle {
			return out[i].middle < out[j].middle
		}
		return !out[i].dual && out[j].dual
	})
	return out, nil
}

// v4aForm returns the form of a's host, or why it has none kivuli can
// sign.
func (t *table) v4aForm(a ruleAnswer) (v4aForm, string) {
	f := v4aForm{name: a.Name, regionSet: strings.Join(a.RegionSet, ","), alt: a.AltSigV4}
	rest := a.Host
	if a.Customer != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(a.Host, a.Customer+"."); !ok {
			return f, "the host does not start with the customer's name " + a.Customer
		}
		f.labels = strings.Count(a.Customer, ".") + 1
	}
	sfx, _ := suffixOf(t.parts, "."+rest)
	switch {
	case f.name == "" || f.regionSet == "":
		return f, "no SigV4a signing name or region set"
	case a.DisableDoubleEncoding && !escapeOnceNames[f.name]:
		return f, "signed as " + f.name + " with S3's rules (the path escaped once), which no policy of kivuli's gives that name"
	case sfx == "" || rest == sfx:
		return f, "under no partition's DNS suffix"
	}
	f.middle = strings.TrimSuffix(rest, "."+sfx)
	if m, last := cutLast(f.middle); last == a.Region && m != "" {
		f.middle, f.regional = m, true
	}
	for _, p := range t.parts {
		f.dual = f.dual || sfx == p.dualStackSuffix
	}
	return f, ""
}
