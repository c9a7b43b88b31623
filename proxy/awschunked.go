package proxy

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kivuli-go/kivuli"
)

// An SDK uploads to S3 in aws-chunked framing: over TLS with unsigned
// chunks and its checksum in a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER,
// what aws-sdk-go-v2, botocore and the AWS CLI send by default), or with
// chunks it signed itself, here with keys of its own that S3 would refuse.
// The proxy forwards both, re-signed with the role's credentials:
//
//   - unsigned chunks to an https upstream: the request is signed as it is
//     and the body streams through untouched, its trailer guarding it
//     (the signer's pre-encoded path);
//   - anything else (signed chunks, or an upstream in clear): the framing
//     is decoded as the body arrives, the client's checksum checked against
//     the bytes at the end, and the signer sends the decoded body as it
//     sends any upload, asked for the same checksum algorithm.
//
// Either way in O(chunk) memory. Other services take no aws-chunked body.

const (
	streamingUnsigned = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	maxChunkLine      = 4 << 10 // a chunk's header line: a size and a signature
)

// awsChunked reports a body in aws-chunked framing.
func awsChunked(h http.Header) bool {
	return strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") ||
		h.Get("X-Amz-Decoded-Content-Length") != "" || hasAWSChunkedEncoding(h)
}

func hasAWSChunkedEncoding(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		if strings.Contains(strings.ToLower(v), "aws-chunked") {
			return true
		}
	}
	return false
}

// prepareAWSChunked makes an SDK's aws-chunked upload one the signer takes:
// as it is (preEncoded), or decoded, with its decoded length and the
// checksum algorithm of its trailer asked for.
func (p *Proxy) prepareAWSChunked(r *http.Request) (preEncoded bool, err error) {
	decoded, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	// The encoded length may be unknown (botocore sends Transfer-Encoding:
	// chunked around the aws-chunked framing, as S3 takes); the decoded one
	// may not.
	if err != nil || decoded < 0 {
		return false, &RequestError{Status: http.StatusLengthRequired, Msg: "kivuli proxy: an aws-chunked body needs the length of its data (X-Amz-Decoded-Content-Length)"}
	}
	if decoded > p.maxBody {
		return false, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("kivuli proxy: the object of %d bytes is over the limit (Config.MaxBody)", decoded)}
	}
	trailer := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer")))
	alg, hasTrailer := strings.CutPrefix(trailer, "x-amz-checksum-")
	if trailer != "" && (!hasTrailer || kivuli.ChecksumAlgorithm(strings.ToUpper(alg)).New() == nil) {
		return false, &RequestError{Status: http.StatusBadRequest, Msg: "kivuli proxy: X-Amz-Trailer names no checksum S3 takes"}
	}
	if r.Header.Get("X-Amz-Content-Sha256") == streamingUnsigned && hasTrailer && p.upstream.Scheme == "https" {
		if r.ContentLength < 0 {
			// Streamed through as it is, undecoded: cut where its framing
			// would be longer than any body of its decoded length's.
			r.Body = readCloser{&framedBody{r: r.Body, left: framingLimit(decoded)}, r.Body}
		}
		return true, nil
	}
	r.Body = readCloser{newChunkDecoder(r.Body, decoded, strings.ToUpper(alg)), r.Body}
	r.ContentLength, r.TransferEncoding = decoded, nil
	for _, k := range []string{"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-Content-Sha256"} {
		r.Header.Del(k)
	}
	var rest []string
	for _, v := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "aws-chunked") {
			rest = append(rest, v)
		}
	}
	r.Header.Del("Content-Encoding")
	if len(rest) > 0 {
		r.Header.Set("Content-Encoding", strings.Join(rest, ","))
	}
	if alg != "" {
		r.Header.Set("X-Amz-Sdk-Checksum-Algorithm", strings.ToUpper(alg))
	}
	return false, nil
}

// chunkDecoder reads the data out of aws-chunked framing, signed chunks or
// not (the client's chunk signatures are not checked: its keys are not
// the role's, and the proxy signs anew), and checks the trailer's
// checksum, if any, against the data before it reports the end.
type chunkDecoder struct {
	br   *bufio.Reader
	want int64  // the decoded length
	read int64  // data bytes read
	left int64  // bytes left in the current chunk
	alg  string // the trailer's checksum algorithm, or ""
	sum  hash.Hash
	err  error
}

