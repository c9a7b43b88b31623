package kivuli

import (
	"slices"
	"strings"
)

//go:generate go run -C internal/endpointgen . -out ../../endpoints_table.go -testdata ../../testdata/endpoints.txt.gz

// The signing scope (service and region) of a request comes from its host:
// first from AWS's endpoint data (endpoints_table.go, generated from the
// SDKs' data by internal/endpointgen), then from the rules below for the
// hosts that the data cannot hold because customers name part of them
// (buckets, API IDs, domains, brokers). A host that neither knows is
// refused: a wrong scope is signed, sent and refused by AWS at run time,
// where a refusal here says at once what to set.

// awsPartition is one of AWS's partitions: its DNS suffixes and the
// pattern of its region names, PREFIX-WORD-NUMBER for one of
// regionPrefixes (the published regex ^PREFIX\-\w+\-\d+$, matched without
// a regexp).
type awsPartition struct {
	id              string
	dnsSuffix       string
	dualStackSuffix string
	regionPrefixes  []string
}

// endpointPrefix says that PREFIX.REGION.SUFFIX, for a region of the
// partition that SUFFIX belongs to, signs as signingNames[name] in REGION.
// parts (1<<index in awsPartitions) and variants (1<<variant: standard,
// FIPS, dual-stack, FIPS dual-stack) say where the data has it.
type endpointPrefix struct {
	prefix   string
	name     uint16
	parts    uint16
	variants uint8
}

// endpointHost is an endpoint whose host does not give its scope: a global
// endpoint, or one that names no region or another one.
type endpointHost struct {
	host   string
	name   uint16
	region string
}

// awsDomains, the DNS suffixes that the allow-list takes for AWS's, is
// generated too, from the same partitions: a new partition's hosts are
// allowed and scoped together.

// awsHost is a host name under an AWS domain, split for the rules.
type awsHost struct {
	name   string // lower case, without port
	prefix string // the labels before the domain
	domain string // "amazonaws.com", "api.aws", "on.aws", ...
	parts  uint16 // the partitions whose suffix domain is (1<<index); all for on.aws
	dual   bool   // domain is a dual-stack suffix
}

// splitAWSHost splits an AWS endpoint's host name (lower case, without
// port) at its AWS domain; ok is false if it is under none.
func splitAWSHost(name string) (h awsHost, ok bool) {
	for i := range awsPartitions {
		p := &awsPartitions[i]
		for _, s := range [2]string{p.dnsSuffix, p.dualStackSuffix} {
			if len(name) > len(s)+1 && strings.HasSuffix(name, s) && name[len(name)-len(s)-1] == '.' && len(s) >= len(h.domain) {
				if len(s) > len(h.domain) {
					h.parts = 0
				}
				h.domain, h.dual = s, s == p.dualStackSuffix
				h.parts |= 1 << i
			}
		}
	}
	if h.domain == "" {
		if !strings.HasSuffix(name, ".on.aws") || len(name) == len(".on.aws") {
			return h, false
		}
		h.domain, h.parts = "on.aws", 1<<len(awsPartitions)-1
	}
	h.name, h.prefix = name, name[:len(name)-len(h.domain)-1]
	return h, true
}

// isRegion reports whether label is a region name of any partition:
// us-east-1, eu-west-2, us-gov-west-1, cn-north-1, eusc-de-east-1.
func isRegion(label string) bool { return regionIn(1<<len(awsPartitions)-1, label) }

// regionIn reports whether label is a region name of one of the
// partitions in parts.
func regionIn(parts uint16, label string) bool {
	for i := range awsPartitions {
		if parts&(1<<i) == 0 {
			continue
		}
		for _, pre := range awsPartitions[i].regionPrefixes {
			if len(label) > len(pre) && label[len(pre)] == '-' && strings.HasPrefix(label, pre) && wordDashNumber(label[len(pre)+1:]) {
				return true
			}
		}
	}
	return false
}

// wordDashNumber reports whether s is \w+-\d+.
func wordDashNumber(s string) bool {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return false
	}
	for j := 0; j < i; j++ {
		if c := s[j]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	for j := i + 1; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			return false
		}
	}
	return true
}

