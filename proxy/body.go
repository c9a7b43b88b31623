package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kivuli-go/kivuli/internal/bytesize"
)

// How a request body reaches the signer, in bounded memory:
//
//   - streamed: to S3 (and with UnsignedPayload), a body of known
//     length over the in-memory threshold is passed through as it arrives,
//     which the signer sends aws-chunked with a CRC32 trailer (to S3) or
//     UNSIGNED-PAYLOAD. It can be sent once only: no retry.
//   - buffered: a body up to MaxBuffer is read into memory, to be
//     hashed and sent again on a retry.
//   - spooled: a larger body (or one of unknown length, to learn it) is
//     written to a temporary file in SpoolDir, which is hashed and sent
//     from the file, and rewound for a retry. The file is unlinked as soon
//     as it is created (on Unix), so that nothing is left behind even if
//     the process dies; its space is freed when the request ends.
//
// A body over MaxBody is refused with 413, before it is read when its
// length says so. A chunked body to S3 gets 411: S3 needs the length, and
// an object could be far too large to spool.

// Body modes, as the access log and the metrics name them.
const (
	bodyNone     = "none"
	bodyBuffered = "buffered"
	bodySpooled  = "spooled"
	bodyStreamed = "streamed"
)

// budget is a bound on the bytes all requests' bodies hold together: in
// memory (a request that would go over it is spooled instead, so that many
// concurrent clients cannot make the proxy hold many buffers), and on disk
// (MaxSpool).
type budget struct {
	limit int64
	inUse atomic.Int64
	peak  atomic.Int64
}

// take charges n bytes, reporting false (and charging nothing) when they
// would exceed the budget.
func (m *budget) take(n int64) bool {
	now := m.inUse.Add(n)
	if now > m.limit {
		m.inUse.Add(-n)
		return false
	}
	for {
		p := m.peak.Load()
		if now <= p || m.peak.CompareAndSwap(p, now) {
			return true
		}
	}
}

func (m *budget) give(n int64) { m.inUse.Add(-n) }

// proxyBody is a request body as prepared for the signer, and what to release
// once the request is done.
type proxyBody struct {
	mode    string
	size    int64 // for a streamed body, the bytes read so far (counted as they pass)
	file    *os.File
	charged int64 // of mem
	mem     *budget
	spooled int64 // of spool
	spool   *budget
	counter *countingReader
	// preEncoded: an SDK's aws-chunked body with unsigned chunks, signed
	// as it is (awschunked.go).
	preEncoded bool
}

// release frees the body's memory and spool charges and closes its spool
// file, which frees its disk space (it has no name).
func (b *proxyBody) release() {
	if b.charged > 0 {
		b.mem.give(b.charged)
		b.charged = 0
	}
	if b.spooled > 0 {
		b.spool.give(b.spooled)
		b.spooled = 0
	}
	if b.file != nil {
		name := b.file.Name()
		b.file.Close()
		if runtime.GOOS == "windows" { // an open file cannot be removed there
			os.Remove(name)
		}
		b.file = nil
	}
}

// bytesIn is the number of body bytes received.
func (b *proxyBody) bytesIn() int64 {
	if b.counter != nil {
		return b.counter.n.Load()
	}
	return b.size
}

