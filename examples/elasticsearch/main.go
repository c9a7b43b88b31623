// Command elasticsearch uses the official Elasticsearch Go client
// (go-elasticsearch v8) with kivuli.Transport as its HTTP transport: every
// request it makes is signed for Amazon OpenSearch Service ("es") with the
// instance role's credentials, which Kivuli keeps fresh. It indexes a
// document and searches an index pattern.
//
//	cd examples/elasticsearch && go run .
//	cd examples/elasticsearch && go run . -aws -endpoint https://search-DOMAIN-ID.eu-west-2.es.amazonaws.com
//
// Offline (the default), an in-process IMDS emulator stands in for EC2, and
// the client talks, over TLS, to a local endpoint that checks every
// signature as the service does and answers as a minimal Elasticsearch
// cluster would. With -aws the credentials come from the real IMDS and the
// client talks to the domain at -endpoint (default $ELASTICSEARCH_URL), in
// -region (default $AWS_REGION, else eu-west-2); it writes one document to
// the index logs-2026.05.01.
//
// # OpenSearch
//
// go-elasticsearch v8 refuses every successful answer that does not carry
// the header X-Elastic-Product: Elasticsearch, with the error "the client
// noticed that the server is not Elasticsearch and we do not support this
// unknown product", and it has no setting to turn that check off (v8.19.7:
// Config has none, and BaseClient.Perform checks every 2xx answer until one
// passes). No AWS domain sends the header: OpenSearch does not, nor does
// Elasticsearch 7.10 and older, which predates it. The request has taken
// effect by then (the document is written); only its answer is refused.
// So with -aws the client goes through [productHeader], which adds the
// header to the domain's answers; offline, the example shows both the
// refusal and the way through. Elastic supports this client with
// Elasticsearch only: for OpenSearch, opensearch-go (examples/opensearch)
// needs no such shim. Leave Config.EnableCompatibilityMode off and
// ELASTIC_CLIENT_APIVERSIONING unset: they make the client send the media
// type application/vnd.elasticsearch+json;compatible-with=8, which
// OpenSearch answers with 406 Not Acceptable.
//
// # TLS
//
// TLS settings (a CA pool; through a tunnel, tls.Config.ServerName set to
// the domain's name or, failing that, InsecureSkipVerify) go on the
// kivuli.Transport's Base, an *http.Transport, as this example's offline
// mode does. go-elasticsearch applies its own TLS options only to an
// *http.Transport: beside a kivuli.Transport, Config.CACert makes NewClient
// fail with "unable to set CA certificate for transport of type
// *kivuli.Transport" (elastic-transport-go's New), and
// Config.CertificateFingerprint is silently ignored, so nothing is pinned.
//
// This is its own Go module, so that the root module does not depend on
// go-elasticsearch. It exits non-zero if a request fails, the search does
// not find the document, or a check of the client's behaviour fails.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

const (
	index   = "logs-2026.05.01"
	pattern = "logs-2026.*"

	// What go-elasticsearch v8.19.7 says, word for word, when a
	// transport's TLS options or an answer's product header do not suit it.
	caCertRefused  = "unable to set CA certificate for transport of type *kivuli.Transport"
	unknownProduct = "the client noticed that the server is not Elasticsearch and we do not support this unknown product"
)