// cutLast splits s before its last label: ("a.b.c") is ("a.b", "c"),
// ("c") is ("", "c").
func cutLast(s string) (rest, last string) {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// lookupPrefix returns the signing name of an endpoint prefix.
func lookupPrefix(prefix string) (string, bool) {
	i, ok := slices.BinarySearchFunc(endpointPrefixes[:], prefix, func(e endpointPrefix, p string) int { return strings.Compare(e.prefix, p) })
	if !ok {
		return "", false
	}
	return signingNames[endpointPrefixes[i].name], true
}

// lookupHost returns the scope of an endpoint whose host does not give it.
func lookupHost(host string) (service, region string, ok bool) {
	i, ok := slices.BinarySearchFunc(endpointHosts[:], host, func(e endpointHost, h string) int { return strings.Compare(e.host, h) })
	if !ok {
		return "", "", false
	}
	return signingNames[endpointHosts[i].name], endpointHosts[i].region, true
}

// scopeRule infers the scope of the hosts of one form. infer returns ""
// for the service when the host is not of its form; the region may be ""
// when the host does not name it. byPath reports that the service depends
// on the path too.
type scopeRule struct {
	name    string
	example string
	infer   func(h awsHost, path string) (service, region string, byPath bool)
}

// scopeRules are tried in order; the first that knows the host decides.
var scopeRules = [...]scopeRule{
	{"IoT Core data and MQTT", "a1b2-ats.iot.eu-west-1.amazonaws.com (/mqtt: iotdevicegateway)", inferIoTData},
	{"endpoint data: hosts", "sts.amazonaws.com, iam.us-gov.amazonaws.com", inferEndpointHost},
	{"endpoint data: PREFIX.REGION.DOMAIN", "bedrock-runtime.us-east-1.amazonaws.com, sts-fips.us-east-1.api.aws", inferEndpointPrefix},
	{"VPC interface endpoint", "vpce-0abc-xyz.sts.eu-west-2.vpce.amazonaws.com", inferVPCEndpoint},
	{"S3 bucket, access point, Object Lambda, Outposts", "bucket.s3.eu-west-1.amazonaws.com, ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", inferS3},
	{"customer prefix", "abc.execute-api.eu-west-1.amazonaws.com, abc.appsync-api.eu-west-2.amazonaws.com, x.lambda-url.eu-west-1.on.aws", inferCustomerPrefix},
	{"MSK broker", "b-1.name.abc123.c2.kafka.eu-west-1.amazonaws.com", inferKafkaBroker},
	{"domain endpoint", "search-x.eu-west-2.es.amazonaws.com, x.us-east-1.aoss.amazonaws.com, db.cluster-x.eu-west-1.neptune.amazonaws.com", inferDomainEndpoint},
}

// inferScope derives the signing service and region from an AWS endpoint's
// host name (lower case, without port) and the request path. The service
// is "" when no rule knows the host; the region is "" when the host does
// not name it (a host no rule knows may still name it).
func inferScope(host, path string) (service, region string, byPath bool) {
	h, ok := splitAWSHost(host)
	if !ok {
		// A host under no partition's domain is an endpoint only as an
		// exact name the SDK's rules give (signin's).
		service, region, _ = lookupHost(host)
		return service, region, false
	}
	for i := range scopeRules {
		if service, region, byPath = scopeRules[i].infer(h, path); service != "" {
			return service, region, byPath
		}
	}
	// No rule knows the service, but a host SERVICE.REGION.DOMAIN still
	// names the region, for a Transport that names the service (one of
	// your own, or newer than the data).
	if _, last := cutLast(h.prefix); regionIn(h.parts, last) {
		return "", last, false
	}
	return "", "", false
}

func inferEndpointHost(h awsHost, _ string) (string, string, bool) {
	service, region, _ := lookupHost(h.name)
	return service, region, false
}

func inferEndpointPrefix(h awsHost, _ string) (string, string, bool) {
	rest, region := cutLast(h.prefix)
	if rest == "" || !regionIn(h.parts, region) {
		return "", "", false
	}
	if service, ok := lookupPrefix(rest); ok {
		return service, region, false
	}
	return "", "", false
}

// inferVPCEndpoint: the DNS names of an interface VPC endpoint,
// vpce-ID[-AZ].PREFIX.REGION.vpce.SUFFIX, where PREFIX is the service's
// endpoint prefix (sts, sts-fips, api.ecr); S3's have a bucket, access
// point or control label before.
func inferVPCEndpoint(h awsHost, path string) (string, string, bool) {
	rest, last := cutLast(h.prefix)
	if last != "vpce" || h.dual {
		return "", "", false
	}
	rest, region := cutLast(rest)
	if !regionIn(h.parts, region) {
		return "", "", false
	}
	var before string
	switch i := strings.Index(rest, ".vpce-"); {
	case strings.HasPrefix(rest, "vpce-"):
	case i >= 0:
		before, rest = rest[:i], rest[i+1:]
	default:
		return "", "", false
	}
	_, prefix, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", false
	}
	service, ok := lookupPrefix(prefix)
	if !ok {
		service, ok = customerService(prefix)
	}
	if !ok || before != "" && service != "s3" {
		return "", "", false
	}
	if service == "iotdata" { // IoT Core's data endpoint: MQTT at /mqtt
		return iotService(path), region, true
	}
	return service, region, false
}

