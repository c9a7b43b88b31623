package kivuli

// The body of a request enters its signature as a hash: streamed from
// GetBody or an io.Seeker, buffered when it can be read only once, or not at
// all (UNSIGNED-PAYLOAD) where the service accepts it. Body buffers are
// never pooled: net/http may read them after RoundTrip returns.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
)

// defaultMaxBufferedBody is how much of a body that can be read only once
// is buffered to hash it, unless [Transport.MaxBufferedBody] says otherwise.
const defaultMaxBufferedBody = 16 << 20

// payloadPlan is how a request's body enters its signature.
type payloadPlan struct {
	hash     string     // the payload hash signed
	consumed bool       // the original body was read and closed (buffered)
	chunked  *chunkPlan // sent aws-chunked: its body is attached once signed
}

// payload returns how the body of r (a clone the caller owns) enters its
// signature: its hash, streamed or buffered (the buffer then becomes the
// body), UNSIGNED-PAYLOAD, or aws-chunked (chunked.go). Where an S3
// flexible checksum is wanted (checksum.go), it is computed in the same
// pass as the hash and set as a header, or sent in the aws-chunked
// trailer.
//
// A body sent with UNSIGNED-PAYLOAD (S3) is never sent chunked, as S3
// refuses chunked uploads: when its length is unknown, it is measured (an
// io.Seeker) or read (GetBody, or buffered up to MaxBufferedBody) and then
// signed with its hash, which costs nothing more once it has been read.
func (t *Transport) payload(r *http.Request, rt *route, presign bool) (payloadPlan, error) {
	pol := rt.policy
	unsignedOK := pol.Payload == PayloadUnsigned || pol.UnsignedStreaming
	unsigned := pol.Payload == PayloadUnsigned || presign && unsignedOK
	if r.Body == nil || r.Body == http.NoBody {
		if r.ContentLength > 0 {
			return payloadPlan{}, invalid(ErrInvalidRequest, "ContentLength is %d but Body is nil", r.ContentLength)
		}
		if unsigned {
			return payloadPlan{hash: unsignedPayload}, nil
		}
		return payloadPlan{hash: emptyPayloadHash}, nil
	}
	if unsignedOK || pol.Chunked {
		r.TransferEncoding = nil // the length is known below, or the request refused
	}
	if r.Header.Get(headerContentSHA256) == streamingUnsigned {
		if rt.sigv4a {
			return payloadPlan{}, invalid(ErrInvalidRequest, "X-Amz-Content-Sha256 is %s, an aws-chunked body, which kivuli signs with SigV4 only, and this host takes SigV4a: send the body whole", streamingUnsigned)
		}
		return payloadPlan{hash: streamingUnsigned}, preEncoded(r, unsignedOK && !presign)
	}
	var alg ChecksumAlgorithm
	if !presign {
		var err error
		if alg, err = checksumWanted(r, rt); err != nil {
			return payloadPlan{}, err
		}
	}
	known := r.ContentLength > 0
	if plan := chunking(r, pol, presign, alg); plan != nil {
		if !rt.sigv4a {
			prepareChunked(r, plan)
			return payloadPlan{hash: plan.payloadHash(), chunked: plan}, nil
		}
		alg = v4aChecksum(r, alg)
	}
	if unsigned && alg == "" && (known || seekLength(r)) {
		return payloadPlan{hash: unsignedPayload}, nil
	}
	sum := newChecksumSetter(r, alg)
	if r.GetBody != nil {
		return hashGetBody(r, sum)
	}
	if pp, ok, err := hashSeeker(r, sum); ok {
		return pp, err
	}
	if pol.UnsignedStreaming && known && alg == "" {
		return payloadPlan{hash: unsignedPayload}, nil
	}
	return t.buffer(r, unsignedOK, sum)
}

// chunking returns how r, an S3 upload, is sent aws-chunked, or nil when
// it is not: with signed chunks when the policy says so (Chunked); and a
// body of known length that is to carry a checksum and either can be read
// only once or is not to be hashed (Payload: PayloadUnsigned), with the
// checksum in the trailer, as the SDKs send it: its chunks unsigned over
// TLS (the trailer guards the body, TLS the trailer), signed in clear.
// Other bodies are hashed, the checksum computed in the same pass.
func chunking(r *http.Request, pol Policy, presign bool, alg ChecksumAlgorithm) *chunkPlan {
	if presign || !pol.Chunked && alg == "" || !s3Upload(r, signedHost(r)) {
		return nil
	}
	_, seeker := r.Body.(io.Seeker)
	oneShot := r.GetBody == nil && !seeker
	if !pol.Chunked && !oneShot && pol.Payload != PayloadUnsigned || r.ContentLength <= 0 && !seekLength(r) {
		return nil
	}
	tls := strings.EqualFold(r.URL.Scheme, "https") || strings.EqualFold(r.URL.Scheme, "wss")
	return &chunkPlan{length: r.ContentLength, checksum: alg, unsigned: !pol.Chunked && tls}
}

