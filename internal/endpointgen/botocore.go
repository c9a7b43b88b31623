package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The Go module proxy does not serve every aws-sdk-go-v2 service module
// (here about 40% of them are missing). botocore, AWS's Python SDK, ships
// the same endpoint data (endpoints.json, the source of aws-sdk-go-v2's
// internal/endpoints) and each service's signing name
// (service-2.json's metadata), so it fills in the services whose Go module
// could not be had.

// findBotocore returns the directory of the installed botocore package.
func findBotocore() (string, error) {
	out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		return "", fmt.Errorf("finding botocore with python3: %v (pass -botocore DIR, or -botocore none)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

var versionLine = regexp.MustCompile(`(?m)^__version__ = '([^']+)'`)

func botocoreVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "__init__.py"))
	if err != nil {
		return "", err
	}
	m := versionLine.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s/__init__.py: no __version__", dir)
	}
	return string(m[1]), nil
}

type bcVariant struct {
	Hostname  string   `json:"hostname"`
	DNSSuffix string   `json:"dnsSuffix"`
	Tags      []string `json:"tags"`
}

type bcEndpoint struct {
	Hostname        string `json:"hostname"`
	CredentialScope struct {
		Region  string `json:"region"`
		Service string `json:"service"`
	} `json:"credentialScope"`
	Deprecated bool        `json:"deprecated"`
	Variants   []bcVariant `json:"variants"`
}

type bcService struct {
	Defaults          bcEndpoint            `json:"defaults"`
	Endpoints         map[string]bcEndpoint `json:"endpoints"`
	IsRegionalized    *bool                 `json:"isRegionalized"`
	PartitionEndpoint string                `json:"partitionEndpoint"`
}

type bcPartition struct {
	Partition string               `json:"partition"`
	DNSSuffix string               `json:"dnsSuffix"`
	Defaults  bcEndpoint           `json:"defaults"`
	Services  map[string]bcService `json:"services"`
}

func (e bcEndpoint) variant(v variant) (bcVariant, bool) {
	want := map[string]bool{}
	if v&fips != 0 {
		want["fips"] = true
	}
	if v&dualStack != 0 {
		want["dualstack"] = true
	}
	for _, x := range e.Variants {
		if len(x.Tags) != len(want) {
			continue
		}
		all := true
		for _, t := range x.Tags {
			all = all && want[t]
		}
		if all {
			return x, true
		}
	}
	return bcVariant{}, false
}

// bcMeta is what a service model says about its endpoint and signing.
type bcMeta struct {
	EndpointPrefix   string   `json:"endpointPrefix"`
	SigningName      string   `json:"signingName"`
	SignatureVersion string   `json:"signatureVersion"`
	Auth             []string `json:"auth"`
}