// inferS3 reads the forms of S3 hosts that name a bucket or an access
// point:
//
//	bucket.s3[-fips][.dualstack][.REGION]   virtual-hosted (no region: us-east-1)
//	bucket.s3-REGION                        the legacy dash form
//	bucket.s3-external-1                    us-east-1
//	bucket.s3-accelerate[.dualstack]        names no region
//	NAME-ACCOUNT.s3-accesspoint[-fips][.dualstack].REGION
//	NAME-ACCOUNT.s3-object-lambda[-fips].REGION   signs as s3-object-lambda
//	ACCOUNT.s3-control[-fips][.dualstack].REGION
//	NAME-ACCOUNT.OUTPOST.s3-outposts.REGION       signs as s3-outposts
//
// Multi-Region Access Points (accesspoint.s3-global) need SigV4A, which
// kivuli does not sign: they are refused.
func inferS3(h awsHost, _ string) (string, string, bool) {
	rest, last := cutLast(h.prefix)
	region := ""
	if regionIn(h.parts, last) {
		region = last
		rest, last = cutLast(rest)
	}
	if last == "dualstack" {
		rest, last = cutLast(rest)
	}
	bucket := rest != ""
	switch strings.TrimSuffix(last, "-fips") {
	case "s3":
		if !bucket {
			return "", "", false
		}
		if region == "" {
			// The global endpoint's region, as the data has it
			// (s3.amazonaws.com: us-east-1).
			var ok bool
			if _, region, ok = lookupHost("s3." + h.domain); !ok {
				return "", "", false
			}
		}
		return "s3", region, false
	case "s3-accelerate":
		if !bucket || region != "" {
			return "", "", false
		}
		return "s3", "", false
	case "s3-external-1":
		if !bucket || region != "" {
			return "", "", false
		}
		return "s3", "us-east-1", false
	case "s3-accesspoint", "s3-control":
		if !bucket || region == "" {
			return "", "", false
		}
		return "s3", region, false
	case "s3-object-lambda":
		if !bucket || region == "" {
			return "", "", false
		}
		return "s3-object-lambda", region, false
	case "s3-outposts":
		if !bucket || region == "" {
			return "", "", false
		}
		return "s3-outposts", region, false
	}
	if r, ok := strings.CutPrefix(last, "s3-"); ok && bucket && region == "" && regionIn(h.parts, r) {
		return "s3", r, false
	}
	return "", "", false
}

// customerPrefixes are the services whose hosts start with a name the
// customer has (an API ID, an account): ID.LABEL[-fips].REGION.DOMAIN.
var customerPrefixes = [...]struct{ label, service, domain string }{
	{"execute-api", "execute-api", ""},      // API Gateway: abc123.execute-api.eu-west-1.amazonaws.com
	{"appsync-api", "appsync", ""},          // AppSync GraphQL: abc.appsync-api.eu-west-2.amazonaws.com
	{"appsync-realtime-api", "appsync", ""}, // AppSync real-time
	{"ddb", "dynamodb", ""},                 // DynamoDB account endpoints: 123456789012.ddb.us-east-1.amazonaws.com
	{"timestream", "timestream", ""},        // Timestream cells: ingest-cell1.timestream.us-east-1.amazonaws.com
	{"lambda-url", "lambda", "on.aws"},      // Lambda function URLs: abc.lambda-url.eu-west-1.on.aws
	{"data.mediastore", "mediastore", ""},   // MediaStore containers: abc.data.mediastore.eu-west-1.amazonaws.com
	{"kinesisvideo", "kinesisvideo", ""},    // Kinesis Video data endpoints: s-1234.kinesisvideo.eu-west-1.amazonaws.com
}

// customerService returns the service of a customerPrefixes label (the
// name of its VPC endpoints: vpce-ID.execute-api.REGION.vpce.amazonaws.com).
func customerService(label string) (string, bool) {
	for _, c := range customerPrefixes {
		if c.label == label && c.domain == "" {
			return c.service, true
		}
	}
	return "", false
}