// v4aChecksum returns the checksum that a body which aws-chunked would
// have carried gets with SigV4a, which cannot sign aws-chunked (smithy's
// signer signs a payload hash or UNSIGNED-PAYLOAD only): one that can be
// read twice is hashed, its checksum in a header; one that can be read
// only once keeps the checksum asked for (x-amz-sdk-checksum-algorithm)
// and is buffered to compute it, and else goes without the policy's, as
// UNSIGNED-PAYLOAD, streamed as to s3-object-lambda.
func v4aChecksum(r *http.Request, alg ChecksumAlgorithm) ChecksumAlgorithm {
	_, seeker := r.Body.(io.Seeker)
	if r.GetBody != nil || seeker || r.Header.Get(headerChecksumAlgorithm) != "" {
		return alg
	}
	return ""
}

// preEncoded checks a body that comes aws-chunked already, its chunks
// unsigned and its checksum in the trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// as an SDK sends an upload over TLS, to a proxy say): it is signed as it
// is and sent untouched, the trailer guarding it, so it may go only over
// TLS, to a service that takes unsigned payloads (S3), with its framing's
// headers. Its encoded length may be unknown: botocore sends such a body
// with Transfer-Encoding: chunked, which S3 takes.
func preEncoded(r *http.Request, allowed bool) error {
	switch {
	case !allowed:
		return invalid(ErrInvalidRequest, "X-Amz-Content-Sha256 is %s, which only S3 takes, and never presigned", streamingUnsigned)
	case !strings.EqualFold(r.URL.Scheme, "https"):
		return invalid(ErrPlaintext, "an aws-chunked body with unsigned chunks (%s) is guarded by its checksum trailer only: it goes over https alone", streamingUnsigned)
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody || r.Header.Get(headerDecodedLength) == "" || r.Header.Get(headerTrailer) == "" ||
		!strings.Contains(strings.ToLower(r.Header.Get("Content-Encoding")), "aws-chunked"):
		return invalid(ErrInvalidRequest, "an aws-chunked body (%s) needs a body, Content-Encoding: aws-chunked, %s and %s", streamingUnsigned, headerDecodedLength, headerTrailer)
	}
	return nil
}

// checksumSetter computes a flexible checksum of a body and sets it as
// the request's header; a nil one does nothing.
type checksumSetter struct {
	r   *http.Request
	alg ChecksumAlgorithm
	h   hash.Hash
}

func newChecksumSetter(r *http.Request, alg ChecksumAlgorithm) *checksumSetter {
	if alg == "" {
		return nil
	}
	return &checksumSetter{r: r, alg: alg, h: alg.New()}
}

// writer is the hash to feed the body to, besides the SHA-256.
func (c *checksumSetter) writer() hash.Hash {
	if c == nil {
		return nil
	}
	return c.h
}

// set sets the checksum's headers.
func (c *checksumSetter) set() {
	if c != nil {
		c.r.Header.Set(headerChecksumAlgorithm, string(c.alg))
		c.r.Header.Set(c.alg.header(), checksumValue(c.h))
	}
}

// hashGetBody hashes the body that r.GetBody returns.
func hashGetBody(r *http.Request, sum *checksumSetter) (payloadPlan, error) {
	body, err := r.GetBody()
	if err != nil {
		return payloadPlan{}, invalidRequest("GetBody failed", err)
	}
	if body == nil {
		return payloadPlan{}, invalidRequest("GetBody returned a nil body", nil)
	}
	var n int64
	var hash string
	closed, err := whileReading(r.Context(), body, func() (err error) {
		n, hash, err = hashReader(body, sum.writer())
		return err
	})
	if !closed {
		body.Close()
	}
	if err != nil {
		return payloadPlan{}, invalidRequest("reading the body from GetBody", err)
	}
	sum.set()
	return payloadPlan{hash: hash}, checkLength(r, n)
}

// hashSeeker hashes a body that is an io.Seeker from where it stands, and
// seeks back; ok is false when it is not one, or cannot tell where it
// stands. The plan's consumed reports that it closed the body.
func hashSeeker(r *http.Request, sum *checksumSetter) (pp payloadPlan, ok bool, err error) {
	s, isSeeker := r.Body.(io.Seeker)
	if !isSeeker {
		return pp, false, nil
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return pp, false, nil
	}
	var n int64
	pp.consumed, err = whileReading(r.Context(), r.Body, func() (err error) {
		n, pp.hash, err = hashReader(r.Body, sum.writer())
		return err
	})
	if err == nil {
		_, err = s.Seek(start, io.SeekStart)
	}
	if err != nil {
		return pp, true, invalidRequest("hashing a seekable body", err)
	}
	sum.set()
	return payloadPlan{hash: pp.hash}, true, checkLength(r, n)
}

// seekLength sets the ContentLength of a body that is an io.Seeker from
// what is left of it, reporting whether it could.
func seekLength(r *http.Request) bool {
	s, ok := r.Body.(io.Seeker)
	if !ok {
		return false
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return false
	}
	end, err := s.Seek(0, io.SeekEnd)
	if _, err2 := s.Seek(start, io.SeekStart); err != nil || err2 != nil {
		return false
	}
	return checkLength(r, end-start) == nil
}

