// Command endpointgen writes kivuli's endpoint table (endpoints_table.go)
// from AWS's published endpoint data and the SDK's own resolvers:
//   - the aws-sdk-go-v2 service modules of this module's go.mod: their
//     legacy endpoint data (internal/endpoints/endpoints.go: host names,
//     variants and credential scopes) and auth.go's SigV4 signing name;
//   - the same modules' endpoint rules and auth scheme resolvers, which the
//     SDK resolves with now and which name hosts the legacy data does not
//     (efs.REGION.api.aws, route53.global.api.aws): sdkrules/ asks them
//     for every region of every partition and every variant (rules.go),
//     and, with sample names, about the endpoints customers name that the
//     rules sign with SigV4a (S3 Multi-Region Access Points, CloudFront
//     KeyValueStore, EventBridge global endpoints, S3 on Outposts), whose
//     forms it writes as sigv4aForms (sigv4a.go);
//   - the core module's partitions (internal/endpoints/awsrulesfn/partitions.json);
//   - for the services whose Go module the module proxy does not serve,
//     botocore's endpoints.json and service models.
//
// Where the legacy data and the rules sign one host, or one endpoint
// prefix, differently, it stops and says so: which is right is for a
// person to decide.
//
// It is run by hand, not in CI (go generate in the repository's root):
//
//	go generate
//
// To take newer data: in this directory, go get the newer module versions
// (go get github.com/aws/aws-sdk-go-v2/service/NAME@latest ...), then go
// generate again: it rewrites sdkrules/services_gen.go from the build
// list, so that sdkrules imports every service module of go.mod (go mod
// tidy keeps them all for that reason). The first run compiles every
// service module, about a minute; later ones take seconds.
//
// It also writes testdata/endpoints.txt.gz: the host, signing name and
// region that the SDKs resolve for every service, variant and a sample of
// regions, which the root package's tests check inference against.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	out := flag.String("out", "../../endpoints_table.go", "the Go file to write")
	testdata := flag.String("testdata", "../../testdata/endpoints.txt.gz", "the test data file to write")
	botocore := flag.String("botocore", "", "botocore's package directory; empty: ask python3; none: do without")
	rules := flag.Bool("rules", true, "ask the service modules' endpoint rules too (go run ./"+sdkRulesDir+")")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("endpointgen: ")

	mods, err := buildList()
	if err != nil {
		log.Fatal(err)
	}
	var core goModule
	var services []*service
	goPrefixes := map[string]*service{}
	for _, m := range mods {
		switch {
		case m.Path == corePath:
			core = m
		case isServiceModule(m.Path):
			s, err := readGoService(m)
			if err != nil {
				log.Fatal(err)
			}
			services = append(services, s)
			if p := s.standardPrefix(); p != "" {
				goPrefixes[p] = s
			}
		}
	}
	if core.Dir == "" {
		log.Fatalf("%s is not in the build list", corePath)
	}
	parts, err := readPartitions(filepath.Join(core.Dir, "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		log.Fatal(err)
	}
	sources := []string{fmt.Sprintf("%s %s (partitions)", corePath, core.Version)}
	goSources := []string{}
	for _, s := range services {
		goSources = append(goSources, s.source)
	}

	var notes []string
	bcDir := *botocore
	if bcDir == "" {
		if bcDir, err = findBotocore(); err != nil {
			log.Fatal(err)
		}
	}
	if bcDir != "none" {
		byPrefix, version, err := readBotocore(bcDir, parts)
		if err != nil {
			log.Fatal(err)
		}
		sources = append(sources, "botocore "+version+" (the services whose Go module the proxy did not serve)")
		for _, m := range manualServices {
			sources = append(sources, fmt.Sprintf("%s: %s", m.name, m.source))
		}
		prefixes := make([]string, 0, len(byPrefix))
		for p := range byPrefix {
			prefixes = append(prefixes, p)
		}
		sort.Strings(prefixes)
		added := 0
		for _, p := range prefixes {
			for _, bs := range byPrefix[p] {
				if gs, ok := goPrefixes[p]; ok {
					if gs.signingName != bs.signingName && bs.signingName != "" {
						notes = append(notes, fmt.Sprintf("prefix %s: Go module %s signs as %q, botocore's %s as %q: the Go module's name is kept", p, gs.name, gs.signingName, bs.name, bs.signingName))
					}
					continue
				}
				services = append(services, bs)
				added++
			}
		}
		log.Printf("%d services from Go modules, %d more from botocore %s", len(goSources), added, version)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].name < services[j].name })

	var answers []ruleAnswer
	var ops map[string][]operation
	if *rules {
		var regions []string
		for _, p := range parts {
			for _, r := range p.regions {
				regions = append(regions, r+"@"+p.id)
			}
		}
		if answers, ops, err = askSDKRules(mods, regions); err != nil {
			log.Fatal(err)
		}
		sources = append(sources, fmt.Sprintf("the endpoint rules (EndpointResolverV2) and auth scheme resolvers of the Go service modules, asked for the %d regions of the partitions, 4 variants each, and about customers' endpoints with sample names (%s/)", len(regions), sdkRulesDir))
		log.Printf("%d answers from the endpoint rules", len(answers))
	}

	t, err := build(services, parts, answers, ops)
	if err != nil {
		log.Fatal(err)
	}
	notes = append(notes, t.notes...)
	for _, n := range notes {
		log.Print(n)
	}
	src, err := t.emit(sources, goSources)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	td := t.testdata(sources)
	if strings.HasSuffix(*testdata, ".gz") {
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
		zw.Write(td)
		zw.Close()
		td = zb.Bytes()
	}
	if err := os.WriteFile(*testdata, td, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%s: %d bytes; %d signing names, %d endpoint prefixes, %d hosts; %s: %d hosts",
		*out, len(src), len(t.names), len(t.prefixes), len(t.hosts), *testdata, len(t.samples))
	for _, r := range t.replaced {
		log.Printf("replaced by the rules' host: %s", r)
	}
	if len(t.leftOut) > 0 {
		log.Printf("left out: %s", strings.Join(t.leftOut, "; "))
	}
}