func main() {
	useAWS := flag.Bool("aws", false, "use the real IMDS and the OpenSearch Service domain at -endpoint")
	endpointURL := flag.String("endpoint", os.Getenv("ELASTICSEARCH_URL"), "the domain's endpoint, with -aws")
	region := flag.String("region", cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2"), "the domain's region")
	service := flag.String("service", "es", `signing service: "es" for OpenSearch Service, "aoss" for Serverless`)
	flag.Parse()
	if *useAWS && *endpointURL == "" {
		fmt.Fprintln(os.Stderr, "elasticsearch: -aws needs -endpoint (or ELASTICSEARCH_URL)")
		os.Exit(2)
	}
	if err := run(*useAWS, *endpointURL, *region, *service); err != nil {
		fmt.Fprintln(os.Stderr, "elasticsearch:", err)
		os.Exit(1)
	}
}

func run(useAWS bool, endpointURL, region, service string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	signer := &kivuli.Transport{Service: service, Region: region}
	// Against AWS every answer lacks X-Elastic-Product (see the package
	// comment); offline the cluster sends it, as Elasticsearch does.
	var transport http.RoundTripper = productHeader{signer}
	var opts []kivuli.Option
	var endpoint *sigv4test.Server
	var cluster *fakeCluster
	if !useAWS {
		imds := imdstest.NewServer(imdstest.Config{})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
		cluster = &fakeCluster{product: "Elasticsearch", docs: map[string][]json.RawMessage{}}
		endpoint = sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, cluster)
		defer endpoint.Close()
		// The endpoint speaks plain HTTP; before it stands a TLS front
		// with a certificate of its own, as a domain's HTTPS or the local
		// end of a tunnel would, which the system's roots do not trust.
		// The proxy keeps the Host header, so what was signed arrives.
		backend, _ := url.Parse(endpoint.URL)
		front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(backend))
		defer front.Close()
		endpointURL = front.URL
		// Signed requests go only to AWS hosts and to those listed here.
		signer.AllowedHosts = []string{front.Listener.Addr().String()}

		// The CA pool goes on the kivuli.Transport's Base: the client's
		// own CACert cannot reach through a kivuli.Transport.
		if err := checkCACertRefused(endpointURL, signer, front.Certificate()); err != nil {
			return err
		}
		roots := x509.NewCertPool()
		roots.AddCert(front.Certificate())
		base := http.DefaultTransport.(*http.Transport).Clone()
		base.TLSClientConfig = &tls.Config{RootCAs: roots}
		defer base.CloseIdleConnections()
		signer.Base = base
		transport = signer
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	signer.Credentials = creds

	client, err := newClient(endpointURL, transport)
	if err != nil {
		return err
	}
	defer closeClient(client, &err)

	doc := `{"@timestamp":"2026-05-01T12:00:00Z","level":"error","message":"disk almost full"}`
	res, err := client.Index(index, strings.NewReader(doc),
		client.Index.WithContext(ctx),
		client.Index.WithDocumentID("1"),
		client.Index.WithRefresh("true"), // searchable at once
	)
	var indexed struct {
		Index  string `json:"_index"`
		ID     string `json:"_id"`
		Result string `json:"result"`
	}
	if err := decode("index", res, err, &indexed); err != nil {
		return err
	}
	fmt.Printf("indexed %s/_doc/%s: %s\n", indexed.Index, indexed.ID, indexed.Result)

	res, err = client.Search(
		client.Search.WithContext(ctx),
		client.Search.WithIndex(pattern),
		client.Search.WithBody(strings.NewReader(`{"query":{"match":{"level":"error"}}}`)),
	)
	var found struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
		} `json:"hits"`
	}
	if err := decode("search", res, err, &found); err != nil {
		return err
	}
	fmt.Printf("searched %s: %d hit(s)\n", pattern, found.Hits.Total.Value)

	if endpoint != nil {
		if err := checkProductCheck(ctx, endpointURL, signer, cluster); err != nil {
			return err
		}
		fmt.Println("the endpoint saw:")
		for _, rec := range endpoint.Records() {
			if rec.Err != nil {
				return fmt.Errorf("%s %s: %w", rec.Method, rec.Path, rec.Err)
			}
			fmt.Printf("  %-4s %-30s service %s, X-Amz-Content-Sha256 %t, token %s, signature valid\n",
				rec.Method, rec.Path, rec.Service, rec.ContentSHA256, rec.Token)
		}
	}
	if found.Hits.Total.Value < 1 {
		return fmt.Errorf("search %s found nothing", pattern)
	}
	return nil
}

// newClient returns a go-elasticsearch client that sends its requests to
// address with transport. Credentials are the transport's business: no
// Username, APIKey or CloudID, whose headers would not be SigV4's.
func newClient(address string, transport http.RoundTripper) (*elasticsearch.Client, error) {
	return elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{address},
		Transport: transport,
	})
}

// closeClient closes client, which stops its background work, and adds a
// failure to *err.
func closeClient(client *elasticsearch.Client, err *error) {
	if cerr := client.Close(context.Background()); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("close: %w", cerr))
	}
}

// productHeader is an http.RoundTripper that adds X-Elastic-Product:
// Elasticsearch to answers that lack it, so that go-elasticsearch v8,
// which has no setting to skip its product check, accepts answers from an
// OpenSearch Service domain (see the package comment). It tells the client
// something untrue; the client's API calls that OpenSearch shares work,
// and the rest are the caller's to avoid.
type productHeader struct{ next http.RoundTripper }

// RoundTrip sends req with next and marks the answer as Elasticsearch's.
func (p productHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(req)
	if err == nil && resp.Header.Get("X-Elastic-Product") == "" {
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		resp.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return resp, err
}

// checkCACertRefused checks that go-elasticsearch refuses its own CA
// option beside a kivuli.Transport, as the package comment says.
func checkCACertRefused(address string, signer *kivuli.Transport, cert *x509.Certificate) error {
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	_, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{address},
		Transport: signer,
		CACert:    caPEM,
	})
	if err == nil || !strings.HasSuffix(err.Error(), caCertRefused) {
		return fmt.Errorf("elasticsearch.Config.CACert beside a kivuli.Transport: want %q, got %v", caCertRefused, err)
	}
	fmt.Printf("Config.CACert beside a kivuli.Transport: refused (%s): the CA pool goes on Transport.Base\n", caCertRefused)
	return nil
}

