package sigv4test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chunkedExample is the S3 documentation's example of a payload signed in
// chunks (../testdata/chunked/vectors.json, aws-c-auth's values), as a
// server receives it, with its body encoded by edit's chunks.
func chunkedExample(t *testing.T, edit func(chunks [][]byte) [][]byte) (*Verifier, *http.Request, []byte) {
	t.Helper()
	var v struct {
		AccessKeyID     string   `json:"access_key_id"`
		SecretAccessKey string   `json:"secret_access_key"`
		Authorization   string   `json:"authorization"`
		ChunkSignatures []string `json:"chunk_signatures"`
	}
	if err := json.Unmarshal(readFile(t, "..", "testdata", "chunked", "vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("a"), 66560)
	var chunks [][]byte
	for i, n := range []int{65536, 1024, 0} {
		c := []byte(strconv.FormatInt(int64(n), 16) + ";chunk-signature=" + v.ChunkSignatures[i] + "\r\n")
		c = append(c, data[:n]...)
		chunks = append(chunks, append(c, "\r\n"...))
	}
	if edit != nil {
		chunks = edit(chunks)
	}
	body := bytes.Join(chunks, nil)
	r := httptest.NewRequest(http.MethodPut, "http://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body))
	for k, val := range map[string]string{
		"X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY", "Content-Encoding": "aws-chunked",
		"X-Amz-Decoded-Content-Length": "66560", "X-Amz-Content-Sha256": streamingSigned, "Authorization": v.Authorization,
	} {
		r.Header.Set(k, val)
	}
	r.ContentLength = 66824 // as signed, whatever the body now holds
	when := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	ver := &Verifier{Secrets: Static(Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey}), Now: func() time.Time { return when }}
	return ver, r, data
}

// chunkedEdits are tamperings of chunkedExample's body and S3's verdicts.
var chunkedEdits = []struct {
	name string
	edit func([][]byte) [][]byte
	code string
}{
	{"a byte of data changed", func(c [][]byte) [][]byte { c[1][100] = 'b'; return c }, "SignatureDoesNotMatch"},
	{"chunks swapped", func(c [][]byte) [][]byte { c[0], c[1] = c[1], c[0]; return c }, "SignatureDoesNotMatch"},
	{"no final chunk", func(c [][]byte) [][]byte { return c[:2] }, "IncompleteBody"},
	{"a signature missing", func(c [][]byte) [][]byte {
		c[1] = bytes.Replace(c[1], []byte(";chunk-signature="), []byte(";x="), 1)
		return c
	}, "IncompleteSignature"},
	{"a size not hex", func(c [][]byte) [][]byte { c[1] = append([]byte("z"), c[1][3:]...); return c }, "InvalidChunkSizeError"},
	{"bytes after the end", func(c [][]byte) [][]byte { return append(c, []byte("junk")) }, "IncompleteSignature"},
	{"data cut short", func(c [][]byte) [][]byte { c[1] = c[1][:500]; return c[:2] }, "IncompleteBody"},
}

// TestAWSChunked (issue 21, point 2): the documentation's example is
// accepted, its chunks counted and its decoded body handed on; every
// tampering is refused with S3's code.
func TestAWSChunked(t *testing.T) {
	v, r, data := chunkedExample(t, nil)
	rec := v.Verify(r)
	if rec.Err != nil {
		t.Fatalf("the documentation's example: %v", rec.Err)
	}
	got, _ := io.ReadAll(r.Body)
	if rec.Chunks != 3 || !bytes.Equal(got, data) || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("chunks %d, decoded body %d bytes, Content-Encoding %q", rec.Chunks, len(got), r.Header.Get("Content-Encoding"))
	}
	for _, tc := range chunkedEdits {
		t.Run(tc.name, func(t *testing.T) {
			v, r, _ := chunkedExample(t, tc.edit)
			_, seed, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
			rec := v.Verify(r)
			var e *Error
			if !errors.As(rec.Err, &e) || e.Code != tc.code {
				t.Errorf("got %v, want %s", rec.Err, tc.code)
			}
			noLeak(t, rec, seed) // a chunk's string to sign holds the signature before it
		})
	}
	t.Run("decoded length", func(t *testing.T) {
		v, r, _ := chunkedExample(t, nil)
		r.Header.Set("X-Amz-Decoded-Content-Length", "66561") // signed: the signature breaks first
		if rec := v.Verify(r); rec.Err == nil || !strings.Contains(rec.Err.Error(), "SignatureDoesNotMatch") {
			t.Errorf("got %v", rec.Err)
		}
	})
}

// checksumCases are x-amz-checksum-* headers of the body "hello world"
// and S3's verdicts.
var checksumCases = []struct {
	alg, value, named, code string
}{
	{"crc32", "DUoRhQ==", "", ""},          // crc32("hello world")
	{"crc32c", "yZRlqg==", "CRC32C", ""},   // crc32c("hello world")
	{"crc32", "AAAAAA==", "", "BadDigest"}, // wrong
	{"sha256", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", "SHA256", ""},
	{"crc32", "DUoRhQ==", "SHA256", "InvalidRequest"}, // names one not sent
	{"md4", "AAAAAA==", "", "InvalidRequest"},
}

// TestChecksumHeaders: a plain body's x-amz-checksum-* is checked.
func TestChecksumHeaders(t *testing.T) {
	for _, tc := range checksumCases {
		t.Run(tc.alg+" "+tc.value, func(t *testing.T) {
			v := testVerifier()
			v.Scope = AnyScope
			r := httptest.NewRequest(http.MethodPut, "http://b.s3.amazonaws.com/k", strings.NewReader("hello world"))
			r.Header.Set("X-Amz-Checksum-"+tc.alg, tc.value)
			if tc.named != "" {
				r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", tc.named)
			}
			s := defaultSigner()
			s.service, s.contentSHA = "s3", "body"
			s.sign(t, r, []byte("hello world"))
			rec := v.Verify(r)
			var e *Error
			switch {
			case tc.code == "" && rec.Err != nil:
				t.Errorf("refused: %v", rec.Err)
			case tc.code != "" && (!errors.As(rec.Err, &e) || e.Code != tc.code):
				t.Errorf("got %v, want %s", rec.Err, tc.code)
			case tc.code == "" && rec.Checksum != strings.ToUpper(tc.alg):
				t.Errorf("Record.Checksum %q", rec.Checksum)
			}
		})
	}
}
