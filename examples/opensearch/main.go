// Command opensearch uses the OpenSearch Go client (opensearch-go v4) with
// kivuli.Transport as its HTTP transport: every request it makes is signed
// for Amazon OpenSearch Service with the instance role's credentials, which
// Kivuli keeps fresh. It indexes a document and searches an index pattern.
//
//	cd examples/opensearch && go run .
//	cd examples/opensearch && go run . -aws -endpoint https://search-DOMAIN-ID.eu-west-2.es.amazonaws.com
//
// Offline (the default), an in-process IMDS emulator stands in for EC2, and
// the client talks to a local endpoint that checks every signature as the
// service does and answers as a minimal OpenSearch cluster would. With -aws
// the credentials come from the real IMDS and the client talks to the
// domain at -endpoint (default $OPENSEARCH_URL), in -region (default
// $AWS_REGION, else eu-west-2); it writes one document to the index
// logs-2026.05.01. For OpenSearch Serverless, add -service aoss and use a
// search collection: time-series collections do not accept the custom
// document ID (1) that the example indexes with.
//
// TLS settings (a CA pool; through a tunnel, tls.Config.ServerName set to
// the domain's name or, failing that, InsecureSkipVerify) go on the
// kivuli.Transport's Base, an *http.Transport. opensearch-go applies its
// own TLS options only to an *http.Transport: beside a kivuli.Transport,
// Config.InsecureSkipVerify makes NewClient fail with "unable to set
// InsecureSkipVerify for transport of type *kivuli.Transport", and
// Config.CACert with "unable to set CA certificate for transport of type
// *kivuli.Transport" (opensearchtransport's New).
//
// This is its own Go module, so that the root module does not depend on
// opensearch-go. It exits non-zero if a request fails or the search does
// not find the document.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
)

const (
	index   = "logs-2026.05.01"
	pattern = "logs-2026.*"
)

func main() {
	useAWS := flag.Bool("aws", false, "use the real IMDS and the OpenSearch domain at -endpoint")
	endpointURL := flag.String("endpoint", os.Getenv("OPENSEARCH_URL"), "the domain's endpoint, with -aws")
	region := flag.String("region", cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2"), "the domain's region")
	service := flag.String("service", "es", `signing service: "es" for OpenSearch Service, "aoss" for Serverless`)
	flag.Parse()
	if *useAWS && *endpointURL == "" {
		fmt.Fprintln(os.Stderr, "opensearch: -aws needs -endpoint (or OPENSEARCH_URL)")
		os.Exit(2)
	}
	if err := run(*useAWS, *endpointURL, *region, *service); err != nil {
		fmt.Fprintln(os.Stderr, "opensearch:", err)
		os.Exit(1)
	}
}

func run(useAWS bool, endpointURL, region, service string) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	signer := &kivuli.Transport{Service: service, Region: region}
	var opts []kivuli.Option
	var endpoint *sigv4test.Server
	if !useAWS {
		imds := imdstest.NewServer(imdstest.Config{})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
		endpoint = sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, &fakeCluster{docs: map[string][]json.RawMessage{}})
		defer endpoint.Close()
		endpointURL = endpoint.URL
		// Signed requests go only to AWS hosts and to those listed here.
		signer.AllowedHosts = []string{endpoint.Listener.Addr().String()}
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	signer.Credentials = creds

	client, err := opensearchapi.NewClient(opensearchapi.Config{
		Client: opensearch.Config{
			Addresses: []string{endpointURL},
			Transport: signer,
		},
	})
	if err != nil {
		return err
	}
	// Close stops the client's background work and closes idle connections.
	defer func() {
		if cerr := client.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close: %w", cerr))
		}
	}()

	doc := `{"@timestamp":"2026-05-01T12:00:00Z","level":"error","message":"disk almost full"}`
	indexed, err := client.Index(ctx, opensearchapi.IndexReq{
		Index:      index,
		DocumentID: "1",
		Body:       strings.NewReader(doc),
		Params:     opensearchapi.IndexParams{Refresh: "true"}, // searchable at once
	})
	if err != nil {
		return failed("index", indexed.Inspect().Response, err)
	}
	fmt.Printf("indexed %s/_doc/%s: %s\n", indexed.Index, indexed.ID, indexed.Result)

	found, err := client.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{pattern},
		Body:    strings.NewReader(`{"query":{"match":{"level":"error"}}}`),
	})
	if err != nil {
		return failed("search", found.Inspect().Response, err)
	}
	fmt.Printf("searched %s: %d hit(s)\n", pattern, found.Hits.Total.Value)

	if endpoint != nil {
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

// failed describes a failed call. For an error answer it gives the HTTP
// status and, from OpenSearch's JSON error, at most its type and reason:
// never the body, which opensearch-go's error quotes when it cannot parse
// it, as with the {"message": ...} of a rejected signature, which may go on
// with the canonical request the service computed, session token included.
func failed(op string, resp *opensearch.Response, err error) error {
	if resp == nil || !resp.IsError() {
		return fmt.Errorf("%s: %w", op, err) // no error answer: a network error, say
	}
	msg := fmt.Sprintf("%s: %d %s", op, resp.StatusCode, http.StatusText(resp.StatusCode))
	var e struct {
		Error struct{ Type, Reason string } `json:"error"`
	}
	if resp.Body != nil { // opensearch-go has read it, and left a copy here
		body, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
			reason, _, _ := strings.Cut(e.Error.Reason, "\n")
			msg += ": " + e.Error.Type + ": " + reason
		}
	}
	return errors.New(msg)
}

// fakeCluster answers as a one-node OpenSearch cluster would, just enough
// for this example: indexing and search.
type fakeCluster struct {
	mu   sync.Mutex
	docs map[string][]json.RawMessage // by index
}

func (c *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
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