// readBotocore returns every service botocore describes, keyed by its
// endpoint prefix, and botocore's version.
func readBotocore(dir string, parts []*partition) (map[string][]*service, string, error) {
	version, err := botocoreVersion(dir)
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(dir, "data")
	b, err := os.ReadFile(filepath.Join(data, "endpoints.json"))
	if err != nil {
		return nil, "", err
	}
	var doc struct {
		Partitions []bcPartition `json:"partitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("endpoints.json: %w", err)
	}
	entries, err := os.ReadDir(data)
	if err != nil {
		return nil, "", err
	}
	byPrefix := map[string][]*service{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		meta, err := readMeta(filepath.Join(data, e.Name()))
		if err != nil {
			return nil, "", err
		}
		if meta == nil || meta.EndpointPrefix == "" {
			continue
		}
		s := &service{name: e.Name(), source: "botocore " + version, partitions: map[string]*servicePartition{}}
		if meta.sigv4() {
			s.signingName = meta.SigningName
			if s.signingName == "" {
				s.signingName = meta.EndpointPrefix
			}
		}
		addPartitions(s, doc.Partitions, meta.EndpointPrefix)
		byPrefix[meta.EndpointPrefix] = append(byPrefix[meta.EndpointPrefix], s)
	}
	for _, m := range manualServices {
		s := &service{name: m.name, source: m.source, signingName: m.signingName, partitions: map[string]*servicePartition{}}
		addPartitions(s, doc.Partitions, m.prefix)
		byPrefix[m.prefix] = append(byPrefix[m.prefix], s)
	}
	return byPrefix, version, nil
}

// addPartitions sets s's endpoint data from endpoints.json. A service that
// endpoints.json does not list (newer services have only an endpoint rule
// set) resolves, in botocore as in the SDKs' rule sets, to the partitions'
// default templates: PREFIX.{region}.{dnsSuffix} and its variants.
func addPartitions(s *service, parts []bcPartition, prefix string) {
	listed := false
	for _, p := range parts {
		if _, ok := p.Services[prefix]; ok {
			listed = true
		}
	}
	for _, p := range parts {
		if sd, ok := p.Services[prefix]; ok || !listed {
			s.partitions[p.Partition] = bcServicePartition(p, prefix, sd)
		}
	}
}

// manualServices are services that neither the module proxy (their Go
// module) nor botocore has here, with the data of their aws-sdk-go-v2
// module: partition-default templates, and the signing name of its
// auth.go.
var manualServices = []struct{ name, source, prefix, signingName string }{
	// Transcribe's streaming API (HTTP/2 and WebSocket): botocore has no
	// streaming client.
	{"transcribestreaming", "aws-sdk-go-v2 service/transcribestreaming, by hand (not served by the proxy here)", "transcribestreaming", "transcribe"},
	// Amazon Managed Service for Prometheus's workspace API (remote write,
	// PromQL queries): no SDK has a client for it; AWS's documentation and
	// prometheus/sigv4 sign aps-workspaces.REGION.amazonaws.com as aps.
	{"aps-workspaces", "the AMP user guide, by hand (no SDK client)", "aps-workspaces", "aps"},
}

func (m *bcMeta) sigv4() bool {
	for _, a := range m.Auth {
		if a == "aws.auth#sigv4" {
			return true
		}
	}
	return len(m.Auth) == 0 && (m.SignatureVersion == "v4" || m.SignatureVersion == "s3v4")
}

// readMeta reads the metadata of a service's newest model.
func readMeta(dir string) (*bcMeta, error) {
	versions, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, v := range versions {
		if v.IsDir() {
			names = append(names, v.Name())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sort.Strings(names)
	path := filepath.Join(dir, names[len(names)-1], "service-2.json")
	var r io.Reader
	f, err := os.Open(path + ".gz")
	if err == nil {
		defer f.Close()
		if r, err = gzip.NewReader(f); err != nil {
			return nil, fmt.Errorf("%s.gz: %w", path, err)
		}
	} else if f, err = os.Open(path); err == nil {
		defer f.Close()
		r = f
	} else {
		return nil, nil // a directory without a model
	}
	var doc struct {
		Metadata bcMeta `json:"metadata"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &doc.Metadata, nil
}

// bcServicePartition converts botocore's data for one service and
// partition to the model of aws-sdk-go-v2 (defaults per variant, endpoints
// per region and variant, templates expanded but for {region}), resolving
// as botocore's EndpointResolver does: a variant's fields come from the
// endpoint's variant, then the service's default variant, then the
// partition's, and the endpoint's own fields (its credential scope) apply
// to all its variants.
func bcServicePartition(p bcPartition, prefix string, sd bcService) *servicePartition {
	sp := &servicePartition{
		regionalized:      sd.IsRegionalized == nil || *sd.IsRegionalized,
		partitionEndpoint: sd.PartitionEndpoint,
		defaults:          map[variant]endpoint{},
		endpoints:         map[endpointKey]endpoint{},
	}
	expand := func(host, suffix string) string {
		return strings.NewReplacer("{service}", prefix, "{dnsSuffix}", suffix).Replace(host)
	}
	for _, v := range variants {
		var host, suffix string
		if v == 0 {
			host = firstNonEmpty(sd.Defaults.Hostname, p.Defaults.Hostname)
		} else {
			sv, _ := sd.Defaults.variant(v)
			pv, _ := p.Defaults.variant(v)
			host = firstNonEmpty(sv.Hostname, pv.Hostname)
			suffix = firstNonEmpty(sv.DNSSuffix, pv.DNSSuffix)
		}
		suffix = firstNonEmpty(suffix, p.DNSSuffix)
		sp.defaults[v] = endpoint{
			hostname:     expand(host, suffix),
			scopeRegion:  sd.Defaults.CredentialScope.Region,
			scopeService: sd.Defaults.CredentialScope.Service,
		}
		for r, e := range sd.Endpoints {
			ep := endpoint{scopeRegion: e.CredentialScope.Region, scopeService: e.CredentialScope.Service, deprecated: e.Deprecated}
			ev, hasVariant := e.variant(v)
			if v == 0 {
				ep.hostname = expand(e.Hostname, p.DNSSuffix)
			} else if hasVariant {
				ep.hostname = expand(ev.Hostname, firstNonEmpty(ev.DNSSuffix, suffix))
			}
			// A global endpoint has the variants it lists; a regional one
			// has its scope in every variant.
			if v == 0 || hasVariant || sp.regionalized && ep != (endpoint{}) {
				sp.endpoints[endpointKey{r, v}] = ep
			}
		}
	}
	return sp
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
