package kivuli_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kivuli-go/kivuli"
)

// scopeSigner signs requests to any host with a Transport that infers the
// scope, and tells the scope each was signed with.
type scopeSigner struct {
	t         *testing.T
	tr        *kivuli.Transport
	auth      string
	regionSet string // SigV4a's X-Amz-Region-Set
}

func newScopeSigner(t *testing.T, tr *kivuli.Transport) *scopeSigner {
	s := &scopeSigner{t: t, tr: tr}
	if tr == nil {
		s.tr = &kivuli.Transport{}
	}
	s.tr.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: "TOKEN"}, nil
	})
	s.tr.Base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		s.auth = req.Header.Get("Authorization")
		s.regionSet = req.Header.Get("X-Amz-Region-Set")
		if c := req.URL.Query().Get("X-Amz-Credential"); c != "" {
			s.auth = "Credential=" + c + ","
			s.regionSet = req.URL.Query().Get("X-Amz-Region-Set")
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})
	return s
}

// scope signs a GET of https://host+path and returns "service/region", or
// the error; for SigV4a, "service/region set" (AKID/date/service/aws4_request
// and X-Amz-Region-Set).
func (s *scopeSigner) scope(host, path string) (string, error) {
	s.auth = ""
	_, err := s.tr.RoundTrip(&http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: host, Path: path}, Header: http.Header{}})
	if err != nil {
		return "", err
	}
	_, cred, ok := strings.Cut(s.auth, "Credential=")
	if !ok {
		s.t.Fatalf("%s: no credential in %q", host, s.auth)
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(parts) == 4 && strings.HasPrefix(s.auth, "AWS4-ECDSA-P256-SHA256 ") || strings.Contains(s.auth, "Credential=") && s.regionSet != "" {
		return parts[2] + "/" + s.regionSet, nil
	}
	if len(parts) != 5 {
		s.t.Fatalf("%s: credential %q", host, cred)
	}
	return parts[3] + "/" + parts[2], nil
}

// endpointRow is a line of testdata/endpoints.txt.gz: what the SDKs'
// endpoint data resolve for a service, variant and region.
type endpointRow struct {
	host, variant, partition, services, scope string
	region                                    string // the signing region
}

