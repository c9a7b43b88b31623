package kivuli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestS3Uploads (issue 21): an S3 upload carries a CRC32 checksum that S3
// checks and keeps, whatever its body, read as few times as it can be: a
// body that can be hashed (rewindable, a file) is, the checksum computed in
// the same pass; one that can be read only once goes aws-chunked with the
// checksum in the trailer, its chunks unsigned over TLS (as the SDKs send
// it) and signed in clear. With the policy's Chunked, every upload goes
// with signed chunks, read once. The endpoint decodes what it gets as S3
// does, and the object it stores is the body.
func TestS3Uploads(t *testing.T) {
	var stored []byte
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		stored, _ = io.ReadAll(req.Body)
	}))
	chunked := kivuli.DefaultPolicies()
	pol := chunked["s3"]
	pol.Chunked = true
	chunked["s3"] = pol
	unsigned := kivuli.DefaultPolicies() // the SDKs' trade: no hash of the body
	pol = unsigned["s3"]
	pol.Payload = kivuli.PayloadUnsigned
	unsigned["s3"] = pol
	const signedTrailer, unsignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	for _, n := range []int{1, 8 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3<<20 + 17} {
		data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		hash := fmt.Sprintf("%x", sha256.Sum256(data))
		chunks := (n+64<<10-1)/(64<<10) + 1 // 64 KiB chunks and the final one
		for _, tc := range []struct {
			body, url string
			policies  kivuli.Policies
			payload   string // the payload hash signed
		}{
			{"rewindable", "http", nil, hash},
			{"file", "http", nil, hash},
			{"one-shot", "http", nil, signedTrailer},
			{"one-shot", "https", nil, unsignedTrailer},
			{"rewindable", "https", chunked, signedTrailer},
			{"file", "http", chunked, signedTrailer},
			{"one-shot", "https", chunked, signedTrailer},
			{"rewindable", "https", unsigned, unsignedTrailer},
			{"file", "http", unsigned, signedTrailer},
		} {
			name := fmt.Sprintf("%d bytes, %s, %s", n, tc.body, tc.url)
			switch {
			case tc.policies == nil:
			case tc.policies["s3"].Chunked:
				name += ", Chunked"
			default:
				name += ", PayloadUnsigned"
			}
			t.Run(name, func(t *testing.T) {
				stored = nil
				tr := r.transport("s3")
				tr.Policies = tc.policies
				url := r.endpoint.URL + "/bucket/key"
				if tc.url == "https" {
					url, tr.Base = "https://bucket.s3.eu-west-2.amazonaws.com/key", r.endpoint.RoundTripper()
				}
				req, err := http.NewRequest(http.MethodPut, url, nil)
				require.NoError(t, err)
				req.Body, req.GetBody = uploadBody(t, tc.body, data)
				req.ContentLength = int64(n)
				resp, err := tr.RoundTrip(req)
				require.NoError(t, err)
				resp.Body.Close()
				rec := r.lastRecord(t)
				require.NoError(t, rec.Err)
				assert.Equal(t, tc.payload, rec.PayloadHash)
				assert.Equal(t, "CRC32", rec.Checksum, "a checksum S3 checks and keeps")
				if tc.payload == hash {
					assert.Zero(t, rec.Chunks)
				} else {
					assert.Equal(t, chunks, rec.Chunks)
				}
				assert.False(t, rec.Chunked, "never Transfer-Encoding: chunked")
				assert.Equal(t, data, stored, "the object stored")
			})
		}
	}
}

// uploadBody returns a body of kind rewindable, file or one-shot holding
// data, and its GetBody.
func uploadBody(t *testing.T, kind string, data []byte) (io.ReadCloser, func() (io.ReadCloser, error)) {
	switch kind {
	case "rewindable":
		get := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		b, _ := get()
		return b, get
	case "file":
		path := filepath.Join(t.TempDir(), "object")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		f, err := os.Open(path)
		require.NoError(t, err)
		return f, nil
	}
	return oneShot(data), nil
}

