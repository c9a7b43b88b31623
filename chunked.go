package kivuli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// aws-chunked with signed chunks (S3's "signature calculations for the
// Authorization header: transferring payload in multiple chunks"): the
// request is signed with the payload hash STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// (-TRAILER when a checksum trailer follows), and the body is sent as
// chunks, each signed over the previous signature and its own SHA-256:
//
//	hex(size);chunk-signature=SIG\r\n DATA \r\n   ... a 64 KiB chunk at a time
//	0;chunk-signature=SIG\r\n                     the final, empty chunk
//	x-amz-checksum-crc32:VALUE\r\n                the trailer, if any
//	x-amz-trailer-signature:SIG\r\n
//	\r\n
//
// So the body is read once, as it is sent, its hash and its checksum
// computed on the way, in O(chunk) memory whatever its size; the request
// carries the decoded length (x-amz-decoded-content-length), which S3
// needs, and Content-Length is the encoded length, computed up front.

const (
	streamingPayload        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingPayloadTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsigned       = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	headerDecodedLength     = "X-Amz-Decoded-Content-Length"
	headerTrailer           = "X-Amz-Trailer"
	// chunkSize is the size of every chunk but the last two: what the SDKs
	// and the AWS documentation use.
	chunkSize = 64 << 10
	// chunkSigLen is the length of ";chunk-signature=" and a signature.
	chunkSigLen = len(";chunk-signature=") + 2*sha256.Size
)

// chunkPlan is what a request sent aws-chunked needs besides its body: the
// decoded length, the checksum of the trailer ("" for none), and whether
// the chunks go unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER: what the
// SDKs send over TLS, the checksum trailer then guarding the body).
type chunkPlan struct {
	length   int64
	checksum ChecksumAlgorithm
	unsigned bool
}

// payloadHash is the payload hash the request is signed with.
func (p *chunkPlan) payloadHash() string {
	switch {
	case p.unsigned:
		return streamingUnsigned
	case p.checksum != "":
		return streamingPayloadTrailer
	}
	return streamingPayload
}

// encodedLength is the length of the body as sent.
func (p *chunkPlan) encodedLength() int64 {
	n := p.length / chunkSize * p.chunkLength(chunkSize)
	if rest := p.length % chunkSize; rest > 0 {
		n += p.chunkLength(rest)
	}
	n += p.chunkLength(0) // the final chunk, without its data's CRLF...
	if p.checksum == "" {
		return n // ...which ends the body instead
	}
	n -= 2
	n += int64(len(p.checksum.trailerLine("")) + p.checksum.valueLength() + 2) // name:value\r\n
	if !p.unsigned {
		n += int64(len("x-amz-trailer-signature:") + 2*sha256.Size + 2)
	}
	return n + 2
}

// chunkLength is the encoded length of a chunk of size bytes.
func (p *chunkPlan) chunkLength(size int64) int64 {
	n := int64(len(strconv.FormatInt(size, 16))+2) + size + 2
	if !p.unsigned {
		n += int64(chunkSigLen)
	}
	return n
}

// trailerLine is the trailer of the checksum a with its value v, as
// hashed: lower-case name, colon, value, newline ("\n": the trailer
// signature covers the lines joined by newlines).
func (a ChecksumAlgorithm) trailerLine(v string) string {
	return strings.ToLower(a.header()) + ":" + v
}

// valueLength is the length of the base64 value of a's checksum.
func (a ChecksumAlgorithm) valueLength() int {
	return (a.New().Size() + 2) / 3 * 4
}

// prepareChunked sets the headers that a request sent aws-chunked is
// signed with; the body is attached once the seed signature is known
// (attachChunked).
func prepareChunked(r *http.Request, p *chunkPlan) {
	enc := "aws-chunked"
	if v := r.Header.Get("Content-Encoding"); v != "" {
		enc += "," + v // S3 keeps the others as the object's
	}
	r.Header.Set("Content-Encoding", enc)
	r.Header.Set(headerDecodedLength, strconv.FormatInt(p.length, 10))
	if p.checksum != "" {
		r.Header.Set(headerTrailer, strings.ToLower(p.checksum.header()))
		r.Header.Set(headerChecksumAlgorithm, string(p.checksum))
	}
	r.ContentLength = p.encodedLength()
	r.TransferEncoding = nil
}

