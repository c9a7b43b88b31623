// Command sdkoracle writes what aws-sdk-go-v2 itself resolves and signs
// for each service module of endpointgen's build list (svcs.txt): for 25
// regions and pseudo-regions, the four variants, the global-endpoint
// switch, S3's bucket and ARN forms and the customers' endpoints that
// take SigV4a (EventBridge's EndpointId, CloudFront KeyValueStore's
// KvsARN), each module's
// NewDefaultEndpointResolverV2 and then its client's auth scheme
// resolver, the endpoint's authSchemes laid over it. One JSON line per
// question: the host and path, and the SigV4 signing name and region (or
// SigV4A, its signing name and region set, or the rules' error).
//
// It was written for the project's second review, independently of
// endpointgen and its sdkrules, so that TestSDKOracle checks the table
// kivuli signs with against code that shares nothing with the code that
// generated it. To take newer data, after endpointgen's go.mod is
// updated:
//
//	cd internal/endpointgen && bash sdkoracle/gen.sh && go run ./sdkoracle | gzip -n > ../../testdata/sdk-oracle.jsonl.gz
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"

	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type paramSetter func(params any)

type result struct {
	Host, Path, Scheme string
	Service, Region    string // what the SDK signs with (SigV4); "" if no sigv4
	SigV4A             bool
	RegionSet          []string `json:",omitempty"` // SigV4a's
	Err                string
}

type svc struct {
	name string
	fn   func(paramSetter) result
}

type resolver[P any] interface {
	ResolveEndpoint(context.Context, P) (smithyendpoints.Endpoint, error)
}

func resolve[P any](r resolver[P], p P, auth func(context.Context) (any, error)) (res result) {
	defer func() {
		if e := recover(); e != nil {
			res.Err = fmt.Sprint("panic: ", e)
			if os.Getenv("STACK") != "" {
				os.Stderr.Write(debug.Stack())
				os.Exit(1)
			}
		}
	}()
	ctx := context.Background()
	ep, err := r.ResolveEndpoint(ctx, p)
	if err != nil {
		res.Err = err.Error()
		return
	}
	res.Host, res.Path, res.Scheme = ep.URI.Host, ep.URI.Path, ep.URI.Scheme
	// endpoint auth schemes override the service's default
	if opts, ok := smithyauth.GetAuthOptions(&ep.Properties); ok && len(opts) > 0 {
		for _, o := range opts {
			switch o.SchemeID {
			case "aws.auth#sigv4", "sigv4":
				n, _ := smithyhttp.GetSigV4SigningName(&o.SignerProperties)
				rg, _ := smithyhttp.GetSigV4SigningRegion(&o.SignerProperties)
				res.Service, res.Region = n, rg
				if n != "" {
					return
				}
				goto fill
			case "aws.auth#sigv4a", "sigv4a":
				res.SigV4A = true
				n, _ := smithyhttp.GetSigV4ASigningName(&o.SignerProperties)
				res.Service = n
				res.RegionSet, _ = smithyhttp.GetSigV4ASigningRegions(&o.SignerProperties)
			}
		}
		if res.SigV4A {
			return
		}
	}
fill:
	ao, err := safeAuth(auth, ctx)
	if err == errPanic {
		if res.Service == "" {
			res.Service = "DEFAULT"
		}
		return
	}
	if err != nil {
		res.Err = "auth: " + err.Error()
		return
	}
	for _, o := range ao.([]*smithyauth.Option) {
		if o.SchemeID == "aws.auth#sigv4" {
			n, _ := smithyhttp.GetSigV4SigningName(&o.SignerProperties)
			rg, _ := smithyhttp.GetSigV4SigningRegion(&o.SignerProperties)
			if res.Service == "" {
				res.Service = n
			}
			if res.Region == "" {
				res.Region = rg
			}
			return
		}
	}
	return
}

func setter(fields map[string]any) paramSetter {
	return func(params any) {
		v := reflect.ValueOf(params).Elem()
		for k, val := range fields {
			f := v.FieldByName(k)
			if !f.IsValid() {
				continue
			}
			pv := reflect.New(f.Type().Elem())
			pv.Elem().Set(reflect.ValueOf(val).Convert(f.Type().Elem()))
			f.Set(pv)
		}
	}
}

type line struct {
	Svc    string
	Params map[string]any
	result
}

var regions = []string{
	"us-east-1", "us-west-2", "eu-west-2", "ap-southeast-1", "eu-central-2", "mx-central-1", "il-central-1", "ca-west-1", "ap-southeast-7",
	"cn-north-1", "cn-northwest-1",
	"us-gov-west-1", "us-gov-east-1",
	"us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1",
	"aws-global", "aws-cn-global", "aws-us-gov-global", "aws-iso-global", "aws-iso-b-global", "aws-iso-e-global", "aws-iso-f-global",
}

func main() {
	enc := json.NewEncoder(os.Stdout)
	emit := func(name string, f func(paramSetter) result, fields map[string]any) {
		r := f(setter(fields))
		enc.Encode(line{name, fields, r})
	}
	for _, s := range services {
		for _, rg := range regions {
			for _, fips := range []bool{false, true} {
				for _, dual := range []bool{false, true} {
					emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual})
					if s.name == "sts" || s.name == "s3" {
						emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "UseGlobalEndpoint": true})
					}
					if s.name == "s3" {
						for _, b := range []string{"my-bucket", "my.dotted.bucket", "arn:aws:s3:" + rg + ":123456789012:accesspoint/myap",
							"arn:aws:s3-object-lambda:" + rg + ":123456789012:accesspoint/mybanner",
							"arn:aws:s3-outposts:" + rg + ":123456789012:outpost/op-01234567890123456/accesspoint/reports",
							"mybucket--usw2-az1--x-s3", "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap"} {
							emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "Bucket": b})
							emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "Bucket": b, "Accelerate": true})
							emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "Bucket": b, "ForcePathStyle": true})
						}
					}
					// Customers' endpoints that take SigV4a.
					if s.name == "eventbridge" {
						emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "EndpointId": "abcde.veo"})
					}
					if s.name == "cloudfrontkeyvaluestore" {
						emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "KvsARN": "arn:aws:cloudfront::123456789012:key-value-store/a1b2c3d4-5678-90ab-cdef-example11111"})
					}
					if s.name == "s3control" {
						emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "AccountId": "123456789012", "RequiresAccountId": true})
						emit(s.name, s.fn, map[string]any{"Region": rg, "UseFIPS": fips, "UseDualStack": dual, "AccountId": "123456789012", "RequiresAccountId": true, "OutpostId": "op-01234567890123456"})
					}
				}
			}
		}
	}
}

var errPanic = fmt.Errorf("auth panic")

func safeAuth(auth func(context.Context) (any, error), ctx context.Context) (a any, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = errPanic
		}
	}()
	return auth(ctx)
}
