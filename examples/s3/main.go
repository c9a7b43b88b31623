// Command s3 writes, reads back and deletes an S3 object whose key needs
// escaping (spaces, parentheses, UTF-8) with nothing but net/http and
// kivuli.Transport, twice: once from a bytes.Reader, whose SHA-256 is
// signed, and once from a stream that can be read only once, which the s3
// policy sends aws-chunked as it reads it, with a CRC32 checksum in the
// trailer, instead of buffering it to hash it. Both carry a CRC32 checksum
// that S3 checks and keeps with the object.
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
// It exits non-zero if a request fails, an object reads back different or,
// offline, the endpoint saw another payload hash than the one shown.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
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

// The X-Amz-Content-Sha256 values the checking endpoint should see.
const (
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of ""
	unsignedTrailer  = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

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

func run(useAWS bool, bucket, region string) (err error) {
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
		endpoint = sigv4test.NewServer(&sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}, &bucketStore{objects: map[string][]byte{}})
		defer endpoint.Close()
		signer.Base = endpoint.RoundTripper()
	}
	creds, err := kivuli.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer creds.Close()
	signer.Credentials = creds
	d := &demo{
		client:   &http.Client{Transport: signer},
		object:   (&url.URL{Scheme: "https", Host: bucket + ".s3." + region + ".amazonaws.com"}).JoinPath(key).String(),
		endpoint: endpoint,
	}
	fmt.Printf("object s3://%s/%s\n", bucket, key)

	// A bytes.Reader can be read again (http.NewRequest sets GetBody):
	// the transport hashes it and signs its SHA-256.
	data := []byte("Q1 revenue: 1 204 000 €\nQ2 revenue: 1 318 500 €\n")
	sum := sha256.Sum256(data)
	if _, err := d.do(ctx, http.MethodPut, "bytes.Reader", bytes.NewReader(data), 0, hex.EncodeToString(sum[:])); err != nil {
		return err
	}
	// The object exists from here on: delete it whatever happens next, with
	// a time limit of its own in case ctx has run out, and report a failure.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, derr := d.do(dctx, http.MethodDelete, "", nil, 0, emptyPayloadHash); derr != nil {
			err = errors.Join(err, fmt.Errorf("the object may be left behind: %w", derr))
			return
		}
		if err == nil && endpoint != nil {
			fmt.Println("path on the wire:", endpoint.Records()[0].Path, "(escaped once, as S3 signs it)")
		}
	}()
	if err := d.readBack(ctx, data); err != nil {
		return err
	}

	// A stream, such as a pipe from a compressor, can be read only once:
	// the s3 policy sends it aws-chunked, as it reads it, with its CRC32
	// in the trailer, rather than buffer it; with ContentLength set, as S3
	// needs the length. The URL is https, so its chunks go unsigned, as the
	// SDKs send them over TLS, the checksum guarding the body (a request in
	// clear gets signed chunks).
	data = []byte("Q1 revenue: 1 204 000 €\nQ2 revenue: 1 318 500 €\nQ3 revenue: 1 402 750 €\n")
	pr, pw := io.Pipe()
	go func() { _, err := pw.Write(data); pw.CloseWithError(err) }()
	if _, err := d.do(ctx, http.MethodPut, "stream", pr, int64(len(data)), unsignedTrailer); err != nil {
		return err
	}
	return d.readBack(ctx, data)
}

// demo sends the requests for one object and prints what the endpoint saw.
type demo struct {
	client   *http.Client
	object   string
	endpoint *sigv4test.Server // nil with -aws
}

// do sends one request, prints a line about it (left open after a GET, for
// readBack to end) and returns the response body. Offline, the endpoint
// must have seen the X-Amz-Content-Sha256 header, as the s3 policy sends
// it, with the payload hash wantHash: the hex SHA-256 of the body, or the
// aws-chunked mode.
func (d *demo) do(ctx context.Context, method, label string, body io.Reader, length int64, wantHash string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.object, body)
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
		return nil, fmt.Errorf("%s: %s%s", method, resp.Status, errorCode(got))
	}
	var payload string // what the endpoint saw, offline
	if d.endpoint != nil {
		recs := d.endpoint.Records()
		rec := recs[len(recs)-1]
		switch {
		case rec.Err != nil:
			return nil, rec.Err
		case rec.Chunked:
			return nil, fmt.Errorf("%s: the body was sent chunked, which S3 refuses", method)
		case !rec.ContentSHA256:
			return nil, fmt.Errorf("%s: no X-Amz-Content-Sha256 header, which S3 requires", method)
		case rec.PayloadHash != wantHash:
			return nil, fmt.Errorf("%s: payload hash %s, want %s", method, rec.PayloadHash, wantHash)
		case rec.PayloadHash == unsignedTrailer:
			payload = fmt.Sprintf(" payload: aws-chunked, %d chunks, %s in the trailer", rec.Chunks, rec.Checksum)
		case rec.PayloadHash == emptyPayloadHash:
			payload = " payload: SHA-256 of the empty body"
		default:
			payload = fmt.Sprintf(" payload: SHA-256 of the %d-byte body", rec.BodyLen)
		}
	}
	fmt.Printf("  %-6s %-12s %-15s%s", method, label, resp.Status, payload)
	if method != http.MethodGet {
		fmt.Println()
	}
	return got, nil
}

// readBack GETs the object and checks that it holds want.
func (d *demo) readBack(ctx context.Context, want []byte) error {
	got, err := d.do(ctx, http.MethodGet, "", nil, 0, emptyPayloadHash)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		fmt.Println("; other bytes than were PUT")
		return errors.New("GET returned other bytes than were PUT")
	}
	fmt.Printf("; same %d bytes as PUT\n", len(got))
	return nil
}

// errorCode returns ": Code: Message" from an S3 XML error body
// (<Error><Code>..</Code><Message>..</Message>...), or "" if there is none.
// It never returns the body itself: for SignatureDoesNotMatch S3 adds the
// signature it got and the canonical request it computed, which holds the
// session token.
func errorCode(body []byte) string {
	var e struct {
		Code    string
		Message string
	}
	if xml.Unmarshal(body, &e) != nil || e.Code == "" {
		return ""
	}
	return ": " + e.Code + ": " + e.Message
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
