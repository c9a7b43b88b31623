package sigv4test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// awsChunks encodes an aws-chunked body as it is read, signing each chunk
// (and the trailer) with this package's SigV4 functions, chained from the
// request's signature.
type awsChunks struct {
	key            []byte
	amzDate, scope string
	prev           string // the request's signature, then each chunk's
	signed         bool
	trailer        string    // the trailer's header, such as "x-amz-checksum-crc32"; "" none
	sum            hash.Hash // the trailer's checksum
	badSum         bool      // send a wrong checksum
	badTrailerSig  bool      // sign the trailer with another key
	next           func() []byte
	buf            []byte // encoded, buf[off:] not yet read
	off            int
	done           bool
	lastData       *byte // the data whose hash lastHash is: a repeated chunk is hashed once
	lastHash       string
}

func (g *awsChunks) Read(p []byte) (int, error) {
	for g.off == len(g.buf) {
		if g.done {
			return 0, io.EOF
		}
		g.fill()
		g.off = 0
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	return n, nil
}

func (g *awsChunks) sign(sts string) string { return hex.EncodeToString(hmacSHA256(g.key, sts)) }

// fill encodes the next chunk, and after the final one the trailer.
func (g *awsChunks) fill() {
	data := g.next()
	g.buf = append(g.buf[:0], strconv.FormatInt(int64(len(data)), 16)...)
	if g.signed {
		h := emptySHA256
		if len(data) > 0 && &data[0] == g.lastData {
			h = g.lastHash
		} else if len(data) > 0 {
			h, g.lastData = hexSHA256(data), &data[0]
			g.lastHash = h
		}
		g.prev = g.sign("AWS4-HMAC-SHA256-PAYLOAD\n" + g.amzDate + "\n" + g.scope + "\n" + g.prev + "\n" + emptySHA256 + "\n" + h)
		g.buf = append(g.buf, ";chunk-signature="+g.prev...)
	}
	g.buf = append(append(g.buf, "\r\n"...), data...)
	if len(data) > 0 {
		g.buf = append(g.buf, "\r\n"...)
		if g.sum != nil {
			g.sum.Write(data)
		}
		return
	}
	g.done = true
	if g.trailer == "" {
		g.buf = append(g.buf, "\r\n"...)
		return
	}
	value := base64.StdEncoding.EncodeToString(g.sum.Sum(nil))
	if g.badSum {
		value = base64.StdEncoding.EncodeToString([]byte("oops"))
	}
	line := g.trailer + ":" + value
	g.buf = append(g.buf, line+"\r\n"...)
	if g.signed {
		sum := hexSHA256([]byte(line + "\n"))
		if g.badTrailerSig {
			g.key = signingKey("another secret", g.amzDate[:8], "us-east-1", "s3")
		}
		sig := g.sign("AWS4-HMAC-SHA256-TRAILER\n" + g.amzDate + "\n" + g.scope + "\n" + g.prev + "\n" + sum)
		g.buf = append(g.buf, "x-amz-trailer-signature:"+sig+"\r\n"...)
	}
	g.buf = append(g.buf, "\r\n"...)
}

// chunkedUpload returns an S3 PUT signed for an aws-chunked body of mode,
// decodedLen bytes handed out by next, with a CRC32 trailer unless mode
// has none, and the encoder of its body, which is r.Body.
func chunkedUpload(t testing.TB, mode string, decodedLen int64, next func() []byte) (*http.Request, *awsChunks) {
	return chunkedUploadTo(t, "http://example.com/bucket/key", mode, decodedLen, next)
}

// chunkedUploadTo is chunkedUpload to the URL target.
func chunkedUploadTo(t testing.TB, target, mode string, decodedLen int64, next func() []byte) (*http.Request, *awsChunks) {
	r := httptest.NewRequest(http.MethodPut, target, nil)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(decodedLen, 10))
	g := &awsChunks{signed: mode != streamingUnsigned, next: next}
	if mode != streamingSigned {
		g.trailer, g.sum = "x-amz-checksum-crc32", crc32.NewIEEE()
		r.Header.Set("X-Amz-Trailer", g.trailer)
	}
	s := defaultSigner()
	s.service, s.contentSHA = "s3", mode
	g.prev = s.sign(t, r, nil)
	g.amzDate = testNow.Format(amzDateLayout)
	g.scope = g.amzDate[:8] + "/us-east-1/s3/aws4_request"
	g.key = signingKey(testSecret, g.amzDate[:8], "us-east-1", "s3")
	r.Body, r.ContentLength = io.NopCloser(g), -1
	return r, g
}

