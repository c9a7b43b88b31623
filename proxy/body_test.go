package proxy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// objectStore is an S3 stand-in behind sigv4test: PUT stores the body
// under the key the path decodes to, GET returns it.
type objectStore struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func (s *objectStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := url.PathUnescape(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.objects[key] = b
		s.mu.Unlock()
	case http.MethodGet:
		s.mu.Lock()
		b, ok := s.objects[key]
		s.mu.Unlock()
		if !ok {
			http.Error(w, "NoSuchKey "+key, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
	}
}

// S3 through the proxy: awkward keys PUT and GET back, small bodies
// buffered and signed with their hash, large ones streamed with their
// length and UNSIGNED-PAYLOAD, never chunked; Content-MD5 signed
// (aws-sigv4-proxy#45); a chunked PUT refused with 411 and a body over
// MaxBody with 413, both before anything is sent.
func TestProxyS3(t *testing.T) {
	store := &objectStore{objects: map[string][]byte{}}
	f := wiretest.NewFixture(t, imdstestConfig(), store)
	const bucket = "my-bucket.s3.eu-west-2.amazonaws.com"
	spool := t.TempDir()
	p := startProxy(t, f, Config{SignHost: bucket, MaxBuffer: 64 << 10, MaxBody: 8 << 20, SpoolDir: spool})

	// Keys as a client sends them on the wire (escaped), and the key S3
	// stores.
	keys := []struct{ wire, key string }{
		{"/report%202025.csv", "/report 2025.csv"},
		{"/a+b=c", "/a+b=c"},
		{"/dir/a%2Bb%3Dc", "/dir/a+b=c"},
		{"/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt", "/日本語.txt"},
		{"/a/./b/../c", "/a/./b/../c"},
		{"/a//double", "/a//double"},
		{"/tilde~and-under_score", "/tilde~and-under_score"},
		{"/q%3Fx%23y", "/q?x#y"},
		{"/percent%25", "/percent%"},
		{"/paren(1)!*'", "/paren(1)!*'"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, k := range keys {
		size := 1000 + i
		if i%2 == 1 {
			size = 200<<10 + i // over MaxBuffer: streamed
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		f.AWS.Reset()
		req, err := http.NewRequest(http.MethodPut, p.url+k.wire, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.RawPath = k.wire // as given
		req.URL.Path, _ = url.PathUnescape(k.wire)
		sum := md5.Sum(data)
		req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", k.wire, resp.StatusCode, b)
		}
		recs := wiretest.Accepted(t, f.AWS)
		if len(recs) != 1 {
			t.Fatalf("PUT %s: %d records", k.wire, len(recs))
		}
		r := recs[0]
		if r.Service != "s3" || r.Chunked || r.BodyLen != int64(size) || !slices.Contains(r.SignedHeaders, "content-md5") {
			t.Errorf("PUT %s: service %s, chunked %v, %d bytes, signed %v", k.wire, r.Service, r.Chunked, r.BodyLen, r.SignedHeaders)
		}
		streamed := size > 64<<10
		if unsigned := r.PayloadHash == "UNSIGNED-PAYLOAD"; unsigned != streamed {
			t.Errorf("PUT %s of %d bytes: payload hash %s", k.wire, size, r.PayloadHash)
		}

		resp, err = http.Get(p.url + k.wire)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Errorf("GET %s: %d, %d bytes back of %d", k.wire, resp.StatusCode, len(got), len(data))
		}
	}
	// curl sends Expect: 100-continue with a large upload: the proxy
	// forwards it with the streamed body, and the upload completes.
	f.AWS.Reset()
	data := bytes.Repeat([]byte("expect "), 100<<10)
	req, _ := http.NewRequest(http.MethodPut, p.url+"/expect.bin", bytes.NewReader(data))
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: wiretest.FailAfter}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Streamed without Content-MD5, the body carries a CRC32 in an
	// aws-chunked trailer, its chunks signed (the upstream is in clear).
	if recs := wiretest.Accepted(t, f.AWS); resp.StatusCode != http.StatusOK || len(recs) != 1 || recs[0].Chunks != len(data)/(64<<10)+2 ||
		recs[0].PayloadHash != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" || recs[0].Checksum != "CRC32" {
		t.Errorf("PUT with Expect: 100-continue: %d, %+v", resp.StatusCode, recs)
	}
	store.mu.Lock()
	for _, k := range keys {
		if _, ok := store.objects[k.key]; !ok {
			t.Errorf("no object %q; have %v", k.key, slices.Collect(maps.Keys(store.objects)))
		}
	}
	store.mu.Unlock()
	wiretest.Accepted(t, f.AWS)

	f.AWS.Reset()
	// Chunked, without a length: 411 at once.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("part of a stream")); pw.Close() }()
	resp, err = http.Post(p.url+"/stream.bin", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired || !strings.Contains(string(b), "Content-Length") {
		t.Errorf("chunked PUT: %d %s", resp.StatusCode, b)
	}
	// Over MaxBody: 413, the body not read.
	req, _ = http.NewRequest(http.MethodPut, p.url+"/big.bin", io.LimitReader(wiretest.Zeros{}, 9<<20))
	req.ContentLength = 9 << 20
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("9 MiB PUT: %d %s", resp.StatusCode, b)
		}
	} // else the proxy closed the connection while the client still wrote: refused too
	if n := len(f.AWS.Records()); n != 0 {
		t.Errorf("the upstream received %d requests for the refused bodies", n)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("the spool directory holds %v", ents)
	}
	p.waitRequests(t, 2*len(keys)+3)
	if v := p.metric(`kivuli_proxy_request_bodies_total{mode="streamed"}`); v != float64(len(keys)/2+1) {
		t.Errorf("%v streamed bodies", v)
	}
}

// UnsignedPayload signs every body UNSIGNED-PAYLOAD, for a service
// that accepts it (here an es upstream told to): a large body of known
// length streams, a chunked one is spooled to learn its length, and none
// is hashed.
func TestProxyUnsignedPayload(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	rules := sigv4test.DefaultRules()
	rules["es"] = sigv4test.Rule{AllowUnsignedPayload: true}
	f.AWS.Verifier.Rules = rules
	p := startProxy(t, f, Config{SignHost: "search-logs-abc.eu-west-2.es.amazonaws.com", UnsignedPayload: true, MaxBuffer: 64 << 10})
	for _, c := range []struct {
		size    int64
		chunked bool
		mode    string
	}{{1 << 10, false, "buffered"}, {1 << 20, false, "streamed"}, {300 << 10, true, "spooled"}} {
		req, _ := http.NewRequest(http.MethodPost, p.url+"/_bulk", io.LimitReader(wiretest.Zeros{}, c.size))
		req.ContentLength = c.size
		if c.chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		recs := wiretest.Accepted(t, f.AWS)
		r := recs[len(recs)-1]
		if resp.StatusCode != http.StatusOK || r.PayloadHash != "UNSIGNED-PAYLOAD" || r.BodyLen != c.size || r.Chunked {
			t.Errorf("%d bytes, chunked %v: %d, %s, %d bytes, chunked %v", c.size, c.chunked, resp.StatusCode, r.PayloadHash, r.BodyLen, r.Chunked)
		}
	}
	p.waitRequests(t, 3)
	for _, mode := range []string{"buffered", "streamed", "spooled"} {
		if v := p.metric(`kivuli_proxy_request_bodies_total{mode="` + mode + `"}`); v != 1 {
			t.Errorf("%s: %v", mode, v)
		}
	}
}
