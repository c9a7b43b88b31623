package kivuli

// WithoutBackground turns off the refresh ahead of the deadline, so that a
// test can reach the deadline with the credentials still in place.
func WithoutBackground() Option { return func(c *config) { c.noBackground = true } }

// TablePrefix is an entry of the generated endpoint table, for the table
// test: PREFIX.REGION.SUFFIX signs as Name.
type TablePrefix struct {
	Prefix, Name string
	Partitions   []TablePartition // the partitions whose data has it
	DualStack    bool             // the data has a dual-stack variant
}

// TablePartition is a partition of the table with a region name of its
// pattern.
type TablePartition struct{ ID, DNSSuffix, DualStackSuffix, Region string }

// EndpointTable returns the generated endpoint table's prefixes.
func EndpointTable() []TablePrefix {
	var out []TablePrefix
	for _, e := range endpointPrefixes {
		tp := TablePrefix{Prefix: e.prefix, Name: signingNames[e.name], DualStack: e.variants&0b1100 != 0}
		for i, p := range awsPartitions {
			if e.parts&(1<<i) != 0 {
				tp.Partitions = append(tp.Partitions, TablePartition{p.id, p.dnsSuffix, p.dualStackSuffix, p.regionPrefixes[0] + "-east-1"})
			}
		}
		out = append(out, tp)
	}
	return out
}

// InferScopeOf is inferScope, for the benchmark and the SDK oracle.
var InferScopeOf = inferScope
