package kivuli_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// oracleRow is a line of testdata/sdk-oracle.jsonl.gz: what aws-sdk-go-v2
// itself resolves and signs for one question (internal/endpointgen/sdkoracle).
type oracleRow struct {
	Svc             string         // the service module
	Params          map[string]any // its endpoint parameters
	Host, Path      string
	Service, Region string   // the SigV4 scope; Service "DEFAULT": the module's own
	SigV4A          bool     // the rules' first scheme is SigV4a: Service is its signing name, and Region, if set, SigV4's after it
	RegionSet       []string // SigV4a's
	Err             string   // the rules refuse the question
}

// oracleRefused are the hosts the SDK gives that kivuli refuses on
// purpose, with why: a wrong scope must never be signed, and these hosts
// cannot be given one scope.
var oracleRefused = map[string]string{
	// SERVICE.SUFFIX names that the GovCloud rules give for services
	// GovCloud does not run, under a suffix it shares with aws: one DNS
	// name, which would be signed for us-gov-west-1 and for us-east-1.
	"budgets.api.aws":         "GovCloud's name under aws's suffix",
	"cloudfront.api.aws":      "GovCloud's name under aws's suffix",
	"cloudfront-fips.api.aws": "GovCloud's name under aws's suffix",
}

// TestSDKOracle: every host that aws-sdk-go-v2's own endpoint rules and
// auth scheme resolvers give, for 276 service modules in 25 regions, four
// variants, S3's bucket forms and the customers' endpoints that take
// SigV4a (testdata/sdk-oracle.jsonl.gz, written by a program that shares
// nothing with the table's generator), is allowed and signed with the
// SDK's scope. None is signed with another scope; only oracleRefused's
// are refused. The hosts whose rules give SigV4a alone (S3 Multi-Region
// Access Points, CloudFront KeyValueStore, EventBridge global endpoints)
// are signed with SigV4a for the SDK's signing name and region set; those
// whose rules give SigV4a and then SigV4 (S3 on Outposts) with SigV4, for
// the SDK's SigV4 scope.
func TestSDKOracle(t *testing.T) {
	f, err := os.Open("testdata/sdk-oracle.jsonl.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	// The modules whose auth resolver names no signing name sign with
	// their default one.
	defaults := map[string]string{"s3": "s3", "eventbridge": "events", "sesv2": "ses"}
	hostAllowed := &kivuli.Transport{Credentials: staticCreds, Service: "x", Region: "y", Base: &countingBase{}}
	counts := map[string]int{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r oracleRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		region, _ := r.Params["Region"].(string)
		bucket, _ := r.Params["Bucket"].(string)
		switch {
		case r.Err != "" || r.Service == "":
			continue // refused by the rules, or not signed with SigV4
		case strings.HasSuffix(region, "-global"):
			continue // pseudo-regions: the rules make hosts such as x.aws-global.amazonaws.com
		case strings.HasSuffix(bucket, "--x-s3"):
			continue // S3 Express: session authentication, which kivuli refuses
		}
		if r.Service == "DEFAULT" {
			r.Service, r.Region = defaults[r.Svc], region
		}
		if seen[r.Host+"|"+r.Path] {
			continue
		}
		seen[r.Host+"|"+r.Path] = true
		kind := oracleKind(r.Params)
		if r.SigV4A && r.Region == "" {
			got, err := sigv4aSigned(r.Host)
			want := r.Service + "/" + strings.Join(r.RegionSet, ",")
			if err != nil || got != want {
				counts[kind+": SigV4a, WRONG"]++
				t.Errorf("%s (%s): signed %q (%v), the SDK signs it with SigV4a as %s", r.Host, r.Svc, got, err, want)
				continue
			}
			counts[kind+": SigV4a, right"]++
			continue
		}
		if r.SigV4A {
			kind += " (SigV4a and SigV4: SigV4)"
		}
		req, err := http.NewRequest(http.MethodGet, "https://"+r.Host+"/", nil)
		require.NoError(t, err)
		if _, err := hostAllowed.RoundTrip(req); err != nil {
			counts[kind+": host refused"]++
			t.Errorf("%s (%s, signed %s/%s by the SDK): refused: %v", r.Host, r.Svc, r.Service, r.Region, err)
			continue
		}
		path := r.Path
		if path == "" {
			path = "/"
		}
		svc, rg, _ := kivuli.InferScopeOf(strings.ToLower(r.Host), path)
		switch {
		case svc == "" && oracleRefused[r.Host] != "":
			counts[kind+": refused on purpose"]++
		case svc == "":
			counts[kind+": scope refused"]++
			t.Errorf("%s%s (%s): no scope inferred, the SDK signs %s/%s", r.Host, path, r.Svc, r.Service, r.Region)
		case svc != r.Service || rg != "" && rg != r.Region:
			counts[kind+": WRONG"]++
			t.Errorf("%s%s (%s): inferred %s/%s, the SDK signs %s/%s", r.Host, path, r.Svc, svc, rg, r.Service, r.Region)
		case rg == "":
			counts[kind+": right, region from the Transport or AWS_REGION"]++
		default:
			counts[kind+": right"]++
		}
	}
	require.NoError(t, sc.Err())
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%-60s %5d", k, counts[k])
	}
	assert.Greater(t, counts["standard: right"], 4000, "the oracle was read")
	assert.GreaterOrEqual(t, counts["standard: SigV4a, right"]+counts["dual-stack: SigV4a, right"]+counts["S3 bucket forms: SigV4a, right"], 16, "the SigV4a hosts were checked")
	assert.GreaterOrEqual(t, counts["S3 bucket forms (SigV4a and SigV4: SigV4): right"], 18, "S3 on Outposts was checked")
}

// oracleKind names the variant of an oracle question.
func oracleKind(params map[string]any) string {
	fips, _ := params["UseFIPS"].(bool)
	dual, _ := params["UseDualStack"].(bool)
	_, bucket := params["Bucket"]
	switch {
	case bucket:
		return "S3 bucket forms"
	case fips && dual:
		return "FIPS dual-stack"
	case fips:
		return "FIPS"
	case dual:
		return "dual-stack"
	}
	return "standard"
}

// sigv4aSigned signs a GET of https://host/ with a Transport that infers
// the scope and returns "service/region set" if it signed with SigV4a.
func sigv4aSigned(host string) (string, error) {
	var authz, set string
	tr := &kivuli.Transport{Credentials: staticCreds, Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		authz, set = req.Header.Get("Authorization"), req.Header.Get("X-Amz-Region-Set")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})}
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		return "", err
	}
	if _, err := tr.RoundTrip(req); err != nil {
		return "", err
	}
	alg, rest, _ := strings.Cut(authz, " Credential=")
	cred, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(cred, "/") // AKID/date/service/aws4_request
	if alg != "AWS4-ECDSA-P256-SHA256" || len(parts) != 4 {
		return "", fmt.Errorf("not signed with SigV4a: %s", alg)
	}
	return parts[2] + "/" + set, nil
}
