package sigv4test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strconv"
	"strings"
)

// S3's aws-chunked uploads and flexible checksums, read as S3 reads them,
// with code of this package's own: the framing decoded, each chunk's
// signature checked against the one before (the first against the
// request's), the final empty chunk, the trailer's signature, and every
// checksum (trailer or header) against the bytes received.

const (
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsigned      = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// minChunk is the smallest chunk S3 takes but for the last two.
	minChunk = 8 << 10
)

// checksumHash returns a hash of S3's algorithm name (crc32, crc32c,
// crc64nvme, sha1, sha256; any case), or nil.
func checksumHash(name string) hash.Hash {
	switch strings.ToLower(name) {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		// The NVMe polynomial 0xad93d23594c93659, bit-reversed as
		// hash/crc64 takes it.
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

// decodeChunked decodes c.body, an aws-chunked body of the given payload
// mode, checking what S3 checks, and makes the decoded bytes the body.
func (c *check) decodeChunked(mode string) *Error {
	if !strings.Contains(strings.ToLower(c.r.Header.Get("Content-Encoding")), "aws-chunked") {
		return newErr("InvalidArgument", "An aws-chunked payload (%s) needs Content-Encoding: aws-chunked.", mode)
	}
	decodedLen, err := strconv.ParseInt(c.r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || decodedLen < 0 {
		return newErr("MissingContentLength", "An aws-chunked payload needs x-amz-decoded-content-length: the length of the decoded body.")
	}
	d := &chunkDecoder{c: c, in: c.body, signed: mode != streamingUnsigned, prev: c.a.signature}
	data, e := d.chunks()
	if e != nil {
		return e
	}
	if int64(len(data)) != decodedLen {
		return newErr("IncompleteBody", "The decoded body has %d bytes; x-amz-decoded-content-length says %d.", len(data), decodedLen)
	}
	if mode != streamingSigned {
		if e := d.trailer(data); e != nil {
			return e
		}
	} else if !bytes.Equal(d.in, []byte("\r\n")) {
		return newErr("IncompleteSignature", "The aws-chunked body does not end with the final chunk and a blank line.")
	}
	c.rec.Chunks = d.n
	c.setBody(data)
	return nil
}

// chunkDecoder walks the framing of an aws-chunked body.
type chunkDecoder struct {
	c      *check
	in     []byte // what is left of the encoded body
	signed bool
	prev   string // the signature the next one chains from
	n      int    // chunks read, the final one included
}

// line returns the next line of the framing, without its CRLF.
func (d *chunkDecoder) line() (string, bool) {
	i := bytes.Index(d.in, []byte("\r\n"))
	if i < 0 {
		return "", false
	}
	l := string(d.in[:i])
	d.in = d.in[i+2:]
	return l, true
}

// chunks decodes the chunks up to the final, empty one.
func (d *chunkDecoder) chunks() ([]byte, *Error) {
	var data []byte
	lastSize := int64(-1)
	for {
		head, ok := d.line()
		if !ok {
			return nil, newErr("IncompleteBody", "The aws-chunked body ends inside a chunk's header.")
		}
		size, sig, e := d.parseHead(head)
		if e != nil {
			return nil, e
		}
		if int64(len(d.in)) < size {
			return nil, newErr("IncompleteBody", "The aws-chunked body ends inside a chunk of %d bytes.", size)
		}
		chunk := d.in[:size]
		d.in = d.in[size:]
		d.n++
		if d.signed {
			if e := d.checkChunk(chunk, sig); e != nil {
				return nil, e
			}
		}
		if lastSize >= 0 && lastSize < minChunk && size > 0 {
			return nil, newErr("InvalidChunkSizeError", "Only the last chunk is allowed to have a size less than 8192 bytes.")
		}
		data = append(data, chunk...)
		if size == 0 {
			return data, nil
		}
		if !bytes.HasPrefix(d.in, []byte("\r\n")) {
			return nil, newErr("IncompleteBody", "A chunk's data is not followed by CRLF.")
		}
		d.in = d.in[2:]
		lastSize = size
	}
}

// parseHead reads "hex-size;chunk-signature=SIG" (signed) or "hex-size".
func (d *chunkDecoder) parseHead(head string) (size int64, sig string, e *Error) {
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
func (d *chunkDecoder) checkChunk(chunk []byte, sig string) *Error {
	a := d.c.a
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + a.amzDate + "\n" + a.scope() + "\n" + d.prev + "\n" + emptySHA256 + "\n" + hexSHA256(chunk)
	want := Signature(d.c.creds.SecretAccessKey, a.scopeDate, a.region, a.service, sts)
	if want != sig {
		return &Error{Code: "SignatureDoesNotMatch", Message: "The chunk signature we calculated does not match the signature you provided (chunk " + strconv.Itoa(d.n) + ").", StringToSign: sts}
	}
	d.prev = sig
	return nil
}

// trailer reads the trailer after the final chunk: the checksum named by
// x-amz-trailer and, when signed, its signature; the checksum must be the
// data's.
func (d *chunkDecoder) trailer(data []byte) *Error {
	name := strings.ToLower(strings.TrimSpace(d.c.r.Header.Get("X-Amz-Trailer")))
	alg, ok := strings.CutPrefix(name, "x-amz-checksum-")
	if !ok || checksumHash(alg) == nil {
		return newErr("InvalidArgument", "x-amz-trailer %q names no checksum S3 takes.", name)
	}
	var lines, value string
	signed := false
	for {
		l, ok := d.line()
		if !ok {
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
	switch {
	case len(d.in) > 0:
		return newErr("IncompleteBody", "Bytes follow the trailer.")
	case value == "":
		return newErr("MalformedTrailerError", "The trailer lacks %s.", name)
	case d.signed && !signed:
		return newErr("IncompleteSignature", "The trailer lacks x-amz-trailer-signature.")
	}
	d.c.rec.Checksum = strings.ToUpper(alg)
	return checkChecksum(alg, value, data)
}

// checkTrailer checks the trailer's signature over its lines.
func (d *chunkDecoder) checkTrailer(lines, sig string) *Error {
	a := d.c.a
	sum := sha256.Sum256([]byte(lines))
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + a.amzDate + "\n" + a.scope() + "\n" + d.prev + "\n" + hex.EncodeToString(sum[:])
	if Signature(d.c.creds.SecretAccessKey, a.scopeDate, a.region, a.service, sts) != sig {
		return &Error{Code: "SignatureDoesNotMatch", Message: "The trailer signature we calculated does not match the signature you provided.", StringToSign: sts}
	}
	return nil
}

// checkChecksum checks value, a base64 checksum of algorithm alg, against
// data, as S3 does on arrival.
func checkChecksum(alg, value string, data []byte) *Error {
	h := checksumHash(alg)
	h.Write(data)
	got := base64.StdEncoding.EncodeToString(h.Sum(nil))
	if got != strings.TrimSpace(value) {
		return newErr("BadDigest", "The %s you specified did not match the calculated checksum.", strings.ToUpper(alg))
	}
	return nil
}

// checkChecksumHeaders: the x-amz-checksum-* headers of a plain body are
// its checksums, and x-amz-sdk-checksum-algorithm names one that is sent.
func (c *check) checkChecksumHeaders() *Error {
	named := strings.ToLower(c.r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"))
	found := named == ""
	for k, vv := range c.r.Header {
		alg, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-checksum-")
		if !ok || alg == "type" || alg == "algorithm" {
			continue
		}
		if checksumHash(alg) == nil {
			return newErr("InvalidRequest", "%s names no checksum S3 takes.", k)
		}
		if e := checkChecksum(alg, vv[0], c.body); e != nil {
			return e
		}
		c.rec.Checksum = strings.ToUpper(alg)
		found = found || alg == named
	}
	if !found && c.r.Header.Get("X-Amz-Trailer") == "" {
		return newErr("InvalidRequest", "x-amz-sdk-checksum-algorithm is %s, but no x-amz-checksum-%s header or trailer is sent.", strings.ToUpper(named), named)
	}
	return nil
}

// setBody makes data, the decoded body, the body the handler reads, with
// Content-Encoding as S3 keeps it: without aws-chunked.
func (c *check) setBody(data []byte) {
	c.body = data
	c.r.Body = io.NopCloser(bytes.NewReader(data))
	c.r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	c.r.ContentLength = int64(len(data))
	var rest []string
	for _, v := range strings.Split(c.r.Header.Get("Content-Encoding"), ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "aws-chunked") {
			rest = append(rest, v)
		}
	}
	if len(rest) == 0 {
		c.r.Header.Del("Content-Encoding")
	} else {
		c.r.Header.Set("Content-Encoding", strings.Join(rest, ","))
	}
}

// clipText is a client's text as a message quotes it: at most 64 bytes.
func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