// attachChunked makes r's body, once r is signed as s says, the
// aws-chunked encoding of its body, its chunks signed over r's signature;
// GetBody (which net/http calls to send the request again on a new
// connection) encodes a fresh copy the same way.
func attachChunked(ctx context.Context, r *http.Request, p *chunkPlan, s *signing) error {
	_, seed, ok := strings.Cut(r.Header.Get(headerAuthorization), "Signature=")
	if !ok && !p.unsigned {
		return errors.New("kivuli: the signed request has no signature to chain its chunks to")
	}
	encode := func(body io.ReadCloser) (io.ReadCloser, error) {
		if p.unsigned {
			return newChunkedBody(ctx, body, *p, nil), nil
		}
		cs, err := newChunkSigner(s.creds, s.service, s.region, s.time, seed)
		if err != nil {
			body.Close()
			return nil, err
		}
		return newChunkedBody(ctx, body, *p, cs), nil
	}
	body, err := encode(r.Body)
	if err != nil {
		return err
	}
	r.Body = body
	if getBody := r.GetBody; getBody != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := getBody()
			if err != nil {
				return nil, err
			}
			return encode(b)
		}
	}
	return nil
}

// chunkSigner signs the chunks and the trailer of one request.
type chunkSigner struct {
	stream *v4.StreamSigner
	key    []byte // the SigV4 signing key, for the trailer
	date   string // X-Amz-Date
	scope  string
	prev   []byte // the last signature, raw
	t      time.Time
}

// newChunkSigner returns the signer of the chunks of a request signed at
// t with seed, the request's signature (hex).
func newChunkSigner(creds aws.Credentials, service, region string, t time.Time, seed string) (*chunkSigner, error) {
	prev, err := hex.DecodeString(seed)
	if err != nil || len(prev) != sha256.Size {
		return nil, errors.New("kivuli: the request's signature is not a hex SHA-256")
	}
	t = t.UTC()
	day := t.Format("20060102")
	return &chunkSigner{
		stream: v4.NewStreamSigner(creds, service, region, prev),
		key:    signingKey(creds.SecretAccessKey, day, region, service),
		date:   t.Format("20060102T150405Z"),
		scope:  day + "/" + region + "/" + service + "/aws4_request",
		prev:   prev,
		t:      t,
	}, nil
}

// chunk returns the signature of the next chunk, whose data is b (hex).
func (s *chunkSigner) chunk(ctx context.Context, b []byte) (string, error) {
	sig, err := s.stream.GetSignature(ctx, nil, b, s.t)
	if err != nil {
		return "", err
	}
	s.prev = sig
	return hex.EncodeToString(sig), nil
}

// trailer returns the signature of the trailer, whose lines (each ending
// in "\n") are lines; the SDK's stream signer knows no trailer.
func (s *chunkSigner) trailer(lines string) string {
	sum := sha256.Sum256([]byte(lines))
	toSign := "AWS4-HMAC-SHA256-TRAILER\n" + s.date + "\n" + s.scope + "\n" + hex.EncodeToString(s.prev) + "\n" + hex.EncodeToString(sum[:])
	return hex.EncodeToString(hmacSHA256(s.key, toSign))
}

// signingKey derives the SigV4 signing key of a secret for a day, region
// and service.
func signingKey(secret, day, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), day)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, data)
	return m.Sum(nil)
}

// chunkedBody is an aws-chunked body: it reads the decoded body a chunk at
// a time and yields it encoded, signed, with the checksum trailer at the
// end. A chunk is three pieces, its header, its data and what follows it
// (a CRLF, or the trailer), served from where they are: WriteTo, which
// net/http uses, writes them to the connection without a copy.
type chunkedBody struct {
	ctx    context.Context
	src    io.ReadCloser
	plan   chunkPlan
	signer *chunkSigner
	sum    hash.Hash // the checksum, or nil
	buf    []byte    // one chunk's data
	head   []byte    // the chunk's header
	tail   []byte    // what follows the chunk's data
	pieces [3][]byte // what is left to yield of head, data and tail
	read   int64     // decoded bytes read
	done   bool
	err    error
}