// copyBuffers are the scratch buffers of spooling.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// prepareBody replaces r's body by one the signer can hash or stream, as
// described above. On error nothing needs releasing.
func (p *Proxy) prepareBody(r *http.Request) (*proxyBody, error) {
	b := &proxyBody{mode: bodyNone, mem: p.mem, spool: p.disk}
	if p.s3 && awsChunked(r.Header) {
		var err error
		if b.preEncoded, err = p.prepareAWSChunked(r); err != nil {
			return nil, err
		}
	}
	chunked := r.ContentLength < 0 || len(r.TransferEncoding) > 0
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 && !chunked {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return b, nil
	}
	if !chunked && r.ContentLength > p.maxBody {
		return nil, &RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("kivuli proxy: the body of %d bytes is over the limit of %s (Config.MaxBody)", r.ContentLength, bytesize.Format(p.maxBody))}
	}
	if chunked && b.preEncoded {
		// An SDK's aws-chunked upload of unknown encoded length: streamed
		// as it comes, chunked, its trailer guarding it (and its length
		// bounded by prepareAWSChunked).
		b.mode = bodyStreamed
		b.counter = &countingReader{r: r.Body}
		r.Body, r.GetBody, r.ContentLength, r.TransferEncoding = readCloser{b.counter, r.Body}, nil, -1, nil
		return b, nil
	}
	if chunked && p.s3 {
		return nil, &RequestError{Status: http.StatusLengthRequired, Msg: "kivuli proxy: S3 needs the length of the body: send it with Content-Length, not chunked (S3 refuses chunked uploads; use a multipart upload for a stream of unknown size)"}
	}
	r.TransferEncoding, r.Trailer = nil, nil
	switch {
	case !chunked && r.ContentLength > p.maxBuffer && p.stream:
		// Streamed: the signer sends it UNSIGNED-PAYLOAD, with its length.
		b.mode = bodyStreamed
		b.counter = &countingReader{r: r.Body}
		r.Body = readCloser{b.counter, r.Body}
		r.GetBody = nil
		return b, nil
	case !chunked && r.ContentLength <= p.maxBuffer && p.mem.take(r.ContentLength):
		b.charged = r.ContentLength
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			b.release()
			return nil, readError(err)
		}
		b.setMemory(r, buf)
		return b, nil
	case chunked:
		// The first MaxBuffer bytes in memory; a body that turns out
		// longer is spooled, those bytes first.
		if !p.mem.take(p.maxBuffer) {
			return p.spool(r, nil, b)
		}
		b.charged = p.maxBuffer
		var head bytes.Buffer
		n, err := head.ReadFrom(io.LimitReader(r.Body, p.maxBuffer+1))
		if err != nil {
			b.release()
			return nil, readError(err)
		}
		if n <= p.maxBuffer {
			buf := head.Bytes()
			b.mem.give(b.charged - n)
			b.charged = n
			b.setMemory(r, buf)
			return b, nil
		}
		return p.spool(r, head.Bytes(), b)
	}
	return p.spool(r, nil, b)
}

// setMemory makes buf r's body, rewindable.
func (b *proxyBody) setMemory(r *http.Request, buf []byte) {
	b.mode, b.size = bodyBuffered, int64(len(buf))
	r.ContentLength = int64(len(buf))
	// Never reused: net/http may read a body after RoundTrip returns.
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	if len(buf) == 0 {
		r.Body, r.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	// Held here: the client need not wait for the upstream's 100 Continue.
	r.Header.Del("Expect")
}

// spool writes head, then the rest of r's body, to a temporary file, and
// makes the file r's body, rewindable. b's memory charge is released once
// head is written. A body of known length is charged to the spool budget
// before a byte is read; one of unknown length as it arrives.
func (p *Proxy) spool(r *http.Request, head []byte, b *proxyBody) (*proxyBody, error) {
	fail := func(err error) (*proxyBody, error) {
		b.release()
		return nil, err
	}
	if r.ContentLength > 0 {
		if err := b.chargeSpool(r.ContentLength); err != nil {
			return fail(spoolError(err))
		}
	}
	f, err := os.CreateTemp(p.spoolDir, "kivuli-proxy-body-*")
	if err != nil {
		return fail(spoolError(err))
	}
	if runtime.GOOS != "windows" {
		os.Remove(f.Name()) // the open file lives on, nameless, until closed
	}
	b.file = f
	w := &spoolWriter{f: f, b: b}
	if _, err := w.Write(head); err != nil {
		return fail(spoolError(err))
	}
	// The head is on disk: its memory can serve other requests.
	if b.charged > 0 {
		b.mem.give(b.charged)
		b.charged = 0
	}
	limit := p.maxBody - int64(len(head))
	bufp := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(w, io.LimitReader(r.Body, limit+1), *bufp)
	copyBuffers.Put(bufp)
	switch {
	case err != nil && w.err != nil:
		return fail(spoolError(err))
	case err != nil:
		return fail(readError(err))
	case n > limit:
		return fail(&RequestError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("kivuli proxy: the body is over the limit of %s (Config.MaxBody)", bytesize.Format(p.maxBody))})
	}
	size := int64(len(head)) + n
	if r.ContentLength > 0 && size != r.ContentLength {
		return fail(&RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("kivuli proxy: the body has %d bytes, not the %d its Content-Length says", size, r.ContentLength)})
	}
	b.mode, b.size = bodySpooled, size
	r.ContentLength = size
	r.Body = io.NopCloser(io.NewSectionReader(f, 0, size))
	// Section readers read at offsets of their own: the signer hashing one
	// leaves the one sent at its start.
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, size)), nil }
	r.Header.Del("Expect")
	return b, nil
}

