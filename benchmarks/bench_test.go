// Package benchmarks compares kivuli's signing transport with the cheapest
// possible correct signing (the SDK signer called directly) and with the
// signers of three peers, opensearch-go's signer/awsv2, smithy-go's
// aws-http-auth sigv4 and prometheus/sigv4's RoundTripper, on the same
// requests in the same run.
//
// Every implementation builds its request with http.NewRequest, signs it
// the way its users do, and hands it to the same Base (sink), which reads
// the body through a 32 KiB buffer and closes it, as a real transport
// copies it to the socket, and answers 200 at once. Sub-benchmarks are
// named impl=floor|kivuli|opensearch|smithy|prometheus so that benchstat -col /impl
// puts the implementations side by side, with ratios against floor.
//
// run.sh runs them, with benchstat, and rewrites README.md.
package benchmarks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"
	smithyv4 "github.com/aws/smithy-go/aws-http-auth/v4"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
	"github.com/opensearch-project/opensearch-go/v4/signer"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"
)

const (
	host    = "search-x.eu-west-2.es.amazonaws.com"
	service = "es"
	region  = "eu-west-2"

	// apsService is Amazon Managed Service for Prometheus, where
	// prometheus/sigv4 signs by default: a PromQL query to a workspace.
	apsService = "aps"
	apsURL     = "https://aps-workspaces." + region + ".amazonaws.com/workspaces/ws-5f4e3d2c-1b0a-4987-8654-3210fedcba98/api/v1/query?query=up"

	getURL = "https://" + host + "/logs-2026.11.28/_search?q=status:500&size=10"
	// wildcardURL searches every index of a pattern: its '*' is a byte
	// that the signer escapes in the canonical URI ("%2A") and Go sends
	// as it is, so the path signed is not the path sent.
	wildcardURL = "https://" + host + "/logs-*/_search?q=status:500"
	postURL     = "https://" + host + "/logs-2026.11.28/_doc"
	bulkURL     = "https://" + host + "/_bulk"
)

// A workload is one request, the same for every implementation.
type workload struct {
	name        string
	method      string
	url         string
	contentType string
	body        []byte // nil: no body
	hash        string // hex SHA-256 of body, precomputed for floor
	service     string // the signing name: service unless set
	// noHashHeader: nobody sends X-Amz-Content-Sha256, as prometheus/sigv4
	// never does, so that the implementations sign the same headers.
	noHashHeader bool
	// impls limits the implementations run on it (nil: all).
	impls []string
}

func (w *workload) signingName() string {
	if w.service != "" {
		return w.service
	}
	return service
}

// hashHeader reports whether the cheapest correct signing for w's service
// sends X-Amz-Content-Sha256, as kivuli's policy for it does: OpenSearch
// (es) does, the default (aps) does not.
func (w *workload) hashHeader() bool { return w.signingName() == service && !w.noHashHeader }

// transportKey is the kivuli.Transport of e.transport that w is sent with.
func (w *workload) transportKey() string {
	if w.noHashHeader {
		return w.signingName() + "/nohash"
	}
	return w.signingName()
}

func newWorkload(name, method, url, contentType string, body []byte) *workload {
	sum := sha256.Sum256(body)
	return &workload{name: name, method: method, url: url, contentType: contentType, body: body, hash: hex.EncodeToString(sum[:])}
}

// newRequest builds the request as every implementation's user does: a
// body given as a bytes.Reader, so that http.NewRequest sets GetBody and
// ContentLength.
func (w *workload) newRequest() (*http.Request, error) {
	var body io.Reader
	if w.body != nil {
		body = bytes.NewReader(w.body)
	}
	req, err := http.NewRequest(w.method, w.url, body)
	if err != nil {
		return nil, err
	}
	if w.contentType != "" {
		req.Header.Set("Content-Type", w.contentType)
	}
	return req, nil
}