// checkProductCheck checks, against the cluster answering as OpenSearch
// does (without X-Elastic-Product), that go-elasticsearch refuses its
// answer, and that through productHeader it accepts it.
func checkProductCheck(ctx context.Context, address string, signer *kivuli.Transport, cluster *fakeCluster) error {
	cluster.setProduct("")
	defer cluster.setProduct("Elasticsearch")

	exists := func(transport http.RoundTripper) (status int, err error) {
		client, err := newClient(address, transport)
		if err != nil {
			return 0, err
		}
		defer closeClient(client, &err)
		res, err := client.Indices.Exists([]string{index}, client.Indices.Exists.WithContext(ctx))
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	// The client's errors here are its own or Kivuli's: neither holds an
	// answer's body.
	if _, err := exists(signer); err == nil || err.Error() != unknownProduct {
		return fmt.Errorf("an answer without X-Elastic-Product: want %q, got %v", unknownProduct, err)
	}
	if status, err := exists(productHeader{signer}); err != nil || status != http.StatusOK {
		return fmt.Errorf("an answer without X-Elastic-Product, through productHeader: want 200, got %d, %v", status, err)
	}
	fmt.Printf("an answer without X-Elastic-Product, as OpenSearch sends: refused (%s); through productHeader: accepted\n", unknownProduct)
	return nil
}

// decode reads a call's answer into v, or describes its failure. For an
// error answer it gives the HTTP status and, from the JSON error, at most
// its type and the first line of its reason: never the body, which for a
// rejected signature ({"message": ...}) may go on with the canonical
// request the service computed, session token included. Nor does it call
// res.String, which quotes the body.
func decode(op string, res *esapi.Response, err error, v any) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, err) // no answer, or one the client refused
	}
	defer res.Body.Close()
	if !res.IsError() {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			return fmt.Errorf("%s: %s: undecodable answer", op, res.Status())
		}
		return nil
	}
	msg := fmt.Sprintf("%s: %s", op, res.Status())
	var e struct {
		Error struct{ Type, Reason string } `json:"error"`
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
		reason, _, _ := strings.Cut(e.Error.Reason, "\n")
		msg += ": " + e.Error.Type + ": " + reason
	}
	return errors.New(msg)
}

// fakeCluster answers as a one-node Elasticsearch cluster would, just
// enough for this example: indexing, search, and whether an index exists.
type fakeCluster struct {
	mu sync.Mutex
	// product is sent as X-Elastic-Product, as Elasticsearch 7.14 and later
	// send it on every answer: go-elasticsearch v8 refuses a successful
	// answer without it. Empty: not sent, as OpenSearch does.
	product string
	docs    map[string][]json.RawMessage // by index
}

func (c *fakeCluster) setProduct(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.product = p
}

func (c *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.product != "" {
		w.Header().Set("X-Elastic-Product", c.product)
	}
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && r.Method == http.MethodHead:
		if _, ok := c.docs[parts[0]]; !ok {
			w.WriteHeader(http.StatusNotFound)
		}
	case len(parts) == 3 && parts[1] == "_doc" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		body, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(body) {
			http.Error(w, `{"error":{"type":"mapper_parsing_exception","reason":"failed to parse"},"status":400}`, http.StatusBadRequest)
			return
		}
		c.docs[parts[0]] = append(c.docs[parts[0]], body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"_index":%q,"_id":%q,"_version":1,"result":"created","forced_refresh":true,"_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1}`, parts[0], parts[2])
	case len(parts) == 2 && parts[1] == "_search":
		// Every document of the matching indices is a hit: no query engine here.
		type hit struct {
			Index  string          `json:"_index"`
			ID     string          `json:"_id"`
			Score  float32         `json:"_score"`
			Source json.RawMessage `json:"_source"`
		}
		hits := []hit{}
		for name, docs := range c.docs {
			for i, d := range docs {
				if ok, _ := path.Match(parts[0], name); ok {
					hits = append(hits, hit{name, fmt.Sprint(i + 1), 1, d})
				}
			}
		}
		var resp struct {
			Took   int             `json:"took"`
			Shards json.RawMessage `json:"_shards"`
			Hits   struct {
				Total struct {
					Value    int    `json:"value"`
					Relation string `json:"relation"`
				} `json:"total"`
				MaxScore float32 `json:"max_score"`
				Hits     []hit   `json:"hits"`
			} `json:"hits"`
		}
		resp.Shards = json.RawMessage(`{"total":1,"successful":1,"skipped":0,"failed":0}`)
		resp.Hits.Total.Value, resp.Hits.Total.Relation, resp.Hits.Hits = len(hits), "eq", hits
		if len(hits) > 0 {
			resp.Hits.MaxScore = 1
		}
		json.NewEncoder(w).Encode(resp)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"type":"illegal_argument_exception","reason":"no handler for %s %s"},"status":404}`, r.Method, r.URL.Path)
	}
}
