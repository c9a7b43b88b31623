package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// TestRunOffline runs the example as CI does, under -race.
func TestRunOffline(t *testing.T) {
	if err := run(false, "", "eu-west-2", "es"); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeRejectedSignature checks that a rejected signature's answer,
// whose message quotes the canonical request, is described by its status
// alone.
func TestDecodeRejectedSignature(t *testing.T) {
	ctx := context.Background()
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	wrongSecret := func(id string) (sigv4test.Credentials, bool) {
		c, ok := imds.Lookup(id)
		c.SecretAccessKey = "not-the-secret"
		return sigv4test.Credentials(c), ok
	}
	endpoint := sigv4test.NewServer(&sigv4test.Verifier{Secrets: wrongSecret}, nil)
	defer endpoint.Close()
	creds, err := kivuli.New(ctx, kivuli.WithEndpoint(imds.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	signer := &kivuli.Transport{
		Credentials:  creds,
		Service:      "es",
		Region:       "eu-west-2",
		AllowedHosts: []string{endpoint.Listener.Addr().String()},
	}

	// What decode must not pass on: the canonical request.
	req, _ := http.NewRequest(http.MethodPut, endpoint.URL+"/"+index+"/_doc/1", strings.NewReader("{}"))
	raw, err := (&http.Client{Transport: signer}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(raw.Body)
	raw.Body.Close()
	if !strings.Contains(string(body), "PUT\\n/"+index+"/_doc/1") {
		t.Fatalf("the rejection does not quote the canonical request, so this test shows nothing: %s", body)
	}

	client, err := newClient(endpoint.URL, productHeader{signer})
	if err != nil {
		t.Fatal(err)
	}
	defer closeClient(client, &err)
	res, err := client.Index(index, strings.NewReader("{}"), client.Index.WithDocumentID("1"), client.Index.WithContext(ctx))
	var v struct{}
	got := decode("index", res, err, &v)
	if want := "index: 403 Forbidden"; got == nil || got.Error() != want {
		t.Fatalf("decode = %v, want %q", got, want)
	}
}

// TestDecodeElasticsearchError checks that an Elasticsearch error is
// described by its type and the first line of its reason.
func TestDecodeElasticsearchError(t *testing.T) {
	res := &esapi.Response{
		StatusCode: http.StatusBadRequest,
		Body:       io.NopCloser(strings.NewReader(`{"error":{"type":"parsing_exception","reason":"unknown query [mtch]\nline 1, col 10","root_cause":[]},"status":400}`)),
	}
	var v struct{}
	got := decode("search", res, nil, &v)
	if want := "search: 400 Bad Request: parsing_exception: unknown query [mtch]"; got == nil || got.Error() != want {
		t.Fatalf("decode = %v, want %q", got, want)
	}
}