// pieces hands out data in chunks of size, then the final empty one;
// cut, when positive, ends the data after that many chunks.
func pieces(data []byte, size int) func() []byte {
	return func() []byte {
		n := min(size, len(data))
		c := data[:n]
		data = data[n:]
		return c
	}
}

func streamVerifier() *Verifier {
	v := testVerifier()
	v.Scope = AnyScope
	return v
}

// readStream verifies r with VerifyStream and reads all of its data.
func readStream(t testing.TB, v *Verifier, r *http.Request) (data []byte, rec Record, readErr error) {
	s, err := v.VerifyStream(r)
	if err != nil {
		if _, rerr := s.Read(make([]byte, 1)); rerr != err {
			t.Errorf("Read after a rejected head: %v, want %v", rerr, err)
		}
		return nil, s.Record(), err
	}
	if r.Body != s {
		t.Errorf("r.Body is not the Stream")
	}
	data, err = io.ReadAll(r.Body)
	return data, s.Record(), err
}

// TestVerifyStreamTampering: every request of TestVerifyTampering gets
// the same verdict through the stream, the body's data read whole when
// accepted, and no error but the Record's. The one difference is meant:
// MaxBody does not bound a plain body that is streamed.
func TestVerifyStreamTampering(t *testing.T) {
	for _, c := range tamperingCases() {
		t.Run(c.name, func(t *testing.T) {
			v := testVerifier()
			r, sig := c.mutate(t, v)
			want := c.code
			if want == "RequestEntityTooLarge" {
				want = "" // the stream holds none of it
			}
			var body []byte // the body sent
			if r2, _ := c.mutate(t, testVerifier()); r2.Body != nil {
				body, _ = io.ReadAll(r2.Body)
			}
			data, rec, err := readStream(t, v, r)
			if got := errCode(rec.Err); got != want {
				t.Fatalf("code %q, want %q (%v)", got, want, rec.Err)
			}
			if want == "" && (err != nil || !bytes.Equal(data, body) || rec.BodyLen != int64(len(body))) {
				t.Errorf("data %q, %v, BodyLen %d", data, err, rec.BodyLen)
			}
			if want != "" && err != rec.Err {
				t.Errorf("read error %v, record %v", err, rec.Err)
			}
			if c.check != nil && c.code == want {
				c.check(t, rec)
			}
			noLeak(t, rec, sig)
		})
	}
}

// checksumRequest is an S3 PUT of "hello world" with the checksum header
// of tc.
func checksumRequest(t *testing.T, alg, value, named string) *http.Request {
	r := httptest.NewRequest(http.MethodPut, "http://b.s3.amazonaws.com/k", strings.NewReader("hello world"))
	r.Header.Set("X-Amz-Checksum-"+alg, value)
	if named != "" {
		r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", named)
	}
	s := defaultSigner()
	s.service, s.contentSHA = "s3", "body"
	s.sign(t, r, []byte("hello world"))
	return r
}

// TestVerifyStreamChecksumHeaders: the cases of TestChecksumHeaders, their
// checksums taken as the body streams and checked at its end.
func TestVerifyStreamChecksumHeaders(t *testing.T) {
	for _, tc := range checksumCases {
		t.Run(tc.alg+" "+tc.value, func(t *testing.T) {
			data, rec, err := readStream(t, streamVerifier(), checksumRequest(t, tc.alg, tc.value, tc.named))
			if got := errCode(rec.Err); got != tc.code {
				t.Fatalf("code %q, want %q (%v)", got, tc.code, rec.Err)
			}
			switch {
			case tc.code == "" && (err != nil || string(data) != "hello world" || rec.Checksum != strings.ToUpper(tc.alg)):
				t.Errorf("data %q, %v, Checksum %q", data, err, rec.Checksum)
			case tc.code != "" && err != rec.Err:
				t.Errorf("read error %v, record %v", err, rec.Err)
			}
		})
	}
}