var (
	getWorkload = newWorkload("GET", http.MethodGet, getURL, "", nil)
	getWildcard = newWorkload("GETWildcard", http.MethodGet, wildcardURL, "", nil)
	apsQuery    = func() *workload {
		w := newWorkload("APSQuery", http.MethodGet, apsURL, "", nil)
		w.service = apsService
		return w
	}()
	postDoc = newWorkload("POST1KiB", http.MethodPost, postURL, "application/json", jsonDoc(1<<10))

	// getSame and postSame are GET and POST1KiB with the headers that
	// prometheus/sigv4 signs: no X-Amz-Content-Sha256 (floor, kivuli with
	// an es policy of PayloadHash, prometheus/sigv4).
	getSame  = sameHeaders(newWorkload("GETSameHeaders", http.MethodGet, getURL, "", nil))
	postSame = sameHeaders(newWorkload("POST1KiBSameHeaders", http.MethodPost, postURL, "application/json", jsonDoc(1<<10)))
	body1MiB = newWorkload("Body1MiB", http.MethodPost, bulkURL, "application/x-ndjson", ndjson(1<<20))

	// body64MiB is built with the others, so every benchmark process
	// holds a live heap of about 65 MB, as a service with a moderate heap
	// does: the GC then runs about every 8,000 GETs. With a live heap of a
	// few MB it runs every few hundred, and on the VM of the results below
	// each cycle costs enough to add 60 % to every implementation's GET,
	// measuring the GC more than the signing.
	body64MiB = newWorkload("Body64MiB", http.MethodPost, bulkURL, "application/x-ndjson", ndjson(64<<20))
)

