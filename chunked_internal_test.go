package kivuli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunkVectors are testdata/chunked/vectors.json: the S3 documentation's
// example of a payload signed in chunks, as aws-c-auth tests it.
type chunkVectors struct {
	AccessKeyID      string `json:"access_key_id"`
	SecretAccessKey  string `json:"secret_access_key"`
	Region, Service  string
	Date             string
	Authorization    string
	Seed             string   `json:"seed_signature"`
	ChunkSignatures  []string `json:"chunk_signatures"`
	Trailer          string
	TrailerSignature string `json:"trailer_signature"`
	Request          struct {
		Method, Host, Path string
		Headers            map[string]string
		DecodedLength      int64 `json:"decoded_content_length"`
		ContentLength      int64 `json:"content_length"`
	}
}

func readChunkVectors(t *testing.T) chunkVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/chunked/vectors.json")
	require.NoError(t, err)
	var v chunkVectors
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

// TestChunkedVectors (issue 21): the seed, chunk and trailer signatures of
// the S3 documentation's example, and the bytes on the wire, from the
// Transport's own signing path.
func TestChunkedVectors(t *testing.T) {
	v := readChunkVectors(t)
	when, err := time.Parse("20060102T150405Z", v.Date)
	require.NoError(t, err)
	creds := aws.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey}
	body := bytes.Repeat([]byte("a"), int(v.Request.DecodedLength))

	r, err := http.NewRequest(v.Request.Method, "https://"+v.Request.Host+v.Request.Path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, val := range v.Request.Headers {
		r.Header.Set(k, val)
	}
	plan := &chunkPlan{length: int64(len(body))}
	prepareChunked(r, plan)
	assert.Equal(t, v.Request.ContentLength, r.ContentLength, "the encoded length, computed up front")
	// aws-c-auth signs Content-Length, as the example does.
	r.Header.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	s := &signing{creds: creds, service: v.Service, region: v.Region, policy: builtinPolicies["s3"],
		payloadHash: plan.payloadHash(), time: when}
	require.NoError(t, sign(context.Background(), r, s))
	assert.Equal(t, v.Authorization, r.Header.Get("Authorization"))
	require.NoError(t, attachChunked(context.Background(), r, plan, s))

	var want bytes.Buffer
	for i, n := range []int{65536, 1024, 0} {
		want.WriteString(strconv.FormatInt(int64(n), 16) + ";chunk-signature=" + v.ChunkSignatures[i] + "\r\n")
		want.Write(body[:n])
		want.WriteString("\r\n")
	}
	got, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, want.String(), string(got), "the body on the wire")
	assert.Len(t, got, int(v.Request.ContentLength))

	cs, err := newChunkSigner(creds, v.Service, v.Region, when, v.ChunkSignatures[2])
	require.NoError(t, err)
	assert.Equal(t, v.TrailerSignature, cs.trailer(v.Trailer), "the trailer signature, over lines ending in \\n")
	cs, _ = newChunkSigner(creds, v.Service, v.Region, when, v.ChunkSignatures[2])
	assert.NotEqual(t, v.TrailerSignature, cs.trailer(strings.ReplaceAll(v.Trailer, "\n", "\r\n")), "not over \\r\\n")
}

// TestChunkedEncodedLength: the length computed up front is the length
// sent, for every size around the chunk boundaries, with and without a
// trailer of every algorithm.
func TestChunkedEncodedLength(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}
	for _, alg := range []ChecksumAlgorithm{"", ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256} {
		for _, n := range []int64{1, 15, 16, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7} {
			plan := chunkPlan{length: n, checksum: alg}
			cs, err := newChunkSigner(creds, "s3", "us-east-1", time.Now(), strings.Repeat("ab", 32))
			require.NoError(t, err)
			got, err := io.ReadAll(newChunkedBody(context.Background(), io.NopCloser(bytes.NewReader(make([]byte, n))), plan, cs))
			require.NoError(t, err)
			assert.Equal(t, plan.encodedLength(), int64(len(got)), "%s, %d bytes", alg, n)
		}
	}
}

// BenchmarkChunkedEncode: the one pass of an aws-chunked upload, read
// from memory and written nowhere (signed chunks, a CRC32 trailer), beside
// crypto/sha256 over the same bytes: the speed issue 21 asks of it is 90%
// of the hash's.
func BenchmarkChunkedEncode(b *testing.B) {
	data := bytes.Repeat([]byte("kivuli chunked bench"), (64<<20)/20+1)[:64<<20]
	creds := aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}
	seed := strings.Repeat("ab", 32)
	b.Run("impl=chunked", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			cs, _ := newChunkSigner(creds, "s3", "us-east-1", time.Now(), seed)
			body := newChunkedBody(context.Background(), io.NopCloser(bytes.NewReader(data)), chunkPlan{length: int64(len(data)), checksum: ChecksumCRC32}, cs)
			if _, err := body.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			sha256.Sum256(data)
		}
	})
}