// TestVerifyStreamChunkedExample: the cases of TestAWSChunked through the
// stream: the example's decoded data, and each tampering's code.
func TestVerifyStreamChunkedExample(t *testing.T) {
	v, r, want := chunkedExample(t, nil)
	data, rec, err := readStream(t, v, r)
	if err != nil || !bytes.Equal(data, want) || rec.Chunks != 3 || r.ContentLength != int64(len(want)) || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("%v: %d bytes, %d chunks, Content-Length %d, Content-Encoding %q", err, len(data), rec.Chunks, r.ContentLength, r.Header.Get("Content-Encoding"))
	}
	for _, tc := range chunkedEdits {
		t.Run(tc.name, func(t *testing.T) {
			v, r, _ := chunkedExample(t, tc.edit)
			_, seed, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
			_, rec, err := readStream(t, v, r)
			if errCode(rec.Err) != tc.code || err != rec.Err {
				t.Errorf("got %v (read: %v), want %s", rec.Err, err, tc.code)
			}
			noLeak(t, rec, seed) // a chunk's string to sign holds the signature before it
		})
	}
}

// TestVerifyStreamChunkModes: each aws-chunked mode S3 takes with SigV4,
// and its failures, checked by Verify and by the stream alike: the data
// handed on is the data of the chunks that held (an unsigned chunk's as it
// comes), never followed by io.EOF when one did not.
func TestVerifyStreamChunkModes(t *testing.T) {
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	const size = 16 << 10
	for _, mode := range []string{streamingSigned, streamingSignedTrailer, streamingUnsigned} {
		for _, tc := range []struct {
			name      string
			edit      func(g *awsChunks) // on the encoder, before it is read
			cut       func(enc []byte) []byte
			code      string
			delivered int // data handed on before the error
		}{
			{name: "whole", delivered: len(data)},
			{name: "cut mid-chunk", cut: func(enc []byte) []byte {
				chunk := bytes.Index(enc, []byte("\r\n")) + 2 + size + 2 // a chunk, encoded
				return enc[:2*chunk+chunk/2]
			}, code: "IncompleteBody", delivered: 2 * size},
			{name: "a bad chunk signature in the middle", edit: func(g *awsChunks) {
				next := g.next
				n := 0
				g.next = func() []byte {
					if n++; n == 3 {
						g.prev = strings.Repeat("0", 64) // chunk 3 chains from another signature
					}
					return next()
				}
			}, code: "SignatureDoesNotMatch", delivered: 2 * size},
			{name: "trailer checksum mismatch", edit: func(g *awsChunks) { g.badSum = true }, code: "BadDigest", delivered: len(data)},
			{name: "trailer signature mismatch", edit: func(g *awsChunks) { g.badTrailerSig = true }, code: "SignatureDoesNotMatch", delivered: len(data)},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				// The verdict of a chunk or a trailer of a mode that has none.
				code, delivered := tc.code, tc.delivered
				switch {
				case tc.name == "a bad chunk signature in the middle" && mode == streamingUnsigned:
					code, delivered = "", len(data)
				case strings.HasPrefix(tc.name, "trailer") && mode == streamingSigned,
					tc.name == "trailer signature mismatch" && mode == streamingUnsigned:
					code, delivered = "", len(data)
				case code == "":
					delivered = len(data)
				}
				build := func() *http.Request {
					r, g := chunkedUpload(t, mode, int64(len(data)), pieces(data, size))
					if tc.edit != nil {
						tc.edit(g)
					}
					if tc.cut != nil {
						enc, _ := io.ReadAll(g)
						r.Body = io.NopCloser(bytes.NewReader(tc.cut(enc)))
					}
					return r
				}
				v := streamVerifier()
				got, rec, err := readStream(t, v, build())
				if errCode(rec.Err) != code || (code != "" && err != rec.Err) || (code == "" && err != nil) {
					t.Fatalf("stream: %v (read: %v), want %q", rec.Err, err, code)
				}
				if tc.name == "cut mid-chunk" && mode == streamingUnsigned {
					// An unsigned chunk's data is passed on as it comes.
					delivered = min(max(len(got), 2*size+1), 3*size-1)
				}
				if len(got) != delivered || !bytes.Equal(got, data[:len(got)]) {
					t.Errorf("stream handed on %d bytes, want %d of the data", len(got), delivered)
				}
				if code == "" && (rec.Chunks != len(data)/size+2 || mode != streamingSigned && rec.Checksum != "CRC32") {
					t.Errorf("Chunks %d, Checksum %q", rec.Chunks, rec.Checksum)
				}
				vrec := v.Verify(build())
				if errCode(vrec.Err) != code {
					t.Errorf("Verify: %v, want %q", vrec.Err, code)
				}
			})
		}
	}
}

