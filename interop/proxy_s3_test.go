package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// s3Store is an S3 upstream: it checks every signature, chunk and checksum
// as S3 does, as the body streams (sigv4test's VerifyStream, which holds
// one chunk at most), keeps the objects it accepts (their SHA-256 only,
// with digests: a GiB need not be held), and records what it checked.
type s3Store struct {
	mu      sync.Mutex
	objects map[string][]byte
	records []sigv4test.Record
	v       *sigv4test.Verifier
	digests bool
}

func (s *s3Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st, err := s.v.VerifyStream(r)
	var body []byte
	if err == nil && s.digests {
		h := sha256.New()
		_, err = io.Copy(h, r.Body)
		body = h.Sum(nil)
	} else if err == nil {
		body, err = io.ReadAll(r.Body)
	}
	s.mu.Lock()
	s.records = append(s.records, st.Record())
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	s.mu.Lock()
	s.objects[r.URL.Path] = body
	s.mu.Unlock()
	w.Header().Set("ETag", `"x"`)
}

// TestSDKUploadsThroughProxy (issue 21): aws-sdk-go-v2's S3 client, with
// its default checksums, over TLS (so its uploads are aws-chunked with a
// CRC32 trailer), uploads through the signing proxy with throwaway keys of
// its own, 1 byte and 8 MiB (and 1 GiB with KIVULI_BIG_UPLOADS=1). The
// proxy re-signs each upload with the role: the body streamed
// through untouched to an https upstream; to one in clear decoded, and
// re-encoded with signed chunks (or, small enough to hold, hashed). The upstream checks every signature and
// checksum, and stores the SDK's bytes.
func TestSDKUploadsThroughProxy(t *testing.T) {
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	require.NoError(t, err)
	defer creds.Close()
	for _, upstreamTLS := range []bool{true, false} {
		t.Run(fmt.Sprintf("upstream TLS %v", upstreamTLS), func(t *testing.T) {
			store := &s3Store{objects: map[string][]byte{}, digests: true, v: &sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup), Scope: sigv4test.AnyScope}}
			sizes := []int{1, 8 << 20}
			if os.Getenv("KIVULI_BIG_UPLOADS") != "" && upstreamTLS {
				sizes = append(sizes, 1<<30) // as TestBotocoreUploadsThroughProxy
			}
			up := httptest.NewUnstartedServer(store)
			if upstreamTLS {
				up.StartTLS()
			} else {
				up.Start()
			}
			defer up.Close()
			host := strings.TrimPrefix(strings.TrimPrefix(up.URL, "https://"), "http://")
			p, err := proxy.New(context.Background(), proxy.Config{
				Upstream: up.URL, Credentials: creds, Service: "s3", Region: "eu-west-2",
				AllowedHosts: []string{host}, Transport: up.Client().Transport,
			})
			require.NoError(t, err)
			defer p.Close()
			var sent string // the SDK's payload hash
			front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sent = r.Header.Get("X-Amz-Content-Sha256")
				p.ServeHTTP(w, r)
			}))
			defer front.Close()

			client := s3.New(s3.Options{
				Region: "eu-west-2", BaseEndpoint: aws.String(front.URL), UsePathStyle: true, HTTPClient: front.Client(),
				// What config.LoadDefaultConfig gives: a checksum on every upload.
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
				Credentials:                credentials.NewStaticCredentialsProvider("AKIDTHROWAWAY", "throwaway-secret", ""),
			})
			chunked := 0
			for _, n := range sizes {
				data := bytes.Repeat([]byte("sdk upload "), n/11+1)[:n]
				key := fmt.Sprintf("/bucket/object-%d", n)
				for _, oneShot := range []bool{false, true} {
					var body io.Reader = bytes.NewReader(data)
					if oneShot {
						body = struct{ io.Reader }{body} // no Seek: the SDK streams it
					}
					store.mu.Lock()
					store.records, store.objects[key] = nil, nil
					store.mu.Unlock()
					_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
						Bucket: aws.String("bucket"), Key: aws.String(key[len("/bucket/"):]), Body: body, ContentLength: aws.Int64(int64(n)),
					})
					require.NoError(t, err, "%d bytes, one-shot %v", n, oneShot)
					store.mu.Lock()
					require.Len(t, store.records, 1)
					rec, got := store.records[0], store.objects[key]
					store.mu.Unlock()
					require.NoError(t, rec.Err)
					t.Logf("%d bytes, one-shot %v: the SDK sent %s; S3 got %s, %d chunks, checksum %s", n, oneShot, sent, rec.PayloadHash, rec.Chunks, rec.Checksum)
					assert.Equal(t, "CRC32", rec.Checksum, "the SDK's checksum reached S3")
					switch {
					case sent != "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
						// The SDK sent a plain body, its CRC32 in a header.
						assert.Zero(t, rec.Chunks)
					case upstreamTLS:
						assert.Equal(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", rec.PayloadHash, "streamed through untouched")
					case rec.Chunks == 0:
						// Decoded, small enough to hold: hashed, the CRC32
						// in a header.
						assert.Len(t, rec.PayloadHash, 64)
					default:
						assert.Equal(t, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", rec.PayloadHash, "re-encoded with signed chunks")
					}
					sum := sha256.Sum256(data)
					assert.Equal(t, sum[:], got, "the object stored is the SDK's bytes")
					if sent == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
						chunked++
					}
				}
			}
			assert.Positive(t, chunked, "the SDK sent aws-chunked uploads")
		})
	}
}
