package sigv4test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// S3's aws-chunked uploads, read as S3 reads them, with code of this
// package's own, one chunk at a time: the framing decoded, each chunk's
// signature checked against the one before (the first against the
// request's) before its data is handed on, the final empty chunk, the
// decoded length, the trailer's signature and its checksum.

const (
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsigned      = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// minChunk is the smallest chunk S3 takes but for the last two.
	minChunk = 8 << 10
	// maxLine is the longest line of framing (a chunk's header, a
	// trailer's line) read; S3's are under 100 bytes.
	maxLine = 4 << 10
)

var errLongLine = errors.New("line too long")

// startChunked checks the head of an aws-chunked request of the given
// payload mode; its body is then decoded as it is read. read says the
// body was read plain already (the signature covered its hash), too late.
func (c *check) startChunked(mode string, read bool) *Error {
	if read || c.hashLater {
		return newErr("InvalidRequest", "An aws-chunked payload (%s) must be the only payload hash the request states, and the one its signature covers.", mode)
	}
	if !strings.Contains(strings.ToLower(c.r.Header.Get("Content-Encoding")), "aws-chunked") {
		return newErr("InvalidArgument", "An aws-chunked payload (%s) needs Content-Encoding: aws-chunked.", mode)
	}
	decodedLen, err := strconv.ParseInt(c.r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || decodedLen < 0 {
		return newErr("MissingContentLength", "An aws-chunked payload needs x-amz-decoded-content-length: the length of the decoded body.")
	}
	c.chunkMode, c.decodedLen = mode, decodedLen
	return nil
}

// chunkReader decodes an aws-chunked body, one chunk at a time: a chunk is
// read whole and checked before its data is handed on, so it holds one
// chunk at most.
type chunkReader struct {
	c        *check
	br       *bufio.Reader
	signed   bool
	key      []byte // the SigV4 signing key, derived once
	trailer  string // the trailer's header (x-amz-trailer), lowercase
	sum      hash.Hash
	prev     string // the signature the next one chains from
	n        int    // chunks read, the final one included
	lastSize int64
	decoded  int64
	maxChunk int64
	chunk    bytes.Buffer // the signed chunk being handed on
	size     int64        // the size of the chunk read last
	left     int64        // what is left to pass on of an unsigned chunk
}

func newChunkReader(c *check, body io.Reader, maxChunk int64) *chunkReader {
	a := c.a
	d := &chunkReader{c: c, br: bufio.NewReaderSize(body, 64<<10), signed: c.chunkMode != streamingUnsigned,
		prev: a.signature, lastSize: -1, maxChunk: maxChunk}
	if d.signed {
		d.key = signingKey(c.creds.SecretAccessKey, a.scopeDate, a.region, a.service)
	}
	if c.chunkMode != streamingSigned {
		d.trailer = strings.ToLower(strings.TrimSpace(c.r.Header.Get("X-Amz-Trailer")))
		if alg, ok := strings.CutPrefix(d.trailer, "x-amz-checksum-"); ok {
			d.sum = checksumHash(alg)
		}
	}
	return d
}

// Read hands on the data of the chunk read last, and reads the next one
// when it is spent; it returns io.EOF after the final chunk and every
// check of the body's end, and a *Error at the first problem. An unsigned
// chunk, which has nothing to check before its data goes on, is not held
// but passed on as it is read.
func (d *chunkReader) Read(p []byte) (int, error) {
	for d.chunk.Len() == 0 && d.left == 0 {
		final, e := d.next()
		if e != nil {
			return 0, e
		}
		if final {
			return 0, io.EOF
		}
	}
	if d.left == 0 {
		return d.chunk.Read(p)
	}
	n, err := d.br.Read(p[:min(int64(len(p)), d.left)])
	d.left -= int64(n)
	if d.sum != nil {
		d.sum.Write(p[:n])
	}
	switch {
	case n == 0 && err != nil:
		return 0, newErr("IncompleteBody", "The aws-chunked body ends inside a chunk of %d bytes.", d.size)
	case d.left == 0:
		if e := d.chunkEnd(); e != nil {
			return n, e
		}
	}
	return n, nil
}

// line returns the next line of the framing, without its CRLF (a bare LF
// is part of the line).
func (d *chunkReader) line() (string, error) {
	var l []byte
	for {
		frag, err := d.br.ReadSlice('\n')
		l = append(l, frag...)
		switch {
		case len(l) > maxLine+2:
			return "", errLongLine
		case err == nil && bytes.HasSuffix(l, []byte("\r\n")):
			return string(l[:len(l)-2]), nil
		case err != nil && err != bufio.ErrBufferFull:
			return "", err
		}
	}
}

// next reads the next chunk's header, and a signed chunk whole, which
// it checks; after the final, empty chunk, it checks the body's end.
func (d *chunkReader) next() (final bool, e *Error) {
	head, err := d.line()
	switch {
	case err == errLongLine:
		return false, newErr("InvalidChunkSizeError", "A chunk's header is longer than %d bytes.", maxLine)
	case err != nil:
		return false, newErr("IncompleteBody", "The aws-chunked body ends inside a chunk's header.")
	}
	size, sig, e := d.parseHead(head)
	if e != nil {
		return false, e
	}
	d.size = size
	if d.signed {
		if e := d.readSigned(sig); e != nil {
			return false, e
		}
	} else {
		d.n++
		d.c.rec.Chunks = d.n
	}
	if d.lastSize >= 0 && d.lastSize < minChunk && size > 0 {
		d.chunk.Reset()
		return false, newErr("InvalidChunkSizeError", "Only the last chunk is allowed to have a size less than 8192 bytes.")
	}
	d.decoded += size
	switch {
	case size == 0:
		return true, d.end()
	case !d.signed:
		d.left = size
		return false, nil
	}
	if d.sum != nil {
		d.sum.Write(d.chunk.Bytes())
	}
	if e := d.chunkEnd(); e != nil {
		d.chunk.Reset()
		return false, e
	}
	return false, nil
}

// readSigned reads a signed chunk of d.size bytes whole, and checks its
// signature.
func (d *chunkReader) readSigned(sig string) *Error {
	if d.size > d.maxChunk {
		return newErr("RequestEntityTooLarge", "A chunk of %d bytes is larger than the %d bytes this verifier holds to check it.", d.size, d.maxChunk)
	}
	d.chunk.Reset()
	if n, _ := io.CopyN(&d.chunk, d.br, d.size); n < d.size {
		return newErr("IncompleteBody", "The aws-chunked body ends inside a chunk of %d bytes.", d.size)
	}
	d.n++
	if e := d.checkChunk(d.chunk.Bytes(), sig); e != nil {
		d.chunk.Reset()
		return e
	}
	d.c.rec.Chunks = d.n
	return nil
}

// chunkEnd checks the CRLF that ends a chunk's data.
func (d *chunkReader) chunkEnd() *Error {
	if b, err := d.br.Peek(2); err != nil || string(b) != "\r\n" {
		return newErr("IncompleteBody", "A chunk's data is not followed by CRLF.")
	}
	d.br.Discard(2)
	d.lastSize = d.size
	return nil
}

// parseHead reads "hex-size;chunk-signature=SIG" (signed) or "hex-size".
func (d *chunkReader) parseHead(head string) (size int64, sig string, e *Error) {
	hexSize, ext, hasExt := strings.Cut(head, ";")
	size, err := strconv.ParseInt(hexSize, 16, 64)
	if err != nil || size < 0 || hexSize == "" {
		return 0, "", newErr("InvalidChunkSizeError", "The chunk header %q has no valid hexadecimal size.", clipText(head))
	}
	if !d.signed {
		return size, "", nil
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !hasExt || !ok || len(sig) != 64 {
		return 0, "", newErr("IncompleteSignature", "The chunk header %q has no chunk-signature.", clipText(head))
	}
	return size, sig, nil
}

// checkChunk checks a chunk's signature, chained from the previous one.
// A rejection shows the string to sign with that signature REDACTED, as
// an Error holds no signature.
func (d *chunkReader) checkChunk(chunk []byte, sig string) *Error {
	a := d.c.a
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + a.amzDate + "\n" + a.scope() + "\n" + d.prev + "\n" + emptySHA256 + "\n" + hexSHA256(chunk)
	if hex.EncodeToString(hmacSHA256(d.key, sts)) != sig {
		return &Error{Code: "SignatureDoesNotMatch", Message: "The chunk signature we calculated does not match the signature you provided (chunk " + strconv.Itoa(d.n) + ").", StringToSign: strings.Replace(sts, d.prev, redacted, 1)}
	}
	d.prev = sig
	return nil
}

// end checks what follows the final chunk: the decoded length, then a
// blank line, or the trailer.
func (d *chunkReader) end() *Error {
	if d.decoded != d.c.decodedLen {
		return newErr("IncompleteBody", "The decoded body has %d bytes; x-amz-decoded-content-length says %d.", d.decoded, d.c.decodedLen)
	}
	if d.c.chunkMode != streamingSigned {
		return d.readTrailer()
	}
	var b [3]byte
	if n, _ := io.ReadFull(d.br, b[:]); n != 2 || string(b[:2]) != "\r\n" {
		return newErr("IncompleteSignature", "The aws-chunked body does not end with the final chunk and a blank line.")
	}
	return nil
}

// readTrailer reads the trailer after the final chunk: the checksum named
// by x-amz-trailer and, when signed, its signature; the checksum must be
// the data's.
func (d *chunkReader) readTrailer() *Error {
	name := d.trailer
	if d.sum == nil {
		return newErr("InvalidArgument", "x-amz-trailer %q names no checksum S3 takes.", name)
	}
	var lines, value string
	signed := false
	for {
		l, err := d.line()
		if err != nil {
			return newErr("MalformedTrailerError", "The trailer ends without a blank line.")
		}
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		switch strings.ToLower(k) {
		case "x-amz-trailer-signature":
			if !d.signed {
				return newErr("MalformedTrailerError", "An unsigned trailer carries a signature.")
			}
			if value == "" {
				return newErr("MalformedTrailerError", "The trailer's signature comes before %s.", name)
			}
			if e := d.checkTrailer(lines, v); e != nil {
				return e
			}
			signed = true
		case name:
			value = v
			lines += strings.ToLower(k) + ":" + v + "\n"
		default:
			return newErr("MalformedTrailerError", "The trailer holds %q, which x-amz-trailer does not name.", clipText(k))
		}
	}
	_, err := d.br.ReadByte()
	switch {
	case err != io.EOF:
		return newErr("IncompleteBody", "Bytes follow the trailer.")
	case value == "":
		return newErr("MalformedTrailerError", "The trailer lacks %s.", name)
	case d.signed && !signed:
		return newErr("IncompleteSignature", "The trailer lacks x-amz-trailer-signature.")
	}
	alg := strings.TrimPrefix(name, "x-amz-checksum-")
	d.c.rec.Checksum = strings.ToUpper(alg)
	return compareChecksum(alg, value, d.sum)
}

// checkTrailer checks the trailer's signature over its lines.
func (d *chunkReader) checkTrailer(lines, sig string) *Error {
	a := d.c.a
	sum := sha256.Sum256([]byte(lines))
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + a.amzDate + "\n" + a.scope() + "\n" + d.prev + "\n" + hex.EncodeToString(sum[:])
	if !hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(d.key, sts))), []byte(sig)) {
		return &Error{Code: "SignatureDoesNotMatch", Message: "The trailer signature we calculated does not match the signature you provided.", StringToSign: strings.Replace(sts, d.prev, redacted, 1)}
	}
	return nil
}

// decodedHead makes r's head that of the decoded body, as S3 keeps it:
// its length, and Content-Encoding without aws-chunked.
func decodedHead(r *http.Request, n int64) {
	r.ContentLength = n
	var rest []string
	for _, v := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "aws-chunked") {
			rest = append(rest, v)
		}
	}
	if len(rest) == 0 {
		r.Header.Del("Content-Encoding")
	} else {
		r.Header.Set("Content-Encoding", strings.Join(rest, ","))
	}
}

// clipText is a client's text as a message quotes it: at most 64 bytes.
func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