// bufferLimit is MaxBufferedBody, or its default; negative means none.
func (t *Transport) bufferLimit() int64 {
	if t.MaxBufferedBody == 0 {
		return defaultMaxBufferedBody
	}
	return t.MaxBufferedBody
}

// readLimited reads up to limit+1 bytes of body, the rest of it or an
// error ending it, within ctx; closed reports that ctx ended first and
// the body was closed, so that a Read blocked on a stalled body returned.
func readLimited(ctx context.Context, body io.ReadCloser, limit int64) (buf []byte, closed bool, err error) {
	closed, err = whileReading(ctx, body, func() (err error) {
		buf, err = io.ReadAll(io.LimitReader(body, limit+1))
		return err
	})
	return buf, closed, err
}

// whileReading calls read, which reads body, and closes body if ctx ends
// first, so that a Read blocked on a body that stalls returns, as net/http
// itself gives up on a request whose context ends; closed reports that it
// did, and err is then the context's error.
func whileReading(ctx context.Context, body io.Closer, read func() error) (closed bool, err error) {
	if ctx.Done() == nil {
		return false, read()
	}
	stop := context.AfterFunc(ctx, func() { body.Close() })
	err = read()
	if !stop() {
		return true, ctx.Err()
	}
	return false, err
}

// buffer reads a body that can be read only once into memory, up to
// MaxBufferedBody, to hash it, and makes the buffer the body.
func (t *Transport) buffer(r *http.Request, s3 bool, sum *checksumSetter) (payloadPlan, error) {
	limit := t.bufferLimit()
	tooLarge := func(limit int64) error {
		if s3 && r.ContentLength <= 0 {
			return invalid(ErrBodyTooLarge, "its length is unknown, it can be read only once (no GetBody, not an io.Seeker), and it is over the limit of %d bytes (Transport.MaxBufferedBody); S3 refuses chunked uploads: set Request.ContentLength, or use a multipart upload", limit)
		}
		return invalid(ErrBodyTooLarge, "it can be read only once (no GetBody, not an io.Seeker) and is over the limit of %d bytes (Transport.MaxBufferedBody)", limit)
	}
	if limit < 0 || r.ContentLength > limit {
		return payloadPlan{}, tooLarge(max(limit, 0))
	}
	orig := r.Body
	buf, closed, err := readLimited(r.Context(), orig, limit)
	if !closed {
		orig.Close()
	}
	if err != nil {
		return payloadPlan{consumed: true}, invalidRequest("reading the body", err)
	}
	if int64(len(buf)) > limit {
		return payloadPlan{consumed: true}, tooLarge(limit)
	}
	if r.ContentLength > 0 && int64(len(buf)) != r.ContentLength {
		return payloadPlan{consumed: true}, invalid(ErrInvalidRequest, "ContentLength is %d but the body has %d bytes", r.ContentLength, len(buf))
	}
	// The buffer becomes the body and is never reused: net/http may read it
	// after RoundTrip returns (golang/go#51907).
	r.ContentLength = int64(len(buf))
	r.Body = http.NoBody
	r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	if len(buf) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	if w := sum.writer(); w != nil {
		w.Write(buf)
		sum.set()
	}
	return payloadPlan{hash: sha256Hex(buf), consumed: true}, nil
}

// checkLength reconciles ContentLength with the n bytes hashed: a known
// length must match, an unknown one becomes n, so that a body of known
// length is never sent chunked.
func checkLength(r *http.Request, n int64) error {
	switch {
	case r.ContentLength > 0 && r.ContentLength != n:
		return invalid(ErrInvalidRequest, "ContentLength is %d but the body has %d bytes", r.ContentLength, n)
	case r.ContentLength <= 0 && n > 0:
		r.ContentLength = n
	case n == 0:
		r.ContentLength = 0
	}
	return nil
}

// hashing is the scratch space of hashReader: a copy buffer and a SHA-256
// state. Neither leaves the function, so they are pooled; body buffers
// never are.
type hashing struct {
	buf [64 << 10]byte
	h   hash.Hash
}

var hashings = sync.Pool{New: func() any { return &hashing{h: sha256.New()} }}

// hashReader returns the length and hex SHA-256 of what r yields, which
// also goes to also when it is not nil (a flexible checksum).
func hashReader(r io.Reader, also hash.Hash) (int64, string, error) {
	hs := hashings.Get().(*hashing)
	defer hashings.Put(hs)
	hs.h.Reset()
	var w io.Writer = hs.h
	if also != nil {
		w = io.MultiWriter(hs.h, also)
	}
	n, err := io.CopyBuffer(w, r, hs.buf[:])
	if err != nil {
		return n, "", err
	}
	var sum [sha256.Size]byte
	return n, hexString(hs.h.Sum(sum[:0])), nil
}

// hexString is hex.EncodeToString in one allocation instead of two.
func hexString(sum []byte) string {
	var dst [2 * sha256.Size]byte
	return string(dst[:hex.Encode(dst[:], sum)])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hexString(sum[:])
}
