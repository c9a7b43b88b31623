package kivuli

import "strings"

// awsDomains are the DNS suffixes of AWS endpoints, to which signed requests
// may always go.
var awsDomains = []string{
	".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".on.aws",
	".c2s.ic.gov", ".sc2s.sgov.gov", ".cloud.adc-e.uk", ".csp.hci.ic.gov",
}

// splitAWSHost returns the labels of an AWS endpoint's host name before its
// AWS domain, or nil if the host is not an AWS endpoint.
func splitAWSHost(host string) []string {
	for _, d := range awsDomains {
		if prefix, ok := strings.CutSuffix(host, d); ok && prefix != "" {
			return strings.Split(prefix, ".")
		}
	}
	return nil
}

// isRegion reports whether label looks like an AWS region name: us-east-1,
// eu-west-2, us-gov-west-1, cn-north-1, us-isob-east-1, ap-southeast-5.
func isRegion(label string) bool {
	// Two letters, then one or more parts of letters, then a number of
	// one or two digits, separated by '-'; without allocating.
	parts, digits := 0, 0
	for part := range strings.SplitSeq(label, "-") {
		parts++
		if part == "" || parts == 1 && len(part) != 2 {
			return false
		}
		digits = 0
		for i := 0; i < len(part); i++ {
			switch c := part[i]; {
			case '0' <= c && c <= '9':
				digits++
			case c < 'a' || c > 'z':
				return false
			}
		}
		if digits != 0 && digits != len(part) {
			return false
		}
	}
	last := label[strings.LastIndexByte(label, '-')+1:]
	return parts >= 3 && digits == len(last) && digits <= 2 && digits > 0 && !strings.ContainsAny(label[:len(label)-len(last)], "0123456789")
}

// inferScope derives the signing service and region from an AWS endpoint's
// host name (lower case, without port) and the request path. Either result
// may be "" when the host does not say.
func inferScope(host, path string) (service, region string) {
	labels := splitAWSHost(host)
	if labels == nil {
		return "", ""
	}
	// S3: bucket.s3.amazonaws.com, s3.eu-west-2.amazonaws.com,
	// bucket.s3.dualstack.eu-west-2.amazonaws.com, bucket.s3-eu-west-2...,
	// s3-external-1, s3-fips, s3-accesspoint, s3-control.
	for i, l := range labels {
		if l == "s3" || strings.HasPrefix(l, "s3-") {
			rest := labels[i+1:]
			switch {
			case l == "s3-external-1":
				return "s3", "us-east-1"
			case l == "s3-object-lambda":
				return "s3-object-lambda", lastRegion(rest)
			case strings.HasPrefix(l, "s3-") && isRegion(l[3:]):
				return "s3", l[3:]
			case len(rest) == 0 && (l == "s3" || l == "s3-fips"):
				return "s3", "us-east-1"
			case l == "s3-accelerate":
				return "s3", ""
			}
			return "s3", lastRegion(rest)
		}
	}
	n := len(labels)
	last := labels[n-1]
	if strings.HasSuffix(host, ".on.aws") && n >= 2 && labels[n-2] == "lambda-url" {
		return "lambda", last // x.lambda-url.eu-west-1.on.aws: region is last
	}
	var svc string
	switch {
	case isRegion(last) && n >= 2:
		// service.region (sts.eu-west-1) or prefix.service.region
		// (abc.execute-api.eu-west-1, x-ats.iot.eu-west-1).
		svc, region = labels[n-2], last
		if svc == "dualstack" && n >= 3 {
			svc = labels[n-3]
		}
	case n >= 2 && isRegion(labels[n-2]):
		// prefix.region.service: OpenSearch, OpenSearch Serverless, Neptune.
		svc, region = last, labels[n-2]
	case n == 1:
		// Global endpoints: sts.amazonaws.com, iam.amazonaws.com.
		svc, region = last, "us-east-1"
	default:
		return "", ""
	}
	svc = strings.TrimSuffix(svc, "-fips")
	switch svc {
	case "neptune":
		svc = "neptune-db"
	case "transcribestreaming":
		svc = "transcribe"
	case "email":
		svc = "ses"
	case "iot":
		// The device data endpoint (x-ats.iot.region) serves MQTT over
		// WebSocket at /mqtt and the HTTPS data plane elsewhere.
		if n > 2 && strings.HasSuffix(labels[0], "-ats") {
			svc = "iotdata"
			if path == "/mqtt" {
				svc = "iotdevicegateway"
			}
		}
	case "kafka":
		if n > 2 {
			svc = "kafka-cluster" // a broker: b-1.name.id.c2.kafka.region
		}
	}
	return svc, region
}

func lastRegion(labels []string) string {
	for i := len(labels) - 1; i >= 0; i-- {
		if isRegion(labels[i]) {
			return labels[i]
		}
	}
	return ""
}
