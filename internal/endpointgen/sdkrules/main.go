// Command sdkrules asks aws-sdk-go-v2's own resolvers which host each
// service module of endpointgen's go.mod sends to and what it signs with:
// for each region given on the command line and each variant (standard,
// FIPS, dual-stack, FIPS dual-stack), the service's
// NewDefaultEndpointResolverV2().ResolveEndpoint, then the client's auth
// scheme resolver, with the endpoint's authSchemes laid over it as the
// SDK's resolveEndpointV2Middleware does. It writes one JSON line a
// question to standard output.
//
// Its arguments are REGION@PARTITION: besides the questions every
// service is asked, the services of samples are asked about endpoints
// that customers name (an S3 Multi-Region Access Point, a CloudFront
// KeyValueStore, an EventBridge global endpoint), with sample names, in
// each partition; those are the hosts the rules sign with SigV4a.
//
// endpointgen writes services_gen.go (one entry per service module of the
// build list) and runs this command; it is not meant to be run by hand.
// These are the newer endpoint rule sets, which name hosts that the
// legacy internal/endpoints data that endpointgen also reads does not
// (efs.REGION.api.aws, kafka-api, route53.global.api.aws, ...).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"reflect"
	"strings"
	"unsafe"

	smithy "github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// service is one service module's resolvers, and the static context
// parameters its operations bind (acm's ServiceType "ACM" or "ACM-ACME",
// s3's UseObjectLambdaEndpoint...), each set of them a question of its
// own. ask fills the service's EndpointParameters with set, resolves the
// endpoint, and asks the auth scheme resolver of a client made for
// region, with those parameters bound as an operation binds them.
type service struct {
	name   string
	static []map[string]any
	ask    func(region string, set func(params any) bool) (ep smithyendpoints.Endpoint, asked bool, err error, auth []*smithyauth.Option, authErr error)
}

// Answer is what the SDK resolves for one question. Scheme is the auth
// scheme the SDK would sign with ("aws.auth#sigv4", "aws.auth#sigv4a",
// "smithy.api#noAuth", a bearer scheme...); Name and SigningRegion are
// SigV4's, or Name and RegionSet SigV4a's, and AltSigV4 says that the
// scheme is SigV4a and SigV4 is offered after it (S3 on Outposts).
// Customer is set on a sample's answer: the labels that the customer
// names at the start of Host. Err is set when the rules refuse the question (a region or
// variant the service does not have, a parameter it requires).
type Answer struct {
	Service       string
	Region        string
	FIPS          bool           `json:",omitempty"`
	DualStack     bool           `json:",omitempty"`
	Global        bool           `json:",omitempty"` // UseGlobalEndpoint (S3, STS)
	Params        map[string]any `json:",omitempty"` // static context parameters
	Host          string         `json:",omitempty"`
	Path          string         `json:",omitempty"`
	Scheme        string         `json:",omitempty"`
	Name          string         `json:",omitempty"`
	SigningRegion string         `json:",omitempty"`
	// DisableDoubleEncoding: the endpoint's rules sign the path escaped
	// once, as S3 does.
	DisableDoubleEncoding bool     `json:",omitempty"`
	RegionSet             []string `json:",omitempty"`
	AltSigV4              bool     `json:",omitempty"`
	Customer              string   `json:",omitempty"`
	Err                   string   `json:",omitempty"`
}

// sample is a question about an endpoint that a customer names: params,
// in which {partition} and {region} stand for the question's, and the
// labels that the customer's name gives the host.
type sample struct {
	params   map[string]any
	customer string
}

// samples are the services' questions about the endpoints that customers
// name, which the rules sign with SigV4a.
var samples = map[string][]sample{
	"s3": {
		{map[string]any{"Bucket": "arn:{partition}:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap"}, "mfzwi23gnjvgw"},
		{map[string]any{"Bucket": "arn:{partition}:s3-outposts:{region}:123456789012:outpost/op-01234567890123456/accesspoint/reports"}, "reports-123456789012.op-01234567890123456"},
	},
	"cloudfrontkeyvaluestore": {
		{map[string]any{"KvsARN": "arn:{partition}:cloudfront::123456789012:key-value-store/a1b2c3d4-5678-90ab-cdef-example11111"}, "123456789012"},
	},
	"eventbridge": {
		{map[string]any{"EndpointId": "abcde.veo"}, "abcde.veo"},
	},
}