// TestVerifyStreamGiB (the point of the stream): a 1 GiB aws-chunked
// upload, signed chunks of 64 KiB and a signed CRC32 trailer, is checked
// as it is read while the heap stays within a few chunks: its peak grows
// by less than 16 MiB, and all that is allocated while it streams is less
// than a tenth of it (the chunks' strings), never a copy of the body.
func TestVerifyStreamGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB through SHA-256 and CRC32")
	}
	const total, size = 1 << 30, 64 << 10
	block := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	left := total
	r, _ := chunkedUpload(t, streamingSignedTrailer, total, func() []byte {
		n := min(size, left)
		left -= n
		return block[:n]
	})
	runtime.GC()
	var before, m runtime.MemStats
	runtime.ReadMemStats(&before)
	s, err := streamVerifier().VerifyStream(r)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var n, peak uint64
	for reads := 0; ; reads++ {
		k, err := s.Read(buf)
		n += uint64(k)
		if reads%512 == 0 || err != nil {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	rec := s.Record()
	t.Logf("%d bytes, %d chunks; heap %d MiB before, peak %d MiB; %d MiB allocated", n, rec.Chunks, before.HeapAlloc>>20, peak>>20, (m.TotalAlloc-before.TotalAlloc)>>20)
	if n != total || rec.Err != nil || rec.Chunks != total/size+1 || rec.Checksum != "CRC32" {
		t.Errorf("%d bytes, %+v", n, rec)
	}
	if grew := int64(peak) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("the heap grew by %d MiB reading a GiB", grew>>20)
	}
	if alloc := m.TotalAlloc - before.TotalAlloc; alloc > total/10 {
		t.Errorf("%d MiB allocated reading a GiB", alloc>>20)
	}
}

