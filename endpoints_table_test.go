package kivuli_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
)

// TestEndpointData: every host that the SDKs' endpoint data resolve, for
// every service and variant in seven regions over five partitions
// (testdata/endpoints.txt.gz, written by internal/endpointgen from the
// data rather than from the table), signs with the data's signing name
// and region; so does the interface VPC endpoint of each regional one.
// No host is signed with another scope, and none is refused.
func TestEndpointData(t *testing.T) {
	rows := readEndpointRows(t)
	s := newScopeSigner(t, nil)
	type tally struct{ total, resolved, wrong, refused int }
	tallies := map[string]*tally{}
	count := func(kind, host, want, services string) {
		tl := tallies[kind]
		if tl == nil {
			tl = &tally{}
			tallies[kind] = tl
		}
		tl.total++
		got, err := s.scope(host, "/")
		switch {
		case err != nil:
			tl.refused++
			t.Errorf("%s (%s, %s): refused: %v", host, kind, services, err)
		case got != want:
			tl.wrong++
			t.Errorf("%s (%s, %s): signed as %s, the data says %s", host, kind, services, got, want)
		default:
			tl.resolved++
		}
	}
	vpce := 0
	for _, r := range rows {
		if r.scope == "-/-" {
			continue // services sign it differently: refused, see TestScopeRefused
		}
		count(r.variant, r.host, r.scope, r.services)
		// Its interface VPC endpoint: vpce-ID.PREFIX.REGION.vpce.DOMAIN.
		domain := partitionDomains[r.partition]
		if prefix, ok := strings.CutSuffix(r.host, "."+r.region+"."+domain); ok && !strings.Contains(r.variant, "dualstack") {
			vpce++
			count("vpce "+r.variant, "vpce-0123456789abcdef0-abcdefgh."+prefix+"."+r.region+".vpce."+domain, r.scope, r.services)
		}
	}
	kinds := make([]string, 0, len(tallies))
	for k := range tallies {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		tl := tallies[k]
		t.Logf("%-20s %5d hosts: %5d resolved (%.1f%%), %d signed with another scope, %d refused",
			k, tl.total, tl.resolved, 100*float64(tl.resolved)/float64(tl.total), tl.wrong, tl.refused)
	}
	assert.Greater(t, tallies["standard"].total, 2000, "the test data covers every service")
	assert.Greater(t, vpce, 3000)
}

// TestEndpointTable: every entry of the generated table signs as it says,
// in up to three of the partitions its data has it in, on the standard
// DNS suffix and, where the data has a dual-stack variant, on the
// dual-stack suffix too.
func TestEndpointTable(t *testing.T) {
	s := newScopeSigner(t, nil)
	n := 0
	for _, e := range kivuli.EndpointTable() {
		parts := e.Partitions
		if len(parts) > 3 {
			parts = parts[:3]
		}
		for _, p := range parts {
			domains := []string{p.DNSSuffix}
			if e.DualStack {
				domains = append(domains, p.DualStackSuffix)
			}
			for _, d := range domains {
				host := e.Prefix + "." + p.Region + "." + d
				got, err := s.scope(host, "/")
				if assert.NoError(t, err, host) {
					assert.Equal(t, e.Name+"/"+p.Region, got, host)
				}
				n++
			}
		}
	}
	t.Logf("%d hosts from %d table entries", n, len(kivuli.EndpointTable()))
}