// instantiate returns the sample's parameters for region of partition.
func (s sample) instantiate(region, partition string) map[string]any {
	out := make(map[string]any, len(s.params))
	for k, v := range s.params {
		if str, ok := v.(string); ok {
			v = strings.NewReplacer("{partition}", partition, "{region}", region).Replace(str)
		}
		out[k] = v
	}
	return out
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("sdkrules: ")
	var regions, partitions []string
	for _, arg := range os.Args[1:] {
		region, partition, ok := strings.Cut(arg, "@")
		if !ok {
			log.Fatalf("%q: not REGION@PARTITION", arg)
		}
		regions, partitions = append(regions, region), append(partitions, partition)
	}
	if len(regions) == 0 {
		log.Fatal("usage: sdkrules REGION@PARTITION...")
	}
	enc := json.NewEncoder(os.Stdout)
	for _, s := range services {
		askSamples(enc, s, regions, partitions)
		for _, static := range append([]map[string]any{nil}, s.static...) {
			for _, region := range regions {
				for _, global := range []bool{false, true} {
					for _, fips := range []bool{false, true} {
						for _, dual := range []bool{false, true} {
							a := Answer{Service: s.name, Region: region, FIPS: fips, DualStack: dual, Global: global, Params: static}
							if ask(s, &a) {
								if err := enc.Encode(a); err != nil {
									log.Fatal(err)
								}
							}
						}
					}
				}
			}
		}
	}
}

// askSamples asks s's samples for every region and variant.
func askSamples(enc *json.Encoder, s service, regions, partitions []string) {
	for _, smp := range samples[s.name] {
		for i, region := range regions {
			for _, fips := range []bool{false, true} {
				for _, dual := range []bool{false, true} {
					a := Answer{Service: s.name, Region: region, FIPS: fips, DualStack: dual, Params: smp.instantiate(region, partitions[i]), Customer: smp.customer}
					if ask(s, &a) {
						if err := enc.Encode(a); err != nil {
							log.Fatal(err)
						}
					}
				}
			}
		}
	}
}

// ask resolves a's question into a; it returns false when the service
// has no parameter for it (no UseDualStack, no UseGlobalEndpoint), so that
// no answer is given for a question the SDK cannot be asked.
func ask(s service, a *Answer) (asked bool) {
	defer func() {
		if e := recover(); e != nil {
			a.Err, asked = fmt.Sprint("panic: ", e), true
		}
	}()
	fields := map[string]any{"Region": a.Region, "UseFIPS": a.FIPS, "UseDualStack": a.DualStack, "UseGlobalEndpoint": a.Global}
	for k, v := range a.Params {
		fields[k] = v
	}
	ep, asked, err, authOpts, authErr := s.ask(a.Region, func(params any) bool { return setParams(params, fields) })
	if !asked {
		return false
	}
	if err != nil {
		a.Err = err.Error()
		return true
	}
	a.Host, a.Path = ep.URI.Host, ep.URI.Path
	if authErr != nil || len(authOpts) == 0 {
		a.Err = fmt.Sprintf("no auth scheme: %v", authErr)
		return true
	}
	// The scheme: the first the auth resolver offers, as the SDK's
	// resolveAuthSchemeMiddleware picks it (S3's, EventBridge's and SES
	// v2's resolvers take it from the endpoint's rules); then every
	// endpoint scheme's properties laid over it, in order, as
	// resolveEndpointV2Middleware does.
	a.Scheme = canonicalScheme(authOpts[0].SchemeID)
	var props smithy.Properties
	props.SetAll(&authOpts[0].SignerProperties)
	epOpts, _ := smithyauth.GetAuthOptions(&ep.Properties)
	for _, o := range epOpts {
		props.SetAll(&o.SignerProperties)
	}
	switch a.Scheme {
	case smithyauth.SchemeIDSigV4:
		a.Name, _ = smithyhttp.GetSigV4SigningName(&props)
		a.SigningRegion, _ = smithyhttp.GetSigV4SigningRegion(&props)
		a.DisableDoubleEncoding, _ = smithyhttp.GetDisableDoubleEncoding(&props)
	case smithyauth.SchemeIDSigV4A:
		a.Name, _ = smithyhttp.GetSigV4ASigningName(&props)
		a.RegionSet, _ = smithyhttp.GetSigV4ASigningRegions(&props)
		a.DisableDoubleEncoding, _ = smithyhttp.GetDisableDoubleEncoding(&props)
		// SigV4 offered after it by the endpoint's own schemes, else by
		// the service's (CloudFront KeyValueStore's model lists SigV4
		// after SigV4a, where its endpoint's rules list SigV4a alone).
		alts := authOpts
		if len(epOpts) > 0 {
			alts = epOpts
		}
		for _, o := range alts[1:] {
			a.AltSigV4 = a.AltSigV4 || canonicalScheme(o.SchemeID) == smithyauth.SchemeIDSigV4
		}
	}
	return true
}

