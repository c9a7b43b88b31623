// Command s3 writes, reads back and deletes an S3 object whose key needs
// escaping (spaces, parentheses, UTF-8) with nothing but net/http and
// kivuli.Transport, twice: once from a bytes.Reader, whose SHA-256 is
// signed, and once from a stream that can be read only once, which the s3
// policy sends as UNSIGNED-PAYLOAD instead of buffering it to hash it.
//
//	go run ./examples/s3                              # offline
//	go run ./examples/s3 -aws -bucket my-bucket       # on EC2, with an instance role
//
// Offline, an in-process IMDS emulator stands in for EC2, and the requests,
// though addressed to BUCKET.s3.REGION.amazonaws.com, go to a local endpoint
// that checks every signature as S3 does and keeps objects in memory. With
// -aws the credentials come from the real IMDS and the requests go to S3
// (REGION from -region, else AWS_REGION, else eu-west-2; it must be the
// bucket's); the role needs s3:PutObject, s3:GetObject and s3:DeleteObject.
//
// It exits non-zero if a request fails or an object reads back different.
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

const key = "reports/2026 (final) café.txt"

func main() {
	useAWS := flag.Bool("aws", false, "use the real IMDS and S3")
	bucket := flag.String("bucket", "", "bucket to write to (with -aws)")
	region := flag.String("region", cmp.Or(os.Getenv("AWS_REGION"), "eu-west-2"), "the bucket's region")
	flag.Parse()
	if *useAWS && *bucket == "" {
		fmt.Fprintln(os.Stderr, "s3: -aws needs -bucket")
		os.Exit(2)
	}
	if err := run(*useAWS, cmp.Or(*bucket, "example-bucket"), *region); err != nil {
		fmt.Fprintln(os.Stderr, "s3:", err)
		os.Exit(1)
	}
}

func run(useAWS bool, bucket, region string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The transport infers service (s3) and region from the host name.
	signer := &kivuli.Transport{}
	var opts []kivuli.Option
	var endpoint *sigv4test.Server
	if !useAWS {
		imds := imdstest.NewServer(imdstest.Config{})
		defer imds.Close()
		opts = append(opts, kivuli.WithEndpoint(imds.URL))
		endpoint = sigv4test.NewServer(&sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
			c, ok := imds.Lookup(id)
			return sigv4test.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration}, ok
		}}, &bucketStore{objects: map[string][]byte{}})
		defer endpoint.Close()
		signer.Base = deliverTo(endpoint)
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	signer.Credentials = creds
	d := &demo{
		ctx:      ctx,
		client:   &http.Client{Transport: signer},
		object:   (&url.URL{Scheme: "https", Host: bucket + ".s3." + region + ".amazonaws.com"}).JoinPath(key).String(),
		endpoint: endpoint,
	}
	fmt.Printf("object s3://%s/%s\n", bucket, key)

	// A bytes.Reader can be read again (http.NewRequest sets GetBody):
	// the transport hashes it and signs its SHA-256.
	data := []byte("Q1 revenue: 1 204 000 €\nQ2 revenue: 1 318 500 €\n")
	if _, err := d.do(http.MethodPut, "bytes.Reader", bytes.NewReader(data), 0); err != nil {
		return err
	}
	if err := d.readBack(data); err != nil {
		return err
	}

	// A stream, such as a pipe from a compressor, can be read only once:
	// the s3 policy sends it as UNSIGNED-PAYLOAD rather than buffer it.
	// With ContentLength set it is sent whole, not chunked, as S3 needs.
	data = []byte("Q1 revenue: 1 204 000 €\nQ2 revenue: 1 318 500 €\nQ3 revenue: 1 402 750 €\n")
	pr, pw := io.Pipe()
	go func() { _, err := pw.Write(data); pw.CloseWithError(err) }()
	if _, err := d.do(http.MethodPut, "stream", pr, int64(len(data))); err != nil {
		return err
	}
	if err := d.readBack(data); err != nil {
		return err
	}

	if _, err := d.do(http.MethodDelete, "", nil, 0); err != nil {
		return err
	}
	if endpoint != nil {
		fmt.Println("path on the wire:", endpoint.Records()[0].Path, "(escaped once, as S3 signs it)")
	}
	return nil
}

// demo sends the requests for one object and prints what the endpoint saw.
type demo struct {
	ctx      context.Context
	client   *http.Client
	object   string
	endpoint *sigv4test.Server // nil with -aws
}

// do sends one request, prints a line about it (left open after a GET, for
// readBack to end) and returns the response body.
func (d *demo) do(method, label string, body io.Reader, length int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(d.ctx, method, d.object, body)
	if err != nil {
		return nil, err
	}
	if length > 0 {
		req.ContentLength = length
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %s: %s", method, resp.Status, got)
	}
	fmt.Printf("  %-6s %-12s %-15s", method, label, resp.Status)
	if d.endpoint != nil {
		recs := d.endpoint.Records()
		rec := recs[len(recs)-1]
		switch {
		case rec.Err != nil:
			return nil, rec.Err
		case rec.Chunked:
			return nil, fmt.Errorf("%s: the body was sent chunked, which S3 refuses", method)
		case rec.PayloadHash == kivuli.UnsignedPayload:
			fmt.Printf(" payload: UNSIGNED-PAYLOAD, %d bytes streamed", rec.BodyLen)
		case rec.PayloadHash == kivuli.EmptyPayloadHash:
			fmt.Print(" payload: SHA-256 of the empty body")
		default:
			fmt.Printf(" payload: SHA-256 of the %d-byte body", rec.BodyLen)
		}
	}
	if method != http.MethodGet {
		fmt.Println()
	}
	return got, nil
}

// readBack GETs the object and checks that it holds want.
func (d *demo) readBack(want []byte) error {
	got, err := d.do(http.MethodGet, "", nil, 0)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("GET returned other bytes than were PUT")
	}
	fmt.Printf("; same %d bytes as PUT\n", len(got))
	return nil
}

// bucketStore keeps objects in memory by path, as S3 keeps them by key.
type bucketStore struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func (b *bucketStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.objects[r.URL.Path] = data
	case http.MethodGet:
		data, ok := b.objects[r.URL.Path]
		if !ok {
			http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
			return
		}
		w.Write(data)
	case http.MethodDelete:
		delete(b.objects, r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// deliverTo returns a RoundTripper that sends every request to the local
// endpoint, whatever its URL says; the Host header keeps the AWS host name.
func deliverTo(endpoint *sigv4test.Server) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Host = cmp.Or(r.Host, r.URL.Host)
		r.URL.Scheme, r.URL.Host = "http", endpoint.Listener.Addr().String()
		return endpoint.Client().Transport.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