func inferCustomerPrefix(h awsHost, _ string) (string, string, bool) {
	rest, region := cutLast(h.prefix)
	if !regionIn(h.parts, region) {
		return "", "", false
	}
	for _, c := range customerPrefixes {
		if (c.domain == "on.aws") != (h.domain == "on.aws") {
			continue
		}
		id, ok := strings.CutSuffix(rest, "."+c.label)
		if !ok {
			id, ok = strings.CutSuffix(rest, "."+c.label+"-fips")
		}
		if ok && id != "" {
			return c.service, region, false
		}
	}
	return "", "", false
}

// inferIoTData: IoT Core's data endpoints, an account's ID-ats.iot.REGION
// (ID.ats.iot.REGION in China) and the shared data-ats.iot.REGION
// (data.ats.iot in China), serve the HTTPS data plane (iotdata) and MQTT
// over WebSocket at /mqtt (iotdevicegateway). It comes before the
// endpoint data, which names the shared host iotdata whatever the path,
// and leaves it the prefixes it signs otherwise (greengrass-ats.iot).
func inferIoTData(h awsHost, path string) (string, string, bool) {
	rest, region := cutLast(h.prefix)
	if !regionIn(h.parts, region) {
		return "", "", false
	}
	id, ok := strings.CutSuffix(rest, ".iot")
	if !ok {
		id, ok = strings.CutSuffix(rest, ".iot-fips")
	}
	if !ok {
		return "", "", false
	}
	label, ok := strings.CutSuffix(id, "-ats")
	if !ok {
		label, ok = strings.CutSuffix(id, ".ats")
	}
	if !ok || label == "" || strings.IndexByte(label, '.') >= 0 {
		return "", "", false
	}
	if name, known := lookupPrefix(rest); known && name != "iotdata" {
		return "", "", false // greengrass-ats.iot: the endpoint data's
	}
	return iotService(path), region, true
}

// iotService is the signing name of a request to an IoT Core data
// endpoint: iotdevicegateway for MQTT over WebSocket, else iotdata.
func iotService(path string) string {
	if path == "/mqtt" {
		return "iotdevicegateway"
	}
	return "iotdata"
}

// inferKafkaBroker: MSK brokers, b-1.NAME.ID.c2.kafka.REGION and
// boot-ID.c1.kafka-serverless.REGION, authenticate IAM clients as
// kafka-cluster.
func inferKafkaBroker(h awsHost, _ string) (string, string, bool) {
	rest, region := cutLast(h.prefix)
	if !regionIn(h.parts, region) {
		return "", "", false
	}
	rest, svc := cutLast(rest)
	switch strings.TrimSuffix(svc, "-fips") {
	case "kafka", "kafka-serverless":
		if strings.IndexByte(rest, '.') > 0 { // at least NAME.cN
			return "kafka-cluster", region, false
		}
	}
	return "", "", false
}

// domainServices are the services whose customers' endpoints put the
// region before the service: NAME.REGION.SERVICE.DOMAIN.
var domainServices = [...]struct{ label, service string }{
	{"es", "es"},                       // OpenSearch Service: search-x-abc.eu-west-2.es.amazonaws.com
	{"aoss", "aoss"},                   // OpenSearch Serverless: abc.us-east-1.aoss.amazonaws.com
	{"osis", "osis"},                   // OpenSearch Ingestion: pipe-abc.us-east-1.osis.amazonaws.com
	{"neptune", "neptune-db"},          // Neptune: db.cluster-abc.eu-west-1.neptune.amazonaws.com
	{"neptune-graph", "neptune-graph"}, // Neptune Analytics: g-abc.us-east-1.neptune-graph.amazonaws.com
}

// inferDomainEndpoint reads NAME.REGION.SERVICE[-fips].DOMAIN, and
// OpenSearch's dual-stack domains, NAME.aos.REGION.on.aws.
func inferDomainEndpoint(h awsHost, _ string) (string, string, bool) {
	rest, last := cutLast(h.prefix)
	if h.domain == "on.aws" {
		name, aos := cutLast(rest)
		if aos == "aos" && name != "" && regionIn(h.parts, last) {
			return "es", last, false
		}
		return "", "", false
	}
	name, region := cutLast(rest)
	if name == "" || !regionIn(h.parts, region) {
		return "", "", false
	}
	svc := strings.TrimSuffix(last, "-fips")
	for _, d := range domainServices {
		if d.label == svc {
			return d.service, region, false
		}
	}
	return "", "", false
}