// newChunkedBody returns the encoded body of src, signed by s.
func newChunkedBody(ctx context.Context, src io.ReadCloser, plan chunkPlan, s *chunkSigner) *chunkedBody {
	b := &chunkedBody{ctx: ctx, src: src, plan: plan, signer: s, buf: make([]byte, min(int64(chunkSize), plan.length))}
	if plan.checksum != "" {
		b.sum = plan.checksum.New()
	}
	b.head = make([]byte, 0, 8+chunkSigLen+2)
	b.tail = make([]byte, 0, 256)
	return b
}

// fill makes the next chunk the pieces to yield, and reports whether
// there is one.
func (b *chunkedBody) fill() bool {
	if b.pieces[0] != nil || b.pieces[1] != nil || b.pieces[2] != nil {
		return true
	}
	if b.err != nil || b.done {
		return false
	}
	if b.err = b.next(); b.err != nil {
		return false
	}
	return true
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	for b.fill() {
		for i := range b.pieces {
			if len(b.pieces[i]) > 0 {
				n := copy(p, b.pieces[i])
				b.pieces[i] = b.pieces[i][n:]
				return n, nil
			}
			b.pieces[i] = nil
		}
	}
	if b.err != nil {
		return 0, b.err
	}
	return 0, io.EOF
}

// WriteTo writes the encoded body to w, each chunk's data from where it
// was read.
func (b *chunkedBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for b.fill() {
		for i := range b.pieces {
			if len(b.pieces[i]) > 0 {
				n, err := w.Write(b.pieces[i])
				total += int64(n)
				if err != nil {
					return total, err
				}
			}
			b.pieces[i] = nil
		}
	}
	return total, b.err
}

// next reads, hashes and signs the next chunk (or the final one, and the
// trailer) into the pieces.
func (b *chunkedBody) next() error {
	size := min(int64(len(b.buf)), b.plan.length-b.read)
	data := b.buf[:size]
	if size > 0 {
		if _, err := io.ReadFull(b.src, data); err != nil {
			return bodyLengthError(b.plan.length, b.read, err)
		}
		b.read += size
		if b.sum != nil {
			b.sum.Write(data)
		}
	} else if err := b.atEnd(); err != nil {
		return err
	}
	head := strconv.AppendInt(b.head[:0], size, 16)
	if b.signer != nil {
		sig, err := b.signer.chunk(b.ctx, data)
		if err != nil {
			return err
		}
		head = append(head, ";chunk-signature="...)
		head = append(head, sig...)
	}
	head = append(head, "\r\n"...)
	tail := b.tail[:0]
	if size > 0 || b.sum == nil {
		tail = append(tail, "\r\n"...)
	}
	if size == 0 {
		b.done = true
		if b.sum != nil {
			line := b.plan.checksum.trailerLine(checksumValue(b.sum))
			tail = append(tail, line...)
			tail = append(tail, "\r\n"...)
			if b.signer != nil {
				tail = append(tail, "x-amz-trailer-signature:"...)
				tail = append(tail, b.signer.trailer(line+"\n")...)
				tail = append(tail, "\r\n"...)
			}
			tail = append(tail, "\r\n"...)
		}
	}
	b.head, b.tail = head, tail
	b.pieces = [3][]byte{head, data, tail}
	return nil
}

// atEnd checks that the decoded body ends where its length says.
func (b *chunkedBody) atEnd() error {
	var one [1]byte
	if n, _ := b.src.Read(one[:]); n > 0 {
		return invalid(ErrInvalidRequest, "ContentLength is %d but the body has more bytes", b.plan.length)
	}
	return nil
}

func (b *chunkedBody) Close() error { return b.src.Close() }

// bodyLengthError describes a body that ended, or failed, before length
// bytes: after read of them.
func bodyLengthError(length, read int64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalid(ErrInvalidRequest, "ContentLength is %d but the body ended after fewer bytes", length)
	}
	return invalidRequest("reading the body", err)
}