// TestS3ChecksumAsked: a checksum an SDK would send, asked in
// x-amz-sdk-checksum-algorithm, on an upload and on other operations, and
// the ones S3 needs (DeleteObjects, configuration writes) without asking;
// a caller's own x-amz-checksum-* or Content-MD5 is left as it is.
func TestS3ChecksumAsked(t *testing.T) {
	r := newRig(t, nil)
	const deleteXML = `<Delete><Object><Key>a</Key></Object></Delete>`
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		checksum                 string // the algorithm checked, "" none
		chunks                   bool
	}{
		{"upload, SHA256 asked", "PUT", "/bucket/key", "data", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "sha256"}, "SHA256", false},
		{"upload, CRC64NVME asked", "PUT", "/bucket/key?partNumber=2&uploadId=u1", "data", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC64NVME"}, "CRC64NVME", false},
		{"upload, none asked", "PUT", "/bucket/key", "data", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "NONE"}, "", false},
		{"DeleteObjects", "POST", "/bucket?delete", deleteXML, nil, "CRC32", false},
		{"PutBucketPolicy", "PUT", "/bucket?policy", `{"Version":"2012-10-17"}`, nil, "CRC32", false},
		{"PutObjectTagging", "PUT", "/bucket/key?tagging", `<Tagging/>`, nil, "CRC32", false},
		{"CreateBucket: none", "PUT", "/bucket", `<CreateBucketConfiguration/>`, nil, "", false},
		{"CompleteMultipartUpload: none", "POST", "/bucket/key?uploadId=u1", `<CompleteMultipartUpload/>`, nil, "", false},
		{"a caller's own checksum", "POST", "/bucket?delete", deleteXML, map[string]string{"X-Amz-Checksum-Crc32c": crc32cOf(deleteXML)}, "CRC32C", false},
		{"a caller's Content-MD5", "POST", "/bucket?delete", deleteXML, map[string]string{"Content-MD5": "x"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, r.endpoint.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := r.transport("s3").RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			rec := r.lastRecord(t)
			require.NoError(t, rec.Err)
			assert.Equal(t, tc.checksum, rec.Checksum)
			assert.Equal(t, tc.chunks, rec.Chunks > 0, "aws-chunked")
			if !tc.chunks {
				assert.Equal(t, fmt.Sprintf("%x", sha256.Sum256([]byte(tc.body))), rec.PayloadHash, "hashed in the same pass")
			}
		})
	}
	t.Run("an algorithm S3 does not know", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", r.endpoint.URL+"/bucket/key", strings.NewReader("data"))
		req.Header.Set("X-Amz-Sdk-Checksum-Algorithm", "MD4")
		_, err := r.transport("s3").RoundTrip(req)
		require.ErrorIs(t, err, kivuli.ErrInvalidRequest)
	})
}

// crc32cOf is the base64 CRC32C of s, as x-amz-checksum-crc32c carries it.
func crc32cOf(s string) string {
	sum := crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli))
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

// TestS3PreEncodedUpload: a body an SDK encoded already, aws-chunked with
// unsigned chunks and its checksum in the trailer, is signed as it is and
// sent untouched (a proxy forwarding an SDK's upload); only over TLS.
func TestS3PreEncodedUpload(t *testing.T) {
	var stored []byte
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		stored, _ = io.ReadAll(req.Body)
	}))
	data := []byte("an object an SDK sent")
	crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)))
	encoded := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(data), data, crc)
	send := func(url string) error {
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(encoded))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)))
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		tr := r.transport("s3")
		tr.Base = r.endpoint.RoundTripper()
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	require.NoError(t, send("https://bucket.s3.eu-west-2.amazonaws.com/key"))
	rec := r.lastRecord(t)
	require.NoError(t, rec.Err)
	assert.Equal(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", rec.PayloadHash)
	assert.Equal(t, "CRC32", rec.Checksum)
	assert.Equal(t, int64(len(encoded)), rec.BodyLen, "sent untouched")
	assert.Equal(t, data, stored)
	require.ErrorIs(t, send(r.endpoint.URL+"/bucket/key"), kivuli.ErrPlaintext, "never in clear")
}