// canonicalScheme returns the scheme ID as the SDK's matchSchemeID reads
// the endpoint rules' short names.
func canonicalScheme(id string) string {
	switch id {
	case "sigv4":
		return smithyauth.SchemeIDSigV4
	case "sigv4a":
		return smithyauth.SchemeIDSigV4A
	}
	return id
}

// setParams sets the pointer fields of the EndpointParameters (or
// AuthResolverParameters) that params points to from fields. It reports
// false when a field set to anything but its zero value is not there.
func setParams(params any, fields map[string]any) bool {
	v := reflect.ValueOf(params).Elem()
	for k, val := range fields {
		f := v.FieldByName(k)
		if !f.IsValid() {
			if !reflect.ValueOf(val).IsZero() {
				return false
			}
			continue
		}
		switch f.Kind() {
		case reflect.Pointer:
			pv := reflect.New(f.Type().Elem())
			pv.Elem().Set(reflect.ValueOf(val).Convert(f.Type().Elem()))
			f.Set(pv)
		default:
			f.Set(reflect.ValueOf(val).Convert(f.Type()))
		}
	}
	return true
}

// question returns a service's question, for its EndpointParameters type
// E and AuthResolverParameters type A: the endpoint from resolver, the
// auth options from the auth scheme resolver of a client that newClient
// (the service's New) makes for the region.
func question[E, A, O, C any](resolver interface {
	ResolveEndpoint(context.Context, E) (smithyendpoints.Endpoint, error)
}, newClient func(O, ...func(*O)) C) func(string, func(any) bool) (smithyendpoints.Endpoint, bool, error, []*smithyauth.Option, error) {
	return func(region string, set func(any) bool) (smithyendpoints.Endpoint, bool, error, []*smithyauth.Option, error) {
		var p E
		if !set(&p) {
			return smithyendpoints.Endpoint{}, false, nil, nil, nil
		}
		ep, err := resolver.ResolveEndpoint(context.Background(), p)
		if err != nil {
			return ep, true, err, nil, nil
		}
		var ap A
		setParams(&ap, map[string]any{"Region": region})
		// S3, EventBridge and SES v2 resolve their auth from the
		// endpoint's rules, with the parameters an operation binds in an
		// unexported field.
		if f := reflect.ValueOf(&ap).Elem().FieldByName("endpointParams"); f.IsValid() {
			reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(&p))
		}
		var o O
		setParams(&o, map[string]any{"Region": region})
		opts := reflect.ValueOf(newClient(o)).MethodByName("Options").Call(nil)[0]
		r, ok := opts.FieldByName("AuthSchemeResolver").Interface().(interface {
			ResolveAuthSchemes(context.Context, *A) ([]*smithyauth.Option, error)
		})
		if !ok {
			return ep, true, nil, nil, fmt.Errorf("the client's Options have no AuthSchemeResolver")
		}
		auth, err := r.ResolveAuthSchemes(context.Background(), &ap)
		return ep, true, nil, auth, err
	}
}
