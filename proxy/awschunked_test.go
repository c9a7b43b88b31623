package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// TestProxyAWSChunked (issue 21): an upload whose client signed its
// chunks itself, with keys of its own (here kivuli's Transport with
// Policy.Chunked and made-up keys), is decoded and re-signed with the role;
// the upstream checks every chunk and the trailer's checksum, and stores
// the client's bytes. A body whose trailer does not match its bytes, or
// whose framing is broken, never reaches the upstream whole.
func TestProxyAWSChunked(t *testing.T) {
	store := &objectStore{objects: map[string][]byte{}}
	f := wiretest.NewFixture(t, imdstestConfig(), store)
	p := startProxy(t, f, Config{SignHost: "my-bucket.s3.eu-west-2.amazonaws.com", MaxBuffer: 64 << 10})
	policies := kivuli.DefaultPolicies()
	pol := policies["s3"]
	pol.Chunked = true
	policies["s3"] = pol
	client := &http.Client{Transport: &kivuli.Transport{
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDCLIENTKEY", SecretAccessKey: "client-secret"}, nil
		}),
		Service: "s3", Region: "eu-west-2", Policies: policies,
		AllowedHosts: []string{strings.TrimPrefix(p.url, "http://")},
	}}
	for _, n := range []int{1, 70 << 10, 1 << 20} {
		data := wiretest.BulkBytes(n)
		f.AWS.Reset()
		req, _ := http.NewRequest(http.MethodPut, p.url+fmt.Sprintf("/object-%d", n), bytes.NewReader(data))
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "CRC32C")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		recs := wiretest.Accepted(t, f.AWS)
		store.mu.Lock()
		got := store.objects[fmt.Sprintf("/object-%d", n)]
		store.mu.Unlock()
		if resp.StatusCode != http.StatusOK || len(recs) != 1 || recs[0].Checksum != "CRC32C" || !bytes.Equal(got, data) {
			t.Errorf("%d bytes: %d, %+v, %d bytes stored", n, resp.StatusCode, recs, len(got))
		}
	}

	// A body changed on the way: its trailer states another CRC32.
	body := "5;chunk-signature=" + strings.Repeat("0", 64) + "\r\nhello\r\n0;chunk-signature=" + strings.Repeat("0", 64) +
		"\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n\r\n"
	broken := map[string]string{
		"a checksum that does not match": body,
		"a chunk longer than its size":   strings.Replace(body, "5;", "3;", 1),
		"no final chunk":                 body[:strings.Index(body, "0;")],
	}
	// The same, streamed (over MaxBuffer): the upstream's body is cut short.
	big := strings.Repeat("x", 200<<10)
	broken["streamed, a checksum that does not match"] = fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n", len(big), strings.Repeat("0", 64), big) +
		body[strings.Index(body, "0;"):]
	lengths := map[string]int{"streamed, a checksum that does not match": len(big)}
	for name, b := range broken {
		f.AWS.Reset()
		store.mu.Lock()
		delete(store.objects, "/changed")
		store.mu.Unlock()
		req, _ := http.NewRequest(http.MethodPut, p.url+"/changed", strings.NewReader(b))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(max(lengths[name], 5)))
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		store.mu.Lock()
		_, stored := store.objects["/changed"]
		store.mu.Unlock()
		if err == nil && resp.StatusCode < 400 || stored {
			t.Errorf("%s: %v %v, stored %v", name, resp.StatusCode, err, stored)
		}
	}
}

// TestProxyAWSChunkedOfUnknownLength: botocore sends its aws-chunked
// uploads inside Transfer-Encoding: chunked, with no Content-Length (S3
// takes them); only the decoded length is known. The proxy takes them
// too, where it answered 411.
func TestProxyAWSChunkedOfUnknownLength(t *testing.T) {
	store := &objectStore{objects: map[string][]byte{}}
	f := wiretest.NewFixture(t, imdstestConfig(), store)
	p := startProxy(t, f, Config{SignHost: "my-bucket.s3.eu-west-2.amazonaws.com"})
	data := []byte("hello, botocore")
	crc := crc32.ChecksumIEEE(data)
	sum := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	body := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(data), data, sum)
	// A reader of unknown length: net/http sends it chunked.
	req, _ := http.NewRequest(http.MethodPut, p.url+"/botocore", io.MultiReader(strings.NewReader(body)))
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	recs := wiretest.Accepted(t, f.AWS)
	store.mu.Lock()
	got := store.objects["/botocore"]
	store.mu.Unlock()
	if resp.StatusCode != http.StatusOK || len(recs) != 1 || recs[0].Checksum != "CRC32" || !bytes.Equal(got, data) {
		t.Errorf("%d %s: %+v, stored %q", resp.StatusCode, msg, recs, got)
	}
}

// TestProxyAWSChunkedFramingBound: an aws-chunked upload of unknown encoded
// length, streamed through to an https upstream as it is, is cut where its
// framing would have to exceed what any body of its stated decoded length
// takes: X-Amz-Decoded-Content-Length says 15 bytes (under MaxBody), the
// body carries 8 MiB. Before, all of it went upstream, signed as the role.
func TestProxyAWSChunkedFramingBound(t *testing.T) {
	var got atomic.Int64
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	}))
	defer up.Close()
	f := wiretest.NewFixture(t, imdstestConfig(), http.NotFoundHandler())
	creds, err := kivuli.New(t.Context(), kivuli.WithEndpoint(f.IMDS.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	host := strings.TrimPrefix(up.URL, "https://")
	p, err := New(t.Context(), Config{Upstream: up.URL, AllowedHosts: []string{host}, SignHost: "my-bucket.s3.eu-west-2.amazonaws.com",
		Credentials: creds, MaxBody: 1 << 20, UpstreamTLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	chunk := strings.Repeat("x", 1<<20)
	var sb strings.Builder
	for range 8 {
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	sb.WriteString("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/big", io.MultiReader(strings.NewReader(sb.String())))
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", "15")
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || got.Load() > framingLimit(15) {
		t.Errorf("%d, and the upstream received %d bytes of a body that says it holds 15", resp.StatusCode, got.Load())
	}
}