// Errors of the spool budget.
var (
	errSpoolFull     = errors.New("the spool is full: other requests' bodies hold Config.MaxSpool")
	errSpoolTooLarge = errors.New("the body is larger than Config.MaxSpool")
)

// chargeSpool charges n more bytes to the spool budget.
func (b *proxyBody) chargeSpool(n int64) error {
	switch {
	case b.spooled+n > b.spool.limit:
		return errSpoolTooLarge
	case !b.spool.take(n):
		return errSpoolFull
	}
	b.spooled += n
	return nil
}

// spoolWriter writes to a spool file what its body is charged for,
// charging the spool budget for any more. Being a plain Writer, it also
// keeps io.CopyBuffer from using *os.File's ReadFrom, which would bypass
// the pooled buffer with buffers of its own.
type spoolWriter struct {
	f       *os.File
	b       *proxyBody
	written int64
	err     error // the error of a write, not of a read
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if over := w.written + int64(len(p)) - w.b.spooled; over > 0 {
		if w.err = w.b.chargeSpool(over); w.err != nil {
			return 0, w.err
		}
	}
	n, err := w.f.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// readError is the refusal of a body that failed to arrive: 408 for one
// that stalled, 400 otherwise.
func readError(err error) error {
	if errors.Is(err, errBodyStalled) {
		return stalledError(err)
	}
	return &RequestError{Status: http.StatusBadRequest, Msg: "kivuli proxy: reading the request body: " + strings.TrimPrefix(err.Error(), "kivuli: ")}
}

// stalledError is the answer to a body that sent nothing for
// BodyIdleTimeout.
func stalledError(err error) *RequestError {
	return &RequestError{Status: http.StatusRequestTimeout, Stage: "limit", Reason: "body_idle_timeout",
		Msg: "kivuli proxy: reading the request body: " + err.Error() + ": the upload stalled"}
}

// spoolError is the refusal of a body that cannot be spooled: 413 for one
// that never fits in MaxSpool, 503 for one that would fit but others
// hold the space (to try again), 507 for a spool directory that fails.
func spoolError(err error) error {
	switch {
	case errors.Is(err, errSpoolTooLarge):
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Stage: "limit", Reason: "max_spool", Msg: "kivuli proxy: " + err.Error() + " (bodies over Config.MaxBuffer are spooled to disk, and the spool holds at most Config.MaxSpool)"}
	case errors.Is(err, errSpoolFull):
		return &RequestError{Status: http.StatusServiceUnavailable, Stage: "limit", Reason: "max_spool", retryAfter: "5", Msg: "kivuli proxy: " + err.Error() + ": try again shortly"}
	}
	return &RequestError{Status: http.StatusInsufficientStorage, Msg: fmt.Sprintf("kivuli proxy: cannot spool the body (Config.SpoolDir): %v", err)}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}