// TestServerStream: a Server whose Verifier streams passes an upload's
// head to its handler at once, and the checked data as it arrives over
// the wire; a chunk that fails reaches the handler as an *Error, and the
// server answers it with S3's error when the handler did not; the Record
// holds the verdict on the whole body.
func TestServerStream(t *testing.T) {
	data := bytes.Repeat([]byte("stream me "), 10<<10)
	type seen struct {
		n    int
		code string
	}
	got := make(chan seen, 1)
	srv := NewServer(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var e *Error
		if errors.As(err, &e) {
			got <- seen{len(b), e.Code}
			return // the server answers
		}
		got <- seen{len(b), ""}
		if !bytes.Equal(b, data) || r.ContentLength != int64(len(data)) {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	defer srv.Close()
	srv.Verifier = streamVerifier()
	srv.Verifier.Stream = true
	for _, tc := range []struct {
		name   string
		edit   func(*awsChunks)
		status int
		seen   seen
	}{
		{"whole", nil, http.StatusOK, seen{len(data), ""}},
		{"a bad chunk signature in the middle", func(g *awsChunks) {
			next, n := g.next, 0
			g.next = func() []byte {
				if n++; n == 4 {
					g.prev = strings.Repeat("0", 64)
				}
				return next()
			}
		}, http.StatusForbidden, seen{3 * 16 << 10, "SignatureDoesNotMatch"}},
		{"a bad trailer", func(g *awsChunks) { g.badSum = true }, http.StatusForbidden, seen{len(data), "BadDigest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.Reset()
			r, g := chunkedUploadTo(t, srv.URL+"/bucket/key", streamingSignedTrailer, int64(len(data)), pieces(data, 16<<10))
			if tc.edit != nil {
				tc.edit(g)
			}
			r.RequestURI = "" // sent as a client sends it: Transfer-Encoding: chunked
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if s := <-got; resp.StatusCode != tc.status || s != tc.seen {
				t.Errorf("status %d, the handler read %+v; want %d, %+v\n%s", resp.StatusCode, s, tc.status, tc.seen, body)
			}
			recs := srv.Records()
			if len(recs) != 1 || errCode(recs[0].Err) != tc.seen.code || !recs[0].Chunked || tc.seen.code == "" && recs[0].Checksum != "CRC32" {
				t.Errorf("records %+v", recs)
			}
			if tc.seen.code != "" && !strings.Contains(string(body), "<Code>"+tc.seen.code+"</Code>") {
				t.Errorf("answer %s", body)
			}
		})
	}
	t.Run("a rejected head does not reach the handler", func(t *testing.T) {
		srv.Reset()
		r, g := chunkedUploadTo(t, srv.URL+"/bucket/key", streamingSignedTrailer, int64(len(data)), pieces(data, 16<<10))
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Signature="+g.prev, "Signature="+strings.Repeat("1", 64), 1))
		r.RequestURI = ""
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if recs := srv.Records(); resp.StatusCode != http.StatusForbidden || len(recs) != 1 || errCode(recs[0].Err) != "SignatureDoesNotMatch" || len(got) != 0 {
			t.Errorf("status %d, records %+v", resp.StatusCode, recs)
		}
	})
	t.Run("without a handler", func(t *testing.T) {
		plain := NewServer(streamVerifier(), nil)
		defer plain.Close()
		plain.Verifier.Stream = true
		r, _ := chunkedUploadTo(t, plain.URL+"/bucket/key", streamingUnsigned, int64(len(data)), pieces(data, 16<<10))
		r.RequestURI = ""
		resp, err := plain.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok":true`) {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
}

// benchUpload is a 64 MiB S3 upload in signed chunks of 64 KiB with a
// signed CRC32 trailer (as kivuli's proxy sends them), encoded, and a
// request for each run.
func benchUpload(b *testing.B) (func() *http.Request, int64) {
	const total = 64 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), total/16)
	r, g := chunkedUpload(b, streamingSignedTrailer, total, pieces(data, 64<<10))
	enc, _ := io.ReadAll(g)
	return func() *http.Request {
		c := r.Clone(r.Context())
		c.Body = io.NopCloser(bytes.NewReader(enc))
		return c
	}, total
}

// BenchmarkVerify: Verify of a 64 MiB signed-chunked upload, held whole.
func BenchmarkVerify(b *testing.B) {
	req, n := benchUpload(b)
	v := streamVerifier()
	b.SetBytes(n)
	for b.Loop() {
		r := req()
		if rec := v.Verify(r); rec.Err != nil {
			b.Fatal(rec.Err)
		}
		io.Copy(io.Discard, r.Body)
	}
}

// BenchmarkVerifyStream: the same upload through VerifyStream, read in
// 256 KiB reads as a handler copying it on would.
func BenchmarkVerifyStream(b *testing.B) {
	req, n := benchUpload(b)
	v := streamVerifier()
	buf := make([]byte, 256<<10)
	b.SetBytes(n)
	for b.Loop() {
		s, err := v.VerifyStream(req())
		if err == nil {
			_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{s}, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyStreamChunkLimit: MaxBody bounds the signed chunk the stream
// holds to check it; an unsigned chunk (aws-sdk-go-v2 sends a body as one)
// is passed on as it comes, whatever its size.
func TestVerifyStreamChunkLimit(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100<<10)
	for mode, code := range map[string]string{streamingUnsigned: "", streamingSignedTrailer: "RequestEntityTooLarge"} {
		r, _ := chunkedUpload(t, mode, int64(len(data)), pieces(data, len(data)))
		v := streamVerifier()
		v.MaxBody = 32 << 10
		got, rec, _ := readStream(t, v, r)
		if errCode(rec.Err) != code || code == "" && !bytes.Equal(got, data) || code != "" && len(got) != 0 {
			t.Errorf("%s: %v, %d bytes handed on", mode, rec.Err, len(got))
		}
	}
}
