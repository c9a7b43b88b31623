package curl

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// The kinds of data flags, as curl has them.
const (
	dataASCII  = iota // -d: @FILE read with CR and LF removed
	dataBinary        // --data-binary: @FILE as it is
	dataRaw           // --data-raw: no @ at all
)

// dataPart is one -d, --data-binary or --data-raw, in command-line order.
type dataPart struct {
	kind  int
	value string
}

// dataFlag is the pflag.Value of the data flags: all append to one list.
type dataFlag struct {
	parts *[]dataPart
	kind  int
}

func (d *dataFlag) String() string { return "" }
func (d *dataFlag) Type() string   { return "string" }
func (d *dataFlag) Set(s string) error {
	*d.parts = append(*d.parts, dataPart{kind: d.kind, value: s})
	return nil
}

// body is a request's body: in memory, or a file streamed with its
// length.
type body struct {
	data     []byte   // in memory, or nil
	file     *os.File // a file to stream, or nil
	start    int64    // where the file's part to send starts
	size     int64
	name     string    // the file's name
	tempfile bool      // the file is a copy of standard input, removed at cleanup
	stream   io.Reader // standard input of the length --size gives: read once
}

// requestBody makes the body the flags describe.
func (f *curlFlags) requestBody() (*body, error) {
	if f.upload != "" {
		return f.fileBody(f.upload, "-T")
	}
	if len(f.data) == 1 && f.data[0].kind == dataBinary && strings.HasPrefix(f.data[0].value, "@") {
		return f.fileBody(f.data[0].value[1:], "--data-binary")
	}
	if len(f.data) == 0 {
		return &body{}, nil
	}
	var buf bytes.Buffer
	for i, p := range f.data {
		if i > 0 {
			buf.WriteByte('&')
		}
		name, isFile := strings.CutPrefix(p.value, "@")
		if !isFile || p.kind == dataRaw {
			buf.WriteString(p.value)
			continue
		}
		b, err := f.readArg(name)
		if err != nil {
			return nil, base.UsageErrorf("data @%s: %v", name, err)
		}
		if p.kind == dataASCII {
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
		buf.Write(b)
	}
	return &body{data: buf.Bytes(), size: int64(buf.Len())}, nil
}

// fileBody opens name ("-": standard input) to stream it. Standard input
// that cannot seek (a pipe) is copied to a temporary file first, so that
// its length is known and the signer can hash it without holding it.
func (f *curlFlags) fileBody(name, flag string) (*body, error) {
	if name == "-" {
		return f.stdinBody()
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, base.UsageErrorf("%s: %v", flag, err)
	}
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		file.Close()
		return nil, base.UsageErrorf("%s %s: not a regular file", flag, name)
	}
	return &body{file: file, size: st.Size(), name: name}, nil
}

func (f *curlFlags) stdinBody() (*body, error) {
	if f.size >= 0 {
		return &body{stream: f.Stdin, size: f.size}, nil
	}
	if in, ok := f.Stdin.(*os.File); ok {
		if st, err := in.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := in.Seek(0, io.SeekCurrent); err == nil {
				return &body{file: in, start: off, size: st.Size() - off}, nil
			}
		}
	}
	tmp, err := os.CreateTemp("", "kivuli-stdin-*")
	if err != nil {
		return nil, fmt.Errorf("kivuli: a temporary file for standard input: %w", err)
	}
	b := &body{file: tmp, name: tmp.Name(), tempfile: true}
	n, err := io.Copy(tmp, f.Stdin)
	if err != nil {
		b.cleanup()
		return nil, fmt.Errorf("kivuli: reading standard input: %w", err)
	}
	b.size = n
	return b, nil
}

// attach sets b as req's body, with its length, and a GetBody that reads
// it again from the start, for redirects and retries.
func (b *body) attach(req *http.Request) {
	switch {
	case b.stream != nil:
		// Read once, as it comes: the signer sends it aws-chunked (S3)
		// or buffers it to hash it (another service, up to its limit).
		req.Body, req.GetBody, req.ContentLength = io.NopCloser(b.stream), nil, b.size
		if b.size == 0 {
			req.Body = http.NoBody
		}
	case b.file != nil:
		// Section readers read at offsets of their own, so that the signer
		// hashing one (from GetBody) leaves the one sent at its start.
		file, start, size := b.file, b.start, b.size
		req.Body = io.NopCloser(io.NewSectionReader(file, start, size))
		req.ContentLength = size
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(file, start, size)), nil
		}
		if size == 0 {
			req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		}
	case b.data != nil:
		data := b.data
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.ContentLength = int64(len(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		if len(data) == 0 {
			req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		}
	}
}

// cleanup closes the file and removes a temporary one.
func (b *body) cleanup() {
	if b.file == nil || b.file == os.Stdin {
		return
	}
	b.file.Close()
	if b.tempfile {
		os.Remove(b.name)
	}
}
