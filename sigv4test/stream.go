package sigv4test

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"math"
	"net/http"
)

// Stream is the body of a request whose head [Verifier.VerifyStream]
// checked: a reader of the body's data (decoded, for aws-chunked) that
// checks the rest as it is read, in O(chunk) memory.
//
// Read returns the data, and io.EOF only once everything is checked; at
// the first problem it returns an *[Error] (S3's codes, as
// [Verifier.Verify] reports them), and again on every later call. A
// signed aws-chunked chunk's data is handed on only once its signature
// holds, so the data read before an error is the data of the chunks that
// held; an unsigned chunk's data goes on as it comes. A plain body's hash
// (and the signature, when it covers that hash), and its checksums, in
// headers or an aws-chunked trailer, are known only at its end.
//
// Read and Record must not be called at the same time from different
// goroutines.
type Stream struct {
	c       *check
	rec     Record
	body    io.ReadCloser // the request's body as received
	src     countReader
	data    io.Reader    // the data: src, or its aws-chunked decoder
	sha     hash.Hash    // the plain body's SHA-256, when a check needs it
	wantLen int64        // a plain body's Content-Length, checked at its end; -1 not
	err     error        // io.EOF or the *Error, once known
	dec     *chunkReader // nil for a plain body
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// VerifyStream checks r's head at once, as [Verifier.Verify] does: the
// signature over the canonical request with the payload hash the request
// states (a hex SHA-256, UNSIGNED-PAYLOAD, or an aws-chunked STREAMING-*
// mode), the scope, date, token and headers. It leaves the body to the
// returned [Stream], and makes it r.Body, so that a handler reads the
// checked data; for aws-chunked, r.ContentLength becomes the decoded
// length and Content-Encoding loses aws-chunked, as S3 keeps them.
//
// What depends on the body is checked as it is read: for aws-chunked,
// each chunk's signature, chained from the previous one, the final chunk,
// the decoded length, the trailer's signature and checksum; for a hex
// SHA-256, the body's hash, at its end; for UNSIGNED-PAYLOAD, its length
// against Content-Length; for x-amz-checksum-* headers, their sums, at
// its end. A request whose signature covers the hash of the body itself
// (no X-Amz-Content-Sha256) has its signature checked at the body's end.
//
// The Stream is never nil. When the head is rejected, err is the *[Error]
// (Read returns it too), r is left as it was, and Stream.Record says
// why. [Verifier.MaxBody] bounds the signed aws-chunked chunk held at
// once, not the body.
func (v *Verifier) VerifyStream(r *http.Request) (*Stream, error) {
	s := v.newStream(r, r.Body, v.maxBody())
	if s.err != nil {
		return s, s.err
	}
	s.wantLen = r.ContentLength
	if s.dec != nil {
		decodedHead(r, s.c.decodedLen)
	}
	r.Body, r.GetBody = s, nil
	return s, nil
}

// newStream checks r's head, and readies the reading of body; an
// aws-chunked chunk may hold maxChunk bytes.
func (v *Verifier) newStream(r *http.Request, body io.ReadCloser, maxChunk int64) *Stream {
	s := &Stream{rec: wireRecord(r), body: body, wantLen: -1}
	if body == nil {
		s.body = http.NoBody
	}
	s.src.r = s.body
	s.c = &check{v: v, r: r, rec: &s.rec}
	if e := s.c.checkHead(); e != nil {
		s.fail(e)
		return s
	}
	s.data = &s.src
	if s.c.chunkMode != "" {
		s.dec = newChunkReader(s.c, &s.src, maxChunk)
		s.data = s.dec
	} else if s.c.sigLater || s.c.hashLater {
		s.sha = sha256.New()
	}
	return s
}

// wireRecord is the Record of what r shows before any check.
func wireRecord(r *http.Request) Record {
	rec := Record{Method: requestMethod(r), Path: wirePath(r), RawQuery: redactQuery(wireQuery(r)), Chunked: isChunked(r)}
	_, rec.ContentSHA256 = headerValues(r, headerSHA256)
	return rec
}

// Read reads the body's data, checking it; see [Stream].
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.data.Read(p)
	switch {
	case s.dec == nil:
		s.plain(p[:n], err)
	case err == io.EOF:
		s.fail(nil)
	case err != nil:
		s.fail(asError(err))
	}
	if s.err != nil && n > 0 {
		return n, nil // the verdict on the next call
	}
	return n, s.err
}

// plain takes p, the next bytes of a plain body, into its sums, and at its
// end (err io.EOF) checks them.
func (s *Stream) plain(p []byte, err error) {
	if s.sha != nil {
		s.sha.Write(p)
	}
	s.c.writeSums(p)
	switch {
	case err == io.EOF && s.wantLen > 0 && s.src.n != s.wantLen:
		s.fail(newErr("IncompleteBody", "The request body has %d bytes; Content-Length says %d.", s.src.n, s.wantLen))
	case err == io.EOF:
		var bodyHash string
		if s.sha != nil {
			bodyHash = hex.EncodeToString(s.sha.Sum(nil))
		}
		s.fail(s.c.checkEnd(bodyHash))
	case err != nil:
		s.fail(asError(err))
	}
}

// asError is a failed read as the Stream reports it: the decoder's
// *Error, or IncompleteBody for the body's own read error.
func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return newErr("IncompleteBody", "The request body could not be read: %v", err)
}

// fail records the verdict: e, or, when nil, that the body checked whole.
func (s *Stream) fail(e *Error) {
	if e == nil {
		s.err = io.EOF
		return
	}
	s.err, s.rec.Err = e, e
}

// Record returns what the verification learned: after Read returned
// io.EOF or an error, or VerifyStream an error, it is final, with the
// fields [Verifier.Verify] fills (Err nil when everything held); before,
// it holds what the head showed and the body so far.
func (s *Stream) Record() Record {
	rec := s.rec
	rec.BodyLen = s.src.n
	return rec
}

// Close closes the request's body.
func (s *Stream) Close() error { return s.body.Close() }

func (v *Verifier) maxBody() int64 {
	if v.MaxBody > 0 {
		return v.MaxBody
	}
	return defaultMaxBody
}

// noChunkLimit is the chunk limit of Verify, which holds the whole body.
const noChunkLimit = math.MaxInt64
