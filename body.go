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
	"sync"
)

// defaultMaxBufferedBody is how much of a body that can be read only once
// is buffered to hash it, unless [Transport.MaxBufferedBody] says otherwise.
const defaultMaxBufferedBody = 16 << 20

// payload returns the payload hash of r (a clone the caller owns) and, when
// the body had to be buffered, replaces r's body with the buffer; consumed
// reports that it then closed the original body.
//
// A body sent with UNSIGNED-PAYLOAD (S3) is never sent chunked, as S3
// refuses chunked uploads: when its length is unknown, it is measured (an
// io.Seeker) or read (GetBody, or buffered up to MaxBufferedBody) and then
// signed with its hash, which costs nothing more once it has been read.
func (t *Transport) payload(r *http.Request, pol Policy, presign bool) (hash string, consumed bool, err error) {
	unsignedOK := pol.Payload == PayloadUnsigned || pol.UnsignedStreaming
	unsigned := pol.Payload == PayloadUnsigned || presign && unsignedOK
	if r.Body == nil || r.Body == http.NoBody {
		if r.ContentLength > 0 {
			return "", false, invalid(ErrInvalidRequest, "ContentLength is %d but Body is nil", r.ContentLength)
		}
		if unsigned {
			return unsignedPayload, false, nil
		}
		return emptyPayloadHash, false, nil
	}
	if unsignedOK {
		r.TransferEncoding = nil // the length is known below, or the request refused
	}
	known := r.ContentLength > 0
	if unsigned && (known || seekLength(r)) {
		return unsignedPayload, false, nil
	}
	if r.GetBody != nil {
		return hashGetBody(r)
	}
	if hash, ok, consumed, err := hashSeeker(r); ok {
		return hash, consumed, err
	}
	if pol.UnsignedStreaming && known {
		return unsignedPayload, false, nil
	}
	return t.buffer(r, unsignedOK)
}

// hashGetBody hashes the body that r.GetBody returns.
func hashGetBody(r *http.Request) (string, bool, error) {
	body, err := r.GetBody()
	if err != nil {
		return "", false, invalidRequest("GetBody failed", err)
	}
	if body == nil {
		return "", false, invalidRequest("GetBody returned a nil body", nil)
	}
	var n int64
	var hash string
	closed, err := whileReading(r.Context(), body, func() (err error) {
		n, hash, err = hashReader(body)
		return err
	})
	if !closed {
		body.Close()
	}
	if err != nil {
		return "", false, invalidRequest("reading the body from GetBody", err)
	}
	return hash, false, checkLength(r, n)
}

// hashSeeker hashes a body that is an io.Seeker from where it stands, and
// seeks back; ok is false when it is not one, or cannot tell where it
// stands. consumed reports that it closed the body.
func hashSeeker(r *http.Request) (hash string, ok, consumed bool, err error) {
	s, isSeeker := r.Body.(io.Seeker)
	if !isSeeker {
		return "", false, false, nil
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", false, false, nil
	}
	var n int64
	consumed, err = whileReading(r.Context(), r.Body, func() (err error) {
		n, hash, err = hashReader(r.Body)
		return err
	})
	if err == nil {
		_, err = s.Seek(start, io.SeekStart)
	}
	if err != nil {
		return "", true, consumed, invalidRequest("hashing a seekable body", err)
	}
	return hash, true, false, checkLength(r, n)
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
func (t *Transport) buffer(r *http.Request, s3 bool) (string, bool, error) {
	limit := t.bufferLimit()
	tooLarge := func(limit int64) error {
		if s3 && r.ContentLength <= 0 {
			return invalid(ErrBodyTooLarge, "its length is unknown, it can be read only once (no GetBody, not an io.Seeker), and it is over the limit of %d bytes (Transport.MaxBufferedBody); S3 refuses chunked uploads: set Request.ContentLength, or use a multipart upload", limit)
		}
		return invalid(ErrBodyTooLarge, "it can be read only once (no GetBody, not an io.Seeker) and is over the limit of %d bytes (Transport.MaxBufferedBody)", limit)
	}
	if limit < 0 || r.ContentLength > limit {
		return "", false, tooLarge(max(limit, 0))
	}
	orig := r.Body
	buf, closed, err := readLimited(r.Context(), orig, limit)
	if !closed {
		orig.Close()
	}
	if err != nil {
		return "", true, invalidRequest("reading the body", err)
	}
	if int64(len(buf)) > limit {
		return "", true, tooLarge(limit)
	}
	if r.ContentLength > 0 && int64(len(buf)) != r.ContentLength {
		return "", true, invalid(ErrInvalidRequest, "ContentLength is %d but the body has %d bytes", r.ContentLength, len(buf))
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
	return sha256Hex(buf), true, nil
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

// hashReader returns the length and hex SHA-256 of what r yields.
func hashReader(r io.Reader) (int64, string, error) {
	hs := hashings.Get().(*hashing)
	defer hashings.Put(hs)
	hs.h.Reset()
	n, err := io.CopyBuffer(hs.h, r, hs.buf[:])
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