// jsonDoc returns a JSON document of exactly n bytes (n >= 64).
func jsonDoc(n int) []byte {
	head := `{"@timestamp":"2026-11-28T17:41:00Z","status":500,"message":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// ndjson returns a bulk body of exactly n bytes: index actions and
// documents, one a line.
func ndjson(n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 256)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "{\"index\":{\"_index\":\"logs-2026.11.28\",\"_id\":\"%d\"}}\n"+
			"{\"@timestamp\":\"2026-11-28T17:41:00Z\",\"status\":%d,\"bytes\":%d,\"path\":\"/api/v1/items/%d\"}\n",
			i, 200+i%5*100, i*7919%65536, i)
	}
	return b.Bytes()[:n]
}

// sink is the Base of every implementation: it reads the request body
// through a 32 KiB buffer and closes it, as net/http copies a body to the
// connection, and answers at once with a static response. So every body
// read an implementation causes is paid for, and no network is involved.
type sink struct{}

var (
	okResponse = &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Body: http.NoBody}
	sinkBufs   = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

func (sink) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		bp := sinkBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(io.Discard, readerOnly{req.Body}, *bp)
		sinkBufs.Put(bp)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	return okResponse, nil
}

// readerOnly hides WriterTo and the like, so that the body is copied
// through the buffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// env is what the implementations share: one emulator, one Credentials
// from kivuli.New, and each implementation's long-lived signer.
type env struct {
	srv    *imdstest.Server
	creds  *kivuli.Credentials
	static aws.Credentials // the same credentials, read once, for floor

	floorSigner  *sdkv4.Signer
	smithySigner *sigv4.Signer
	// One per signing name (service, apsService), as each is configured
	// for one.
	transport map[string]*kivuli.Transport
	osSigner  map[string]signer.Signer
	promRT    map[string]http.RoundTripper // prometheus/sigv4's, over base
	promCreds *endpoint                    // the endpoint serving creds to promRT
	base      http.RoundTripper
}

var (
	sharedOnce sync.Once
	shared     *env
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

func getEnv(tb testing.TB) *env {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = newEnv(sink{}) })
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

func newEnv(base http.RoundTripper) (*env, error) {
	srv := imdstest.NewServer(imdstest.Config{})
	creds, err := kivuli.New(context.Background(), kivuli.WithEndpoint(srv.URL))
	if err != nil {
		srv.Close()
		return nil, err
	}
	static, err := creds.Retrieve(context.Background())
	if err != nil {
		srv.Close()
		return nil, err
	}
	e := &env{
		srv:         srv,
		creds:       creds,
		static:      static,
		floorSigner: sdkv4.NewSigner(),
		// X-Amz-Content-Sha256 is sent by kivuli (its "es" policy), by
		// opensearch-go and by floor: smithy is asked to send it too, and
		// to sign Content-Type, so that all sign the same headers (but
		// for Content-Length, see smithyHeaderRules).
		smithySigner: sigv4.New(func(o *smithyv4.SignerOptions) {
			o.AddPayloadHashHeader = true
			o.HeaderRules = smithyHeaderRules{}
		}),
		transport: map[string]*kivuli.Transport{},
		osSigner:  map[string]signer.Signer{},
		promRT:    map[string]http.RoundTripper{},
		base:      base,
	}
	// prometheus/sigv4 reads the same kivuli.Credentials through the SDK's
	// default chain, from this endpoint: see prometheus_test.go.
	e.promCreds = credentialsEndpoint(creds, randomToken())
	for _, svc := range []string{service, apsService} {
		e.transport[svc] = &kivuli.Transport{Credentials: creds, Service: svc, Region: region, Base: base}
		// The same, signing the body's hash without sending it as a header.
		nohash := kivuli.DefaultPolicies()
		p := nohash[svc]
		p.Payload = kivuli.PayloadHash
		nohash[svc] = p
		e.transport[svc+"/nohash"] = &kivuli.Transport{Credentials: creds, Service: svc, Region: region, Base: base, Policies: nohash}
		// opensearch-go users hand it an aws.Config; its credentials are
		// the same kivuli.Credentials, so that only the signing differs.
		if e.osSigner[svc], err = awsv2.NewSignerWithService(aws.Config{Region: region, Credentials: creds}, svc); err == nil {
			e.promRT[svc], err = newPrometheus(e.promCreds, svc, base)
		}
		if err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

func (e *env) close() {
	e.promCreds.Close()
	e.creds.Close()
	e.srv.Close()
}

// An implementation sends one request of a workload, signed, to Base.
type implementation struct {
	name string
	do   func(e *env, w *workload) error
}

var implementations = []implementation{
	{"floor", (*env).floor},
	{"kivuli", (*env).kivuli},
	{"opensearch", (*env).opensearch},
	{"smithy", (*env).smithy},
	{"prometheus", (*env).prometheus},
}

// floor is the cheapest correct signing: the SDK signer called directly,
// credentials already in hand, the payload hash precomputed.
func (e *env) floor(w *workload) error {
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	if w.hashHeader() {
		req.Header.Set("X-Amz-Content-Sha256", w.hash)
	}
	if err := e.floorSigner.SignHTTP(req.Context(), e.static, req, w.hash, w.signingName(), region, time.Now()); err != nil {
		return err
	}
	return send(e.base, req)
}

// kivuli is kivuli.Transport.RoundTrip over the same Base.
func (e *env) kivuli(w *workload) error {
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	resp, err := e.transport[w.transportKey()].RoundTrip(req)
	if err != nil {
		return err
	}
	return check(resp)
}

// opensearch is opensearch-go's signer/awsv2, as its client calls it before
// sending: SignRequest reads the body fully to hash it and puts a buffer
// in its place.
func (e *env) opensearch(w *workload) error {
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	if err := e.osSigner[w.signingName()].SignRequest(req); err != nil {
		return err
	}
	return send(e.base, req)
}

// smithy is aws-http-auth's sigv4 signer. It hashes only an io.Seeker body
// itself (http.NewRequest's is not one), so its users hash the body
// themselves: here as kivuli does, streaming a fresh copy from GetBody, so
// that it is charged for no buffer.
func (e *env) smithy(w *workload) error {
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	h := sha256.New()
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return err
		}
		_, err = io.Copy(h, body)
		body.Close()
		if err != nil {
			return err
		}
	}
	var sum [sha256.Size]byte
	v, err := e.creds.Retrieve(req.Context())
	if err != nil {
		return err
	}
	err = e.smithySigner.SignRequest(&sigv4.SignRequestInput{
		Request:     req,
		PayloadHash: h.Sum(sum[:0]),
		Credentials: credentials.Credentials{
			AccessKeyID:     v.AccessKeyID,
			SecretAccessKey: v.SecretAccessKey,
			SessionToken:    v.SessionToken,
			Expires:         v.Expires,
		},
		Service: w.signingName(),
		Region:  region,
		Time:    time.Now(),
	})
	if err != nil {
		return err
	}
	return send(e.base, req)
}

// prometheus is prometheus/sigv4's RoundTripper over the same Base. It
// copies the body (from GetBody when set) into a pooled bytes.Buffer,
// hashes the buffer, and sends it as the body, returning it to the pool
// when the body is closed.
func (e *env) prometheus(w *workload) error {
	req, err := w.newRequest()
	if err != nil {
		return err
	}
	resp, err := e.promRT[w.signingName()].RoundTrip(req)
	if err != nil {
		return err
	}
	return check(resp)
}

// smithyHeaderRules signs what smithy signs by default (host and x-amz-*)
// and content-type, as the other implementations do. smithy signs only
// headers in Request.Header, where Content-Length is not, so it signs one
// header fewer than the others on a request with a body: in its favour.
type smithyHeaderRules struct{}

func (smithyHeaderRules) IsSigned(h string) bool {
	return h == "host" || h == "content-type" || strings.HasPrefix(h, "x-amz-")
}

func send(base http.RoundTripper, req *http.Request) error {
	resp, err := base.RoundTrip(req)
	if err != nil {
		return err
	}
	return check(resp)
}

func check(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func sameHeaders(w *workload) *workload {
	w.noHashHeader, w.impls = true, []string{"floor", "kivuli", "prometheus"}
	return w
}

// runImpls runs one sub-benchmark per implementation on w, and with
// rawSHA256 a reference that only hashes the body with crypto/sha256.
// With peakHeap, each also reports the extra heap of one request.
func runImpls(b *testing.B, w *workload, rawSHA256, peakHeap bool) {
	e := getEnv(b)
	warmUp(b, e, w)
	for _, im := range rotation() {
		if w.impls != nil && !slices.Contains(w.impls, im.name) {
			continue
		}
		b.Run("impl="+im.name, func(b *testing.B) {
			if w.body != nil {
				b.SetBytes(int64(len(w.body)))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := im.do(e, w); err != nil {
					b.Fatal(err)
				}
			}
			if peakHeap {
				b.ReportMetric(float64(measurePeakHeap(b, func() error { return im.do(e, w) })), "peak-heap-B/op")
			}
		})
	}
	if rawSHA256 {
		b.Run("impl=raw-sha256", func(b *testing.B) {
			b.SetBytes(int64(len(w.body)))
			b.ReportAllocs()
			var sum [sha256.Size]byte
			for b.Loop() {
				sum = sha256.Sum256(w.body)
			}
			if sum == ([sha256.Size]byte{}) {
				b.Fatal("no hash")
			}
			if peakHeap {
				b.ReportMetric(float64(measurePeakHeap(b, func() error { sha256.Sum256(w.body); return nil })), "peak-heap-B/op")
			}
		})
	}
}

// warmUpTime is how long each implementation runs w, untimed, before any
// is measured.
const warmUpTime = 50 * time.Millisecond

// warmUp runs every implementation on w for warmUpTime (at least once)
// before the timed sub-benchmarks. Without it the first sub-benchmark of a
// process pays alone for growing the heap into memory the process has
// never touched, and on a VM each first touch of a page is a fault the
// host serves: on the 2-CPU VM of the results below, the implementation
// that ran first measured about twice as slow as in a later round,
// whichever one it was, for its whole timed run.
func warmUp(b *testing.B, e *env, w *workload) {
	for _, im := range implementations {
		if w.impls != nil && !slices.Contains(w.impls, im.name) {
			continue
		}
		for start := time.Now(); ; {
			if err := im.do(e, w); err != nil {
				b.Fatalf("warm-up, %s: %v", im.name, err)
			}
			if time.Since(start) >= warmUpTime {
				break
			}
		}
	}
}

// rotation returns the implementations in the order to run them in: in
// round KIVULI_BENCH_ROUND (run.sh's loop counter, default 0) the order
// starts that many further along, so that over a multiple of five rounds
// each implementation runs first equally often (the first sub-benchmark of
// a run warms caches and the heap for the others). go test -count N
// repeats each sub-benchmark N times back to back, so run.sh runs N rounds
// of -count 1 instead, spreading every implementation's samples over the
// whole run: on a shared VM, a slow few seconds then no longer land on one
// implementation. benchstat's columns keep a fixed order.
func rotation() []implementation {
	round, _ := strconv.Atoi(os.Getenv("KIVULI_BENCH_ROUND"))
	k := (round%len(implementations) + len(implementations)) % len(implementations)
	return append(implementations[k:len(implementations):len(implementations)], implementations[:k]...)
}

// BenchmarkGET: a search GET with a query, no body.
func BenchmarkGET(b *testing.B) { runImpls(b, getWorkload, false, false) }

// BenchmarkGETSameHeaders and BenchmarkPOST1KiBSameHeaders are GET and
// POST1KiB where floor, kivuli and prometheus/sigv4 sign the same headers
// (prometheus/sigv4 sends no X-Amz-Content-Sha256, which kivuli's es
// policy does).
func BenchmarkGETSameHeaders(b *testing.B) { runImpls(b, getSame, false, false) }

func BenchmarkPOST1KiBSameHeaders(b *testing.B) { runImpls(b, postSame, false, false) }

// BenchmarkGETWildcard: an OpenSearch search of an index pattern, with a
// '*' in the path, which the signer escapes in the canonical URI and Go
// sends as it is.
func BenchmarkGETWildcard(b *testing.B) { runImpls(b, getWildcard, false, false) }

// BenchmarkAPSQuery: a PromQL query to a Managed Prometheus workspace,
// prometheus/sigv4's own service, where kivuli's policy (the default)
// sends no X-Amz-Content-Sha256 either.
func BenchmarkAPSQuery(b *testing.B) { runImpls(b, apsQuery, false, false) }

// BenchmarkPOST1KiB: a 1 KiB JSON document.
func BenchmarkPOST1KiB(b *testing.B) { runImpls(b, postDoc, false, false) }

// BenchmarkBody1MiB: a 1 MiB bulk body.
func BenchmarkBody1MiB(b *testing.B) { runImpls(b, body1MiB, true, false) }

// BenchmarkBody64MiB: a 64 MiB bulk body, with the extra heap of signing.
func BenchmarkBody64MiB(b *testing.B) { runImpls(b, body64MiB, true, true) }

// uploads is how many 64 MiB uploads BenchmarkUpload4x64MiB runs at once.
const uploads = 4

// BenchmarkUpload4x64MiB: four 64 MiB uploads at once through each
// implementation, and the peak heap they make the process hold
// (peak-heap-B/op). A buffer taken from a sync.Pool is not counted by
// B/op once the pool holds it, but it is heap the process holds: four
// uploads at once hold four.
func BenchmarkUpload4x64MiB(b *testing.B) {
	e := getEnv(b)
	warmUp(b, e, body64MiB)
	for _, im := range rotation() {
		b.Run("impl="+im.name, func(b *testing.B) {
			b.SetBytes(uploads * int64(len(body64MiB.body)))
			b.ReportAllocs()
			op := func() error { return concurrently(uploads, func() error { return im.do(e, body64MiB) }) }
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(measurePeakHeap(b, op)), "peak-heap-B/op")
		})
	}
}

// concurrently runs n calls of f at once and returns the first error.
func concurrently(n int, f func() error) error {
	errs := make(chan error, n)
	for range n {
		go func() { errs <- f() }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// BenchmarkGETParallel: the GET from GOMAXPROCS goroutines at once.
func BenchmarkGETParallel(b *testing.B) {
	e := getEnv(b)
	warmUp(b, e, getWorkload)
	for _, im := range rotation() {
		b.Run("impl="+im.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := im.do(e, getWorkload); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRetrieve: the credential read path, credentials fresh.
func BenchmarkRetrieve(b *testing.B) {
	e := getEnv(b)
	ctx := context.Background()
	b.Run("impl=kivuli", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.creds.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRetrieveParallel: the credential read path from GOMAXPROCS
// goroutines at once.
func BenchmarkRetrieveParallel(b *testing.B) {
	e := getEnv(b)
	ctx := context.Background()
	b.Run("impl=kivuli", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.creds.Retrieve(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// measurePeakHeap returns the most heap, above what was in use before, that
// was in use while op ran, the largest of three runs.
//
// A second goroutine samples runtime/metrics' count of bytes in heap
// objects (HeapAlloc, without stopping the world) as fast as it can while
// op runs on this one. That count includes objects already garbage but not
// yet swept, which is heap the process must still hold: so it is the peak
// of what op makes the heap carry, whereas the TotalAlloc difference that
// B/op reports sums every allocation, even those dead before the next one
// (io.ReadAll's growing buffers), and a HeapAlloc difference before/after
// misses what was freed by a collection in between. Sampling can miss a
// spike shorter than a sample (a few microseconds): the heap sampled after
// op returns is counted too, and B/op stays an upper bound.
func measurePeakHeap(b *testing.B, op func() error) uint64 {
	b.Helper()
	var peak uint64
	for range 3 {
		p, err := peakHeapOnce(op)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, p)
	}
	return peak
}

func peakHeapOnce(op func() error) (uint64, error) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	// Two collections: the first moves what sync.Pools hold to their
	// victim caches, the second frees it. A pooled buffer that op takes
	// again is then allocated again and counted, as it is heap the process
	// holds while op runs; after one collection it would be in the
	// baseline, and the peak would hide it.
	runtime.GC()
	runtime.GC()
	before := read()
	stop := make(chan struct{})
	result := make(chan uint64)
	started := make(chan struct{})
	go func() {
		peak := before
		close(started)
		for {
			select {
			case <-stop:
				result <- max(peak, read())
				return
			default:
				peak = max(peak, read())
			}
		}
	}()
	<-started
	err := op()
	close(stop)
	peak := <-result
	if peak < before {
		return 0, err
	}
	return peak - before, err
}

// TestImplementationsSignValidRequests checks that the implementations
// send requests that an independent SigV4 verifier accepts, with the same
// signed headers but for the exceptions named, so that the benchmarks
// compare like with like.
func TestImplementationsSignValidRequests(t *testing.T) {
	var (
		mu   sync.Mutex
		sent []*http.Request
	)
	capture := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		sent = append(sent, req)
		mu.Unlock()
		return okResponse, nil
	})
	e, err := newEnv(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	v := &sigv4test.Verifier{Secrets: sigv4test.Lookup(e.srv.Lookup)}
	for _, w := range []*workload{getWorkload, getWildcard, apsQuery, postDoc, body1MiB} {
		for _, im := range implementations {
			t.Run(w.name+"/impl="+im.name, func(t *testing.T) {
				sent = nil
				if err := im.do(e, w); err != nil {
					t.Fatal(err)
				}
				if len(sent) != 1 {
					t.Fatalf("%d requests sent, want 1", len(sent))
				}
				rec := v.Verify(sent[0])
				if rec.Err != nil {
					t.Fatal(rec.Err)
				}
				// X-Amz-Content-Sha256: kivuli sends it where its policy
				// says (es, not aps), floor likewise; opensearch-go always,
				// smithy as configured here; prometheus/sigv4 never (the
				// SDK signer adds none, and it adds none itself).
				sendsHash := true
				switch im.name {
				case "kivuli", "floor":
					sendsHash = w.hashHeader()
				case "prometheus":
					sendsHash = false
				}
				if rec.BodyLen != int64(len(w.body)) || rec.PayloadHash != w.hash || rec.ContentSHA256 != sendsHash {
					t.Errorf("body %d bytes, payload hash %s, X-Amz-Content-Sha256 sent %v; want %d bytes, %s, sent %v",
						rec.BodyLen, rec.PayloadHash, rec.ContentSHA256, len(w.body), w.hash, sendsHash)
				}
				_, hostPath, _ := strings.Cut(w.url, "://")
				if want, _, _ := strings.Cut(hostPath[strings.IndexByte(hostPath, '/'):], "?"); rec.Path != want {
					t.Errorf("path sent %s, want %s", rec.Path, want)
				}
				if rec.AccessKeyID != e.static.AccessKeyID || rec.Service != w.signingName() || rec.Region != region {
					t.Errorf("signed with %s for %s in %s, want kivuli's %s for %s in %s",
						rec.AccessKeyID, rec.Service, rec.Region, e.static.AccessKeyID, w.signingName(), region)
				}
				if rec.Token != sigv4test.HeaderSigned {
					t.Errorf("token %v, want %v", rec.Token, sigv4test.HeaderSigned)
				}
				want := "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
				if !sendsHash {
					want = "host;x-amz-date;x-amz-security-token"
				}
				switch {
				case w.body != nil && im.name == "smithy": // see smithyHeaderRules
					want = "content-type;" + want
				case w.body != nil:
					want = "content-length;content-type;" + want
				}
				if got := strings.ToLower(strings.Join(rec.SignedHeaders, ";")); got != want {
					t.Errorf("signed headers %s, want %s", got, want)
				}
				t.Logf("signed headers %v", rec.SignedHeaders)
			})
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
