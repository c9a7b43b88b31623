package interop

import (
	"bufio"
	"context"
	"crypto/sha256"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/proxy"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// botocoreUpload is a botocore S3 client with its default checksums
// (when_supported: CRC32, aws-chunked with the checksum in a trailer over
// TLS), throwaway keys of its own, uploading each file named after the
// endpoint as the object of its base name, and saying what it sent.
const botocoreUpload = `
import os, sys, urllib3, botocore.session, botocore.config
urllib3.disable_warnings()
sent = {}
def note(request, **kwargs):
    sent['payload'] = request.headers.get('X-Amz-Content-SHA256', b'')
c = botocore.session.get_session().create_client('s3', region_name='eu-west-2',
    endpoint_url=sys.argv[1], verify=False,
    aws_access_key_id='AKIDTHROWAWAY', aws_secret_access_key='throwaway-secret',
    config=botocore.config.Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
c.meta.events.register('before-send.s3.PutObject', note)
for path in sys.argv[2:]:
    with open(path, 'rb') as f:
        c.put_object(Bucket='bucket', Key=os.path.basename(path), Body=f)
    p = sent['payload']
    print(os.path.basename(path), p.decode() if isinstance(p, bytes) else p, flush=True)
`

// TestBotocoreUploadsThroughProxy (issue 21): botocore's S3 client, as the
// AWS CLI and boto3 use it, uploads 1 byte and 8 MiB (and 1 GiB with
// KIVULI_BIG_UPLOADS=1) through the signing proxy over TLS: aws-chunked
// with its CRC32 in a trailer, inside Transfer-Encoding: chunked, with no
// Content-Length. The proxy re-signs each with the role and streams it to
// the upstream, which checks every signature and checksum.
func TestBotocoreUploadsThroughProxy(t *testing.T) {
	if err := exec.Command("python3", "-c", "import botocore").Run(); err != nil {
		t.Skipf("python3 with botocore is not installed: %v", err)
	}
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(imds.URL))
	require.NoError(t, err)
	defer creds.Close()
	store := &s3Store{objects: map[string][]byte{}, digests: true,
		v: &sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup), Scope: sigv4test.AnyScope}}
	up := httptest.NewTLSServer(store)
	defer up.Close()
	p, err := proxy.New(context.Background(), proxy.Config{
		Upstream: up.URL, Credentials: creds, Service: "s3", Region: "eu-west-2",
		AllowedHosts: []string{strings.TrimPrefix(up.URL, "https://")}, Transport: up.Client().Transport,
	})
	require.NoError(t, err)
	defer p.Close()
	front := httptest.NewTLSServer(p)
	defer front.Close()

	sizes := map[string]int64{"one-byte": 1, "eight-mib": 8 << 20}
	if os.Getenv("KIVULI_BIG_UPLOADS") != "" {
		// A minute more on two cores with -race: not in every run. The
		// store checks it as it streams, holding a chunk at most.
		sizes["one-gib"] = 1 << 30
	}
	dir := t.TempDir()
	want := map[string][sha256.Size]byte{}
	var files []string
	for name, n := range sizes {
		path := filepath.Join(dir, name)
		want[name] = writePattern(t, path, n)
		files = append(files, path)
	}
	cmd := exec.Command("python3", append([]string{"-c", botocoreUpload, front.URL}, files...)...)
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull, "AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		store.mu.Lock()
		for _, rec := range store.records {
			t.Logf("the upstream saw %s: %v", rec.PayloadHash, rec.Err)
		}
		store.mu.Unlock()
	}
	require.NoError(t, err, "botocore:\n%s", out)
	chunked := 0
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		if name, payload, ok := strings.Cut(sc.Text(), " "); ok && sizes[name] > 0 {
			t.Logf("%s (%d bytes): botocore sent %s", name, sizes[name], payload)
			if payload == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
				chunked++
			}
		}
	}
	assert.Equal(t, len(sizes), chunked, "botocore sent every upload aws-chunked, its CRC32 in a trailer:\n%s", out)
	store.mu.Lock()
	defer store.mu.Unlock()
	require.Len(t, store.records, len(sizes))
	for _, rec := range store.records {
		assert.NoError(t, rec.Err)
		assert.Equal(t, "CRC32", rec.Checksum, "botocore's checksum reached S3")
		assert.Equal(t, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", rec.PayloadHash, "streamed through untouched")
	}
	for name := range sizes {
		sum := want[name]
		assert.Equal(t, sum[:], store.objects["/bucket/"+name], "the object stored is botocore's bytes: %s", name)
	}
}

// writePattern writes n bytes of a repeating text to path and returns
// their SHA-256.
func writePattern(t *testing.T, path string, n int64) [sha256.Size]byte {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(f, 1<<20)
	line := []byte("botocore upload through kivuli proxy\n")
	for written := int64(0); written < n; {
		b := line[:min(int64(len(line)), n-written)]
		w.Write(b)
		h.Write(b)
		written += int64(len(b))
	}
	require.NoError(t, w.Flush())
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