func readEndpointRows(t *testing.T) []endpointRow {
	f, err := os.Open("testdata/endpoints.txt.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var rows []endpointRow
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		require.Len(t, f, 6, line)
		rows = append(rows, endpointRow{host: f[0], variant: f[1], partition: f[2], services: f[3], scope: f[4] + "/" + f[5], region: f[5]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, rows)
	return rows
}

// partitionDomains are the DNS suffixes of the partitions of the test data.
var partitionDomains = map[string]string{
	"aws": "amazonaws.com", "aws-us-gov": "amazonaws.com", "aws-cn": "amazonaws.com.cn",
	"aws-eusc": "amazonaws.eu", "aws-iso": "c2s.ic.gov",
}

// TestScopeInference: the hosts the endpoint data cannot hold, because
// customers name part of them, and the examples of issue 10 that were
// signed with a wrong scope or refused before the table.
func TestScopeInference(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	for _, tc := range []struct{ name, host, path, want string }{
		// Issue 10's examples, as the SDKs sign them.
		{"bedrock-runtime signs as bedrock", "bedrock-runtime.us-east-1.amazonaws.com", "/", "bedrock/us-east-1"},
		{"AMP's workspace API signs as aps", "aps-workspaces.eu-west-2.amazonaws.com", "/workspaces/ws-1/api/v1/remote_write", "aps/eu-west-2"},
		{"bedrock-agent-runtime signs as bedrock", "bedrock-agent-runtime.eu-west-2.amazonaws.com", "/", "bedrock/eu-west-2"},
		{"AppSync GraphQL signs as appsync", "abc.appsync-api.eu-west-2.amazonaws.com", "/graphql", "appsync/eu-west-2"},
		{"appstream2 signs as appstream", "appstream2.eu-west-2.amazonaws.com", "/", "appstream/eu-west-2"},
		{"Marketplace metering signs as aws-marketplace", "metering.marketplace.us-east-1.amazonaws.com", "/", "aws-marketplace/us-east-1"},
		{"IAM in GovCloud", "iam.us-gov.amazonaws.com", "/", "iam/us-gov-west-1"},
		{"STS China dual-stack", "sts.cn-north-1.api.amazonwebservices.com.cn", "/", "sts/cn-north-1"},
		{"STS VPC endpoint", "vpce-0abc-xyz.sts.eu-west-2.vpce.amazonaws.com", "/", "sts/eu-west-2"},

		// The endpoint rules' hosts that the legacy data does not name.
		{"EFS dual-stack signs as elasticfilesystem", "efs.eu-west-2.api.aws", "/", "elasticfilesystem/eu-west-2"},
		{"DynamoDB Streams dual-stack", "streams-dynamodb.eu-west-2.api.aws", "/", "dynamodb/eu-west-2"},
		{"MSK dual-stack", "kafka-api.eu-west-2.api.aws", "/", "kafka/eu-west-2"},
		{"Route 53 dual-stack", "route53.global.api.aws", "/", "route53/us-east-1"},
		{"AWS Sign-In", "eu-west-2.signin.aws.amazon.com", "/", "signin/eu-west-2"},
		{"AWS Sign-In OAuth", "eu-west-2.oauth.signin.aws", "/", "signin/eu-west-2"},

		// The endpoint data's other forms.
		{"global STS", "sts.amazonaws.com", "/", "sts/us-east-1"},
		{"regional STS", "sts.eu-west-2.amazonaws.com", "/", "sts/eu-west-2"},
		{"FIPS", "sts-fips.us-east-1.amazonaws.com", "/", "sts/us-east-1"},
		{"dual-stack", "sts.eu-west-2.api.aws", "/", "sts/eu-west-2"},
		{"FIPS dual-stack", "sts-fips.us-east-1.api.aws", "/", "sts/us-east-1"},
		{"GovCloud", "dynamodb.us-gov-west-1.amazonaws.com", "/", "dynamodb/us-gov-west-1"},
		{"China", "sts.cn-north-1.amazonaws.com.cn", "/", "sts/cn-north-1"},
		{"European Sovereign Cloud", "sts.eusc-de-east-1.amazonaws.eu", "/", "sts/eusc-de-east-1"},
		{"ISO", "sts.us-iso-east-1.c2s.ic.gov", "/", "sts/us-iso-east-1"},
		{"a region newer than the data", "sts.ap-south-9.amazonaws.com", "/", "sts/ap-south-9"},
		{"DynamoDB Streams signs as dynamodb", "streams.dynamodb.eu-west-1.amazonaws.com", "/", "dynamodb/eu-west-1"},
		{"CloudWatch signs as monitoring", "monitoring.eu-west-1.amazonaws.com", "/", "monitoring/eu-west-1"},
		{"SES signs as ses", "email.eu-west-1.amazonaws.com", "/", "ses/eu-west-1"},
		{"Pinpoint signs as mobiletargeting", "pinpoint.eu-west-1.amazonaws.com", "/", "mobiletargeting/eu-west-1"},
		{"Route 53 global", "route53.amazonaws.com", "/", "route53/us-east-1"},
		{"S3 path-style", "s3.eu-west-1.amazonaws.com", "/bucket/key", "s3/eu-west-1"},
		{"S3 path-style, global", "s3.amazonaws.com", "/bucket/key", "s3/us-east-1"},
		{"S3 Control", "s3-control.eu-west-1.amazonaws.com", "/", "s3/eu-west-1"},
		{"IoT data, shared", "data-ats.iot.eu-west-1.amazonaws.com", "/topics/x", "iotdata/eu-west-1"},

		// VPC interface endpoints and their variants.
		{"VPC endpoint, zonal", "vpce-0abc-xyz-eu-west-2a.sts.eu-west-2.vpce.amazonaws.com", "/", "sts/eu-west-2"},
		{"VPC endpoint, FIPS", "vpce-0abc-xyz.kms-fips.us-east-1.vpce.amazonaws.com", "/", "kms/us-east-1"},
		{"VPC endpoint, two-label prefix", "vpce-0abc-xyz.api.ecr.eu-west-1.vpce.amazonaws.com", "/", "ecr/eu-west-1"},
		{"VPC endpoint, signing name", "vpce-0abc-xyz.bedrock-runtime.us-east-1.vpce.amazonaws.com", "/", "bedrock/us-east-1"},
		{"VPC endpoint, China", "vpce-0abc-xyz.sts.cn-north-1.vpce.amazonaws.com.cn", "/", "sts/cn-north-1"},
		{"VPC endpoint, S3 bucket", "bucket.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com", "/key", "s3/eu-west-1"},
		{"VPC endpoint, S3 access point", "accesspoint.vpce-0abc-xyz.s3.eu-west-1.vpce.amazonaws.com", "/", "s3/eu-west-1"},
		{"VPC endpoint, API Gateway", "vpce-0abc-xyz.execute-api.eu-west-1.vpce.amazonaws.com", "/prod", "execute-api/eu-west-1"},

		// S3.
		{"S3 virtual-hosted", "bucket.s3.eu-west-1.amazonaws.com", "/key", "s3/eu-west-1"},
		{"S3 virtual-hosted, global", "bucket.s3.amazonaws.com", "/key", "s3/us-east-1"},
		{"S3 virtual-hosted, dotted bucket", "my.bucket.s3.eu-west-1.amazonaws.com", "/key", "s3/eu-west-1"},
		{"S3 legacy dash form", "bucket.s3-eu-west-1.amazonaws.com", "/key", "s3/eu-west-1"},
		{"S3 external-1", "bucket.s3-external-1.amazonaws.com", "/key", "s3/us-east-1"},
		{"S3 dual-stack", "bucket.s3.dualstack.ap-south-1.amazonaws.com", "/key", "s3/ap-south-1"},
		{"S3 FIPS", "bucket.s3-fips.us-east-1.amazonaws.com", "/key", "s3/us-east-1"},
		{"S3 FIPS dual-stack", "bucket.s3-fips.dualstack.us-east-1.amazonaws.com", "/key", "s3/us-east-1"},
		{"S3 China", "bucket.s3.cn-north-1.amazonaws.com.cn", "/key", "s3/cn-north-1"},
		{"S3 access point", "ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", "/key", "s3/eu-west-1"},
		{"S3 access point, FIPS dual-stack", "ap-123456789012.s3-accesspoint-fips.dualstack.us-east-1.amazonaws.com", "/key", "s3/us-east-1"},
		{"S3 Object Lambda", "ol-123456789012.s3-object-lambda.eu-west-1.amazonaws.com", "/key", "s3-object-lambda/eu-west-1"},
		{"S3 Object Lambda, FIPS", "ol-123456789012.s3-object-lambda-fips.us-east-1.amazonaws.com", "/key", "s3-object-lambda/us-east-1"},
		{"S3 Control, account", "123456789012.s3-control.eu-west-1.amazonaws.com", "/v20180820/jobs", "s3/eu-west-1"},
		{"S3 on Outposts", "ap-123456789012.op-01ac5d28a6a232904.s3-outposts.us-west-2.amazonaws.com", "/key", "s3-outposts/us-west-2"},

		// Customer prefixes.
		{"API Gateway", "abc123.execute-api.eu-central-1.amazonaws.com", "/prod", "execute-api/eu-central-1"},
		{"API Gateway, dual-stack", "abc123.execute-api.eu-central-1.api.aws", "/prod", "execute-api/eu-central-1"},
		{"API Gateway, FIPS", "abc123.execute-api-fips.us-east-1.amazonaws.com", "/prod", "execute-api/us-east-1"},
		{"AppSync real-time", "abc.appsync-realtime-api.eu-west-2.amazonaws.com", "/graphql", "appsync/eu-west-2"},
		{"Lambda function URL", "xyz.lambda-url.eu-west-1.on.aws", "/", "lambda/eu-west-1"},
		{"DynamoDB account endpoint", "123456789012.ddb.us-east-1.amazonaws.com", "/", "dynamodb/us-east-1"},
		{"Timestream cell", "ingest-cell1.timestream.us-east-1.amazonaws.com", "/", "timestream/us-east-1"},
		{"MediaStore container", "abc.data.mediastore.eu-west-1.amazonaws.com", "/a", "mediastore/eu-west-1"},

		// IoT Core's account endpoint: the path picks the service.
		{"IoT MQTT over WebSocket", "a1b2-ats.iot.eu-west-1.amazonaws.com", "/mqtt", "iotdevicegateway/eu-west-1"},
		{"IoT data plane", "a1b2-ats.iot.eu-west-1.amazonaws.com", "/topics/x", "iotdata/eu-west-1"},
		{"IoT data plane, FIPS", "a1b2-ats.iot-fips.us-east-1.amazonaws.com", "/topics/x", "iotdata/us-east-1"},
		{"IoT data plane, China", "a1b2c3.ats.iot.cn-north-1.amazonaws.com.cn", "/topics/x", "iotdata/cn-north-1"},
		{"IoT MQTT over WebSocket, China", "a1b2c3.ats.iot.cn-north-1.amazonaws.com.cn", "/mqtt", "iotdevicegateway/cn-north-1"},
		{"IoT MQTT over WebSocket, shared endpoint", "data-ats.iot.eu-west-1.amazonaws.com", "/mqtt", "iotdevicegateway/eu-west-1"},
		{"IoT MQTT over WebSocket, shared endpoint, China", "data.ats.iot.cn-north-1.amazonaws.com.cn", "/mqtt", "iotdevicegateway/cn-north-1"},
		{"IoT MQTT over WebSocket, VPC endpoint", "vpce-0abc-xyz.data-ats.iot.eu-west-1.vpce.amazonaws.com", "/mqtt", "iotdevicegateway/eu-west-1"},
		{"IoT data plane, VPC endpoint", "vpce-0abc-xyz.data-ats.iot.eu-west-1.vpce.amazonaws.com", "/topics/x", "iotdata/eu-west-1"},
		{"Greengrass ATS is not an IoT data endpoint", "greengrass-ats.iot.eu-west-1.amazonaws.com", "/greengrass/discover/thing/x", "greengrass/eu-west-1"},
		{"IoT control plane", "iot.eu-west-1.amazonaws.com", "/things", "iot/eu-west-1"},

		// MSK brokers.
		{"MSK broker", "b-1.name.abc123.c2.kafka.eu-west-1.amazonaws.com", "/", "kafka-cluster/eu-west-1"},
		{"MSK Serverless", "boot-abc.c1.kafka-serverless.eu-west-1.amazonaws.com", "/", "kafka-cluster/eu-west-1"},
		{"MSK control plane", "kafka.eu-west-1.amazonaws.com", "/", "kafka/eu-west-1"},

		// Domain endpoints.
		{"OpenSearch", "search-logs-abc.eu-west-2.es.amazonaws.com", "/_search", "es/eu-west-2"},
		{"OpenSearch VPC domain", "vpc-logs-abc.eu-west-2.es.amazonaws.com", "/_search", "es/eu-west-2"},
		{"OpenSearch dual-stack", "search-logs-abc.aos.eu-west-2.on.aws", "/_search", "es/eu-west-2"},
		{"OpenSearch GovCloud", "search-logs-abc.us-gov-west-1.es.amazonaws.com", "/", "es/us-gov-west-1"},
		{"OpenSearch Serverless", "abc.us-east-1.aoss.amazonaws.com", "/", "aoss/us-east-1"},
		{"OpenSearch Serverless, FIPS", "abc.us-east-1.aoss-fips.amazonaws.com", "/", "aoss/us-east-1"},
		{"OpenSearch Ingestion", "pipe-abc.us-east-1.osis.amazonaws.com", "/log/ingest", "osis/us-east-1"},
		{"Neptune cluster", "db.cluster-abc.eu-west-1.neptune.amazonaws.com:8182", "/gremlin", "neptune-db/eu-west-1"},
		{"Neptune reader", "db.cluster-ro-abc.eu-west-1.neptune.amazonaws.com:8182", "/gremlin", "neptune-db/eu-west-1"},
		{"Neptune Analytics", "g-abc.us-east-1.neptune-graph.amazonaws.com", "/queries", "neptune-graph/us-east-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newScopeSigner(t, nil).scope(tc.host, tc.path)
			require.NoError(t, err, tc.host)
			assert.Equal(t, tc.want, got, tc.host)
		})
	}
}

// TestScopeRefused: a host no rule knows is refused, never guessed.
func TestScopeRefused(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	for _, host := range []string{
		"nosuchservice.eu-west-2.amazonaws.com",             // not in the data
		"foo.sts.eu-west-2.amazonaws.com",                   // a prefix the data has, under a label no rule knows
		"sts.amazonaws.com.cn",                              // no global STS in China
		"sts.eu-west-2.c2s.ic.gov",                          // a region of another partition than the domain's
		"sts.us-iso-east-1.amazonaws.com",                   // likewise
		"s3.eu-west-2.amazonaws.com.cn",                     // likewise
		"x.eu-west-2.nosuch.amazonaws.com",                  // a domain endpoint of no service
		"vpce-0abc.nosuch.eu-west-2.vpce.amazonaws.com",     // a VPC endpoint of no service
		"bucket.vpce-0abc.sts.eu-west-2.vpce.amazonaws.com", // only S3's VPC endpoints have a label before
		"vpce-0abc.sts.eu-west-2.vpce.api.aws",              // no such VPC endpoint name
		"a.b.mrap.accesspoint.s3-global.amazonaws.com",      // a Multi-Region Access Point's alias is one label
		"mrap.accesspoint.s3-global.amazonaws.com",          // no alias
		"alias.mrap.accesspoint.s3-global.api.aws",          // no dual-stack MRAP
		"abcde.endpoint.events.amazonaws.com",               // an EventBridge global endpoint's ID is two labels
		"123456789012.cloudfront-kvs.global.amazonaws.com",  // KeyValueStore is under api.aws
		"a1b2.iot.eu-west-1.amazonaws.com",                  // not an ATS data endpoint
		"c1d2.credentials.iot.eu-west-1.amazonaws.com",      // the credentials provider: X.509, not SigV4
		"c2.kafka.eu-west-1.amazonaws.com",                  // not a broker
		"appsync-api.eu-west-1.amazonaws.com",               // no API ID
		"eu-west-2.es.amazonaws.com",                        // no domain
		"amazonaws.com.evil.example.com",                    // not an AWS domain
	} {
		tr := &kivuli.Transport{AllowedHosts: []string{"amazonaws.com.evil.example.com"}}
		_, err := newScopeSigner(t, tr).scope(host, "/")
		assert.ErrorIs(t, err, kivuli.ErrUnknownScope, host)
	}
	t.Run("a region is still needed", func(t *testing.T) {
		_, err := newScopeSigner(t, nil).scope("bucket.s3-accelerate.amazonaws.com", "/key")
		assert.ErrorIs(t, err, kivuli.ErrUnknownScope)
		assert.ErrorContains(t, err, "AWS_REGION")
	})
}

// TestScopeOverride: Transport.Service and Region replace what the host
// says.
func TestScopeOverride(t *testing.T) {
	for _, tc := range []struct{ service, region, host, want string }{
		{"aoss", "", "search-x.eu-west-2.es.amazonaws.com", "aoss/eu-west-2"},
		{"", "us-east-1", "search-x.eu-west-2.es.amazonaws.com", "es/us-east-1"},
		{"es", "eu-west-1", "search.example.com", "es/eu-west-1"},
		{"iotdata", "", "a1b2-ats.iot.eu-west-1.amazonaws.com", "iotdata/eu-west-1"},
		{"myservice", "", "myservice.eu-west-2.amazonaws.com", "myservice/eu-west-2"}, // a service no data names: the host still names the region
	} {
		tr := &kivuli.Transport{Service: tc.service, Region: tc.region, AllowedHosts: []string{"search.example.com"}}
		got, err := newScopeSigner(t, tr).scope(tc.host, "/mqtt")
		require.NoError(t, err, tc.host)
		assert.Equal(t, tc.want, got, tc.host)
	}
}

// TestRegionFromEnv: a host that names no region is signed for
// AWS_REGION, else AWS_DEFAULT_REGION, read once per Transport; a host
// that names one, or Transport.Region, wins over both.
func TestRegionFromEnv(t *testing.T) {
	for _, tc := range []struct{ region, defaultRegion, host, want string }{
		{"eu-west-1", "ap-south-1", "bucket.s3-accelerate.amazonaws.com", "s3/eu-west-1"},
		{"", "ap-south-1", "bucket.s3-accelerate.amazonaws.com", "s3/ap-south-1"},
		{"eu-west-1", "", "search.example.com", "es/eu-west-1"},
		{"eu-west-1", "", "sts.eu-west-2.amazonaws.com", "sts/eu-west-2"},
		{"eu-west-1", "", "sts.amazonaws.com", "sts/us-east-1"},
	} {
		t.Run(fmt.Sprintf("%s,%s,%s", tc.region, tc.defaultRegion, tc.host), func(t *testing.T) {
			t.Setenv("AWS_REGION", tc.region)
			t.Setenv("AWS_DEFAULT_REGION", tc.defaultRegion)
			tr := &kivuli.Transport{AllowedHosts: []string{"search.example.com"}}
			if tc.host == "search.example.com" {
				tr.Service = "es"
			}
			got, err := newScopeSigner(t, tr).scope(tc.host, "/")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("Transport.Region wins", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-west-1")
		got, err := newScopeSigner(t, &kivuli.Transport{Region: "us-west-2"}).scope("bucket.s3-accelerate.amazonaws.com", "/")
		require.NoError(t, err)
		assert.Equal(t, "s3/us-west-2", got)
	})
	t.Run("read once", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-west-1")
		s := newScopeSigner(t, &kivuli.Transport{Service: "es", AllowedHosts: []string{"a.example.com", "b.example.com"}})
		got, err := s.scope("a.example.com", "/")
		require.NoError(t, err)
		assert.Equal(t, "es/eu-west-1", got)
		t.Setenv("AWS_REGION", "ap-south-1")
		got, err = s.scope("b.example.com", "/") // another host: not the route cache
		require.NoError(t, err)
		assert.Equal(t, "es/eu-west-1", got, "the environment is read once per Transport")
	})
	t.Run("not a region name", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-west-1\r\nX-Injected: 1")
		_, err := newScopeSigner(t, nil).scope("bucket.s3-accelerate.amazonaws.com", "/")
		require.ErrorIs(t, err, kivuli.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "AWS_REGION")
	})
}

func TestTransportScopeInference(t *testing.T) {
	var got []string
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		got = append(got, req.Header.Get("Authorization")+req.URL.Query().Get("X-Amz-Credential"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	})
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
	})
	for _, tc := range []struct{ url, service, region, scope string }{
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/_search", "", "", "/eu-west-2/es/"},
		{"https://abc.us-east-1.aoss.amazonaws.com/", "", "", "/us-east-1/aoss/"},
		{"https://bucket.s3.amazonaws.com/key", "", "", "/us-east-1/s3/"},
		{"https://bucket.s3.eu-west-1.amazonaws.com/key", "", "", "/eu-west-1/s3/"},
		{"https://bucket.s3.dualstack.ap-south-1.amazonaws.com/key", "", "", "/ap-south-1/s3/"},
		{"https://bucket.s3-eu-west-1.amazonaws.com/key", "", "", "/eu-west-1/s3/"},
		{"https://s3.amazonaws.com/bucket/key", "", "", "/us-east-1/s3/"},
		{"https://abc123.execute-api.eu-central-1.amazonaws.com/prod", "", "", "/eu-central-1/execute-api/"},
		{"https://xyz.lambda-url.eu-west-1.on.aws/", "", "", "/eu-west-1/lambda/"},
		{"https://sts.eu-west-2.amazonaws.com/", "", "", "/eu-west-2/sts/"},
		{"https://sts.amazonaws.com/", "", "", "/us-east-1/sts/"},
		{"https://dynamodb.us-gov-west-1.amazonaws.com/", "", "", "/us-gov-west-1/dynamodb/"},
		{"https://sts.cn-north-1.amazonaws.com.cn/", "", "", "/cn-north-1/sts/"},
		{"https://db.cluster-x.eu-west-1.neptune.amazonaws.com:8182/gremlin", "", "", "/eu-west-1/neptune-db/"},
		{"https://a1b2-ats.iot.eu-west-1.amazonaws.com/mqtt", "", "", "/eu-west-1/iotdevicegateway/"},
		{"https://a1b2-ats.iot.eu-west-1.amazonaws.com/topics/x", "", "", "/eu-west-1/iotdata/"},
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/", "aoss", "", "/eu-west-2/aoss/"},
		{"https://search-logs-abc.eu-west-2.es.amazonaws.com/", "", "us-east-1", "/us-east-1/es/"},
		{"https://bucket.s3-accelerate.amazonaws.com/key", "", "eu-west-1", "/eu-west-1/s3/"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got = nil
			tr := &kivuli.Transport{Credentials: creds, Service: tc.service, Region: tc.region, Base: base}
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := tr.RoundTrip(req)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Contains(t, got[0], tc.scope)
		})
	}
	// IoT's shared and VPC data endpoints sign by path, so one Transport
	// must not keep the first path's scope for the host.
	for _, host := range []string{"data-ats.iot.eu-west-1.amazonaws.com", "vpce-0abc-xyz.data-ats.iot.eu-west-1.vpce.amazonaws.com"} {
		tr := &kivuli.Transport{Credentials: creds, Base: base}
		for _, p := range []struct{ path, scope string }{{"/topics/x", "/iotdata/"}, {"/mqtt", "/iotdevicegateway/"}, {"/topics/y", "/iotdata/"}} {
			got = nil
			req, _ := http.NewRequest(http.MethodGet, "https://"+host+p.path, nil)
			_, err := tr.RoundTrip(req)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Contains(t, got[0], "/eu-west-1"+p.scope, host+p.path)
		}
	}
	for _, u := range []string{"https://bucket.s3-accelerate.amazonaws.com/key", "https://search.example.com/"} {
		tr := &kivuli.Transport{Credentials: creds, Base: base, AllowedHosts: []string{"search.example.com"}}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		_, err := tr.RoundTrip(req)
		require.ErrorIs(t, err, kivuli.ErrUnknownScope, u)
	}
}
