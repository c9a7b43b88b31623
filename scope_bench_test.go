package kivuli_test

import (
	"testing"

	"github.com/kivuli-go/kivuli"
)

// BenchmarkInferScope: inferring a host's scope, which the route cache does
// once per host. It allocates nothing: a binary search in the generated
// table, then the rules, on substrings of the host.
func BenchmarkInferScope(b *testing.B) {
	for _, host := range []string{
		"sts.eu-west-2.amazonaws.com",                    // the table's prefixes
		"sts.amazonaws.com",                              // the table's hosts
		"bedrock-runtime-fips.us-east-1.api.aws",         // a variant
		"vpce-0abc-xyz.sts.eu-west-2.vpce.amazonaws.com", // a VPC endpoint
		"bucket.s3.eu-west-1.amazonaws.com",              // S3
		"search-logs-abc.eu-west-2.es.amazonaws.com",     // the last rule
		"nosuchservice.eu-west-2.amazonaws.com",          // refused: every rule tried
	} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kivuli.InferScopeOf(host, "/")
			}
		})
	}
}