func newChunkDecoder(r io.Reader, decoded int64, alg string) *chunkDecoder {
	d := &chunkDecoder{br: bufio.NewReaderSize(r, 16<<10), want: decoded, alg: alg}
	if alg != "" {
		d.sum = kivuli.ChecksumAlgorithm(alg).New()
	}
	return d
}

// errFraming is a client's aws-chunked body that is not well formed.
var errFraming = errors.New("kivuli proxy: the aws-chunked body is not well formed")

func (d *chunkDecoder) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.left == 0 {
		if d.err = d.nextChunk(); d.err != nil {
			return 0, d.err
		}
	}
	n, err := d.br.Read(p[:min(int64(len(p)), d.left)])
	d.left -= int64(n)
	d.read += int64(n)
	if d.sum != nil {
		d.sum.Write(p[:n])
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && d.left == 0 {
		err = d.crlf()
	}
	if err == nil && d.read == d.want {
		// The last bytes: the trailer is read and checked before they are
		// given, as a reader of exactly the decoded length (net/http, the
		// signer) never reads on to see an error after them.
		if err = d.nextChunk(); err == io.EOF {
			d.err = io.EOF
			return n, io.EOF
		}
		n = 0
	}
	d.err = err
	return n, nil
}

// nextChunk reads the next chunk's header; at the final, empty chunk it
// reads the trailer, checks it and the length, and returns io.EOF.
func (d *chunkDecoder) nextChunk() error {
	line, err := d.line()
	if err != nil {
		return err
	}
	hexSize, _, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(hexSize, 16, 64)
	if err != nil || size < 0 || size > d.want-d.read {
		return fmt.Errorf("%w: a chunk's size", errFraming)
	}
	if size > 0 {
		d.left = size
		return nil
	}
	if d.read != d.want {
		return fmt.Errorf("%w: %d bytes, X-Amz-Decoded-Content-Length says %d", errFraming, d.read, d.want)
	}
	return d.trailer()
}

// trailer reads the lines after the final chunk up to the blank one, and
// checks the checksum's value.
func (d *chunkDecoder) trailer() error {
	var value string
	for {
		line, err := d.line()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		if strings.EqualFold(k, "x-amz-checksum-"+d.alg) {
			value = strings.TrimSpace(v)
		}
	}
	if d.sum != nil {
		if value != base64.StdEncoding.EncodeToString(d.sum.Sum(nil)) {
			return fmt.Errorf("kivuli proxy: the body's %s is not the one its trailer states: it changed on the way", d.alg)
		}
	}
	return io.EOF
}

// line reads a line of the framing, without its CRLF.
func (d *chunkDecoder) line() (string, error) {
	b, err := d.br.ReadSlice('\n')
	if err != nil || len(b) > maxChunkLine || !strings.HasSuffix(string(b), "\r\n") {
		if errors.Is(err, io.EOF) || err == nil || errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: a line of its framing", errFraming)
		}
		return "", err
	}
	return string(b[:len(b)-2]), nil
}

// crlf reads the CRLF after a chunk's data.
func (d *chunkDecoder) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(d.br, b[:]); err != nil || b != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: a chunk's end", errFraming)
	}
	return nil
}

// errFramingTooLong is an aws-chunked body streamed through as it is that
// is longer than its X-Amz-Decoded-Content-Length allows.
var errFramingTooLong = errors.New("kivuli proxy: the aws-chunked body is longer than its X-Amz-Decoded-Content-Length allows")

// framingLimit is the most an aws-chunked body of decoded bytes can take:
// the data, a line of at most maxChunkLine and its CRLFs for each chunk
// (S3 takes none under 8 KiB but the last), the final chunk, and a
// trailer. It bounds a body streamed through without being decoded, whose
// decoded length has been checked against MaxBody.
func framingLimit(decoded int64) int64 {
	const minChunk, lineAndCRLFs, trailer = 8 << 10, maxChunkLine + 4, 16 << 10
	return decoded + (decoded/minChunk+2)*lineAndCRLFs + trailer
}

// framedBody reads a body up to left bytes, and fails past them.
type framedBody struct {
	r    io.Reader
	left int64
}

func (f *framedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > f.left+1 {
		p = p[:f.left+1]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	if f.left < 0 {
		return n + int(f.left), errFramingTooLong // the byte past the limit is not passed on
	}
	return n, err
}
