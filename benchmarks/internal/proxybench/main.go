// Command proxybench measures signing reverse proxies side by side: kivuli
// proxy and aws-sigv4-proxy, each as a process of its own, in front of the
// same loopback upstream, which checks every request's signature with
// sigv4test (bodies as they stream, chunk signatures and payload hashes,
// so that the upstream holds no body).
//
// Workloads, each repeated -reps times with the proxies interleaved (the
// order alternates from one repetition to the next):
//
//   - small GETs from 1, 16 and 64 concurrent clients for -duration each:
//     requests per second, p50 and p99 latency;
//   - a -size upload (S3 PutObject) and a -size download (GetObject):
//     throughput, time to first byte, and the proxy's peak RSS (VmHWM
//     from /proc/PID/status, a fresh process for each);
//   - a streamed answer, one server-sent event per 100 ms for 10 events:
//     time to the first byte and to the last.
//
// Usage (run-proxy.sh builds the binaries):
//
//	proxybench -kivuli PATH [-asp PATH] [-reps 3] [-duration 5s] [-size 1GiB] [-readme README.md]
//
// Without -asp (or $ASP_BIN), aws-sigv4-proxy is left out.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kivuli-go/kivuli/sigv4test"
)

// The credentials both proxies sign with, from their environment, and
// the upstream knows.
var creds = sigv4test.Credentials{
	AccessKeyID:     "ASIAPROXYBENCHEXAMPLE",
	SecretAccessKey: "proxybenchSecretKey/ExampleOnly+NotARealOne0",
	SessionToken:    "IQoJb3JpZ2luX2VjEProxyBenchSessionTokenExampleOnly//+Zm9yIGJlbmNobWFya3Mgb25seQ==",
}

const region = "eu-west-2"

// The hosts signed for: an OpenSearch domain for small GETs, a bucket for
// the large bodies, Bedrock for the stream.
const (
	esHost      = "search-bench-abc.eu-west-2.es.amazonaws.com"
	s3Host      = "bench-bucket.s3.eu-west-2.amazonaws.com"
	bedrockHost = "bedrock-runtime.eu-west-2.amazonaws.com"
)

func main() {
	kivuliBin := flag.String("kivuli", os.Getenv("KIVULI_BIN"), "the kivuli binary (default $KIVULI_BIN)")
	aspBin := flag.String("asp", os.Getenv("ASP_BIN"), "the aws-sigv4-proxy binary (default $ASP_BIN; none: left out)")
	reps := flag.Int("reps", 3, "repetitions of every workload")
	duration := flag.Duration("duration", 5*time.Second, "the length of each small-GET run")
	sizeFlag := flag.String("size", "1GiB", "the size of the upload and the download")
	readme := flag.String("readme", "", "rewrite the proxy section of this README (between its markers)")
	extra := flag.String("kivuli-args", "", "more arguments for kivuli proxy, space-separated (for experiments)")
	floorBin := flag.String("floor", os.Getenv("FLOOR_BIN"), "the floor proxy (internal/floorproxy) binary (default $FLOOR_BIN; none: left out)")
	noise := flag.Bool("noise", false, "measure a second kivuli proxy too, the noise band: the two differ only by chance")
	baseline := flag.String("baseline", "", "another kivuli binary to measure beside -kivuli, e.g. a build of the code before a change")
	command := flag.String("command", strings.Join(os.Args, " "), "the command line to print in the report")
	only := flag.String("only", "", "measure only these workloads, comma-separated: get1, get16, get64, upload, download, stream (for experiments; default all)")
	flag.Parse()
	wanted, err := parseWorkloads(*only)
	if err != nil {
		log.Fatalf("proxybench: -only: %v", err)
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || *kivuliBin == "" || *reps < 1 {
		log.Fatalf("proxybench: -kivuli PATH required, -size a size (%v), -reps at least 1", err)
	}
	up, err := startUpstream(size)
	if err != nil {
		log.Fatal(err)
	}
	proxies := []*proxyKind{{name: "kivuli proxy", bin: *kivuliBin, args: func(listen, upstream, signHost, service string) []string {
		return append(kivuliArgs(listen, upstream, signHost, service), strings.Fields(*extra)...)
	}}}
	if *baseline != "" {
		proxies = append(proxies, &proxyKind{name: "kivuli proxy (baseline)", bin: *baseline, args: kivuliArgs})
	}
	if *noise {
		proxies = append(proxies, &proxyKind{name: kivuliAgain, bin: proxies[0].bin, args: proxies[0].args})
	}
	if *aspBin != "" {
		proxies = append(proxies, &proxyKind{name: "aws-sigv4-proxy", bin: *aspBin, args: aspArgs})
	}
	if *floorBin != "" {
		proxies = append(proxies, &proxyKind{name: "floor", bin: *floorBin, args: floorArgs})
	}
	start := time.Now()
	loadBefore := loadAverage()
	res := newResults()
	for rep := range *reps {
		order := slices.Clone(proxies)
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			log.Printf("rep %d/%d: %s (load %s)", rep+1, *reps, p.name, loadAverage())
			if err := runAll(p, up, res, *duration, size, wanted); err != nil {
				log.Printf("%s: %v", p.name, err)
				res.failed(p.name, err)
			}
		}
	}
	if n := up.rejected.Load(); n > 0 {
		log.Printf("the upstream rejected %d requests: %s", n, up.firstRejection())
	}
	report := res.markdown(proxies, reportInfo{
		reps: *reps, duration: *duration, size: size, elapsed: time.Since(start).Round(time.Second),
		loadBefore: loadBefore, loadAfter: loadAverage(), rejected: up.rejected.Load(), accepted: up.accepted.Load(),
		command: *command,
	})
	fmt.Print(report)
	if *readme != "" {
		if err := rewriteSection(*readme, report); err != nil {
			log.Fatal(err)
		}
	}
}

// workloads are the names -only takes.
var workloads = []string{"get1", "get16", "get64", "upload", "download", "stream"}

// parseWorkloads reads -only: a set of workloads, all of them when empty.
func parseWorkloads(only string) (map[string]bool, error) {
	wanted := make(map[string]bool)
	if only == "" {
		for _, w := range workloads {
			wanted[w] = true
		}
		return wanted, nil
	}
	for w := range strings.SplitSeq(only, ",") {
		if !slices.Contains(workloads, w) {
			return nil, fmt.Errorf("%q is not one of %s", w, strings.Join(workloads, ", "))
		}
		wanted[w] = true
	}
	return wanted, nil
}

// runAll runs every wanted workload once against a proxy of kind p.
func runAll(p *proxyKind, up *upstream, res *results, d time.Duration, size int64, wanted map[string]bool) error {
	// Small GETs: one process for the three concurrencies.
	proc, err := p.start(up, esHost, "es")
	if err != nil {
		return err
	}
	for _, c := range []int{1, 16, 64} {
		if !wanted[fmt.Sprintf("get%d", c)] {
			continue
		}
		cpu0 := proc.cpuSeconds()
		rps, p50, p99, n, err := smallGETs(proc.url+"/logs-2026.12.01/_search?q=status:500&size=10", c, d)
		if err != nil {
			proc.stop()
			return fmt.Errorf("small GETs, %d clients: %w", c, err)
		}
		res.add(p.name, fmt.Sprintf("get%d.cpu", c), (proc.cpuSeconds()-cpu0)/float64(n)*1e6)
		res.add(p.name, fmt.Sprintf("get%d.rps", c), rps)
		res.add(p.name, fmt.Sprintf("get%d.p50", c), p50)
		res.add(p.name, fmt.Sprintf("get%d.p99", c), p99)
	}
	proc.stop()

	// The upload and the download, each in a fresh process for its peak RSS.
	for _, w := range []string{"upload", "download"} {
		if !wanted[w] {
			continue
		}
		proc, err := p.start(up, s3Host, "s3")
		if err != nil {
			return err
		}
		var mibs, ttfb float64
		if w == "upload" {
			mibs, err = upload(proc.url+"/objects/big.bin", size)
		} else {
			mibs, ttfb, err = download(proc.url+"/objects/big.bin", size)
		}
		rss := proc.peakRSS()
		proc.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
		res.add(p.name, w+".mibs", mibs)
		res.add(p.name, w+".rss", rss)
		if w == "download" {
			res.add(p.name, w+".ttfb", ttfb)
		}
	}

	if !wanted["stream"] {
		return nil
	}
	proc, err = p.start(up, bedrockHost, "bedrock")
	if err != nil {
		return err
	}
	first, last, err := stream(proc.url + "/model/bench/invoke-with-response-stream")
	proc.stop()
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	res.add(p.name, "stream.first", first)
	res.add(p.name, "stream.last", last)
	return nil
}

// proxyKind is one of the proxies measured.
type proxyKind struct {
	name string
	bin  string
	args func(listen, upstream, signHost, service string) []string
}

func kivuliArgs(listen, upstream, signHost, service string) []string {
	return []string{"proxy", "--source", "chain", "--listen", listen, "--admin", "",
		"--upstream", "http://" + upstream, "--allow-host", upstream,
		"--sign-host", signHost, "--service", service, "--region", region}
}

// kivuliAgain is the name of the second kivuli proxy of a -noise run.
const kivuliAgain = "kivuli proxy (again)"

func floorArgs(listen, upstream, signHost, service string) []string {
	return []string{"--listen", listen, "--upstream", "http://" + upstream,
		"--sign-host", signHost, "--service", service, "--region", region}
}

func aspArgs(listen, upstream, signHost, service string) []string {
	return []string{"--port", listen, "--host", upstream, "--upstream-url-scheme", "http",
		"--sign-host", signHost, "--name", service, "--region", region}
}

// proc is a proxy process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	home string // its HOME, and its standard error
}

// start runs the proxy for signHost and waits until it accepts
// connections.
func (p *proxyKind) start(up *upstream, signHost, service string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := "127.0.0.1:" + port
	cmd := exec.Command(p.bin, p.args(listen, up.addr, signHost, service)...)
	home, _ := os.MkdirTemp("", "proxybench-home-")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + creds.SessionToken, "AWS_REGION=" + region,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
	}
	// Standard error to a file, not a pipe: a pipe needs a goroutine of
	// this process to drain it, which would take CPU from the proxy under
	// test on a small machine (kivuli proxy writes an access log line per
	// request; aws-sigv4-proxy writes nothing).
	logFile, err := os.CreateTemp(home, "stderr-")
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd.Stdout, cmd.Stderr = nil, logFile
	stderr := func() string {
		b, _ := os.ReadFile(logFile.Name())
		return string(b[:min(len(b), 8<<10)])
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			cmd.Process.Kill()
			cmd.Wait()
			msg := stderr()
			os.RemoveAll(home)
			return nil, fmt.Errorf("%s did not start: %v\n%s", p.name, err, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &proc{cmd: cmd, url: "http://" + listen, home: home}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
	os.RemoveAll(p.home)
}

// cpuSeconds is the CPU time the process has used, user and system, from
// /proc/PID/stat (in clock ticks of 1/100 s).
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// peakRSS is the process's VmHWM, in MiB.
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return -1
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// smallGETs runs c clients sending GETs to url for d, after a warm-up,
// and returns the requests per second, the p50 and p99 latencies in
// milliseconds, and the number of requests sent (the warm-up's included).
func smallGETs(url string, c int, d time.Duration) (rps, p50, p99 float64, n int, err error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, DisableCompression: true}}
	defer client.CloseIdleConnections()
	run := func(d time.Duration, record bool) ([]time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var (
			mu   sync.Mutex
			all  []time.Duration
			errs []error
			wg   sync.WaitGroup
		)
		for range c {
			wg.Go(func() {
				var lat []time.Duration
				for ctx.Err() == nil {
					t0 := time.Now()
					resp, err := client.Get(url)
					if err != nil {
						if ctx.Err() == nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						mu.Lock()
						errs = append(errs, fmt.Errorf("status %d", resp.StatusCode))
						mu.Unlock()
						return
					}
					if record && ctx.Err() == nil {
						lat = append(lat, time.Since(t0))
					}
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return all, errors.Join(errs...)
	}
	warm, err := run(d/5, true)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	t0 := time.Now()
	lat, err := run(d, true)
	elapsed := time.Since(t0)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if len(lat) == 0 {
		return 0, 0, 0, 0, errors.New("no request completed")
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	return float64(len(lat)) / elapsed.Seconds(), ms(0.50), ms(0.99), len(warm) + len(lat), nil
}

// pattern is the content of the large bodies: a repeated 256 KiB block,
// cheap to produce at any size.
var pattern = func() []byte {
	b := make([]byte, 256<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// patternReader reads n bytes of pattern.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := copy(p[:min(int64(len(p)), r.n-r.off)], pattern[r.off%int64(len(pattern)):])
	r.off += int64(k)
	return k, nil
}

// upload PUTs size bytes and returns the throughput in MiB/s.
func upload(url string, size int64) (float64, error) {
	req, err := http.NewRequest(http.MethodPut, url, &patternReader{n: size})
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	return float64(size) / (1 << 20) / time.Since(t0).Seconds(), nil
}

// download GETs size bytes and returns the throughput in MiB/s and the
// time to the first byte of the body in milliseconds.
func download(url string, size int64) (mibs, ttfb float64, err error) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	t0 := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	if _, err := br.Peek(1); err != nil {
		return 0, 0, err
	}
	ttfb = float64(time.Since(t0)) / 1e6
	n, err := io.Copy(io.Discard, br)
	if err != nil || n != size {
		return 0, 0, fmt.Errorf("%d bytes of %d: %v", n, size, err)
	}
	return float64(size) / (1 << 20) / time.Since(t0).Seconds(), ttfb, nil
}

// streamEvents and streamEvery are the streamed answer: one event per
// 100 ms.
const (
	streamEvents = 10
	streamEvery  = 100 * time.Millisecond
)

// stream POSTs to the streaming endpoint and returns the times to the
// first and the last byte of the answer, in milliseconds.
func stream(url string) (first, last float64, err error) {
	t0 := time.Now()
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"prompt":"hello"}`))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.Peek(1); err != nil {
		return 0, 0, err
	}
	first = float64(time.Since(t0)) / 1e6
	b, err := io.ReadAll(br)
	if err != nil {
		return 0, 0, err
	}
	if n := strings.Count(string(b), "data: "); n != streamEvents {
		return 0, 0, fmt.Errorf("%d events, want %d", n, streamEvents)
	}
	return first, float64(time.Since(t0)) / 1e6, nil
}

// upstream is the loopback endpoint both proxies forward to: it checks
// every signature, and serves the workloads.
type upstream struct {
	addr               string
	size               int64
	verifier           *sigv4test.Verifier
	accepted, rejected atomic.Int64
	mu                 sync.Mutex
	firstErr           string
}

func startUpstream(size int64) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String(), size: size, verifier: newVerifier()}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return u, nil
}

// newVerifier checks signatures made with creds.
func newVerifier() *sigv4test.Verifier {
	return &sigv4test.Verifier{Secrets: sigv4test.Static(creds)}
}

func (u *upstream) firstRejection() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.firstErr
}

func (u *upstream) reject(w http.ResponseWriter, msg string) {
	u.rejected.Add(1)
	u.mu.Lock()
	if u.firstErr == "" {
		u.firstErr = msg
	}
	u.mu.Unlock()
	http.Error(w, msg, http.StatusForbidden)
}

// ServeHTTP checks the request, then answers it: its head at once and its
// body as it is read (sigv4test's VerifyStream: an aws-chunked upload
// chunk by chunk, with its trailer; a hashed body's hash at its end; an
// UNSIGNED-PAYLOAD body counted), so that the upstream holds no body and
// the upload's throughput is the proxy's.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, err := u.verifier.VerifyStream(r)
	if err == nil && r.ContentLength != 0 {
		buf := bodyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(writerOnly{io.Discard}, r.Body, *buf)
		bodyBufs.Put(buf)
	}
	if err != nil {
		u.reject(w, err.Error())
		return
	}
	u.serve(w, r)
}

// bodyBufs hold the buffers the upstream reads bodies with, in reads as
// large as the proxies write.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// serve answers a request whose signature holds.
func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.accepted.Add(1)
	switch {
	case r.Method == http.MethodPut:
		io.WriteString(w, "")
	case strings.HasPrefix(r.URL.Path, "/objects/"):
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(u.size, 10))
		io.CopyBuffer(writerOnly{w}, &patternReader{n: u.size}, make([]byte, 256<<10))
	case strings.HasPrefix(r.URL.Path, "/model/"):
		w.Header().Set("Content-Type", "text/event-stream")
		flusher := http.NewResponseController(w)
		for i := range streamEvents {
			time.Sleep(streamEvery)
			fmt.Fprintf(w, "data: {\"chunk\":%d}\n\n", i)
			flusher.Flush()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"took":3,"timed_out":false,"hits":{"total":{"value":0},"hits":[]}}`)
	}
}

type writerOnly struct{ io.Writer }

// results holds every measurement, by proxy and metric.
type results struct {
	m      map[string]map[string][]float64
	errors map[string][]string
}

func newResults() *results {
	return &results{m: map[string]map[string][]float64{}, errors: map[string][]string{}}
}

func (r *results) add(proxy, metric string, v float64) {
	if r.m[proxy] == nil {
		r.m[proxy] = map[string][]float64{}
	}
	r.m[proxy][metric] = append(r.m[proxy][metric], v)
}

func (r *results) failed(proxy string, err error) {
	r.errors[proxy] = append(r.errors[proxy], strings.SplitN(err.Error(), "\n", 2)[0])
}

// summary is the median of a metric's samples and their range.
func summary(v []float64) (median, lo, hi float64, ok bool) {
	if len(v) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Sorted(slices.Values(v))
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return median, s[0], s[len(s)-1], true
}

type reportInfo struct {
	reps                  int
	duration              time.Duration
	size                  int64
	elapsed               time.Duration
	loadBefore, loadAfter string
	accepted, rejected    int64
	command               string
}

// rows are the table's lines: a label, the metric, its unit and format.
var rows = []struct{ label, metric, unit, format string }{
	{"small GET, 1 client", "get1.rps", "req/s", "%.0f"},
	{"small GET, 1 client: p50", "get1.p50", "ms", "%.2f"},
	{"small GET, 1 client: p99", "get1.p99", "ms", "%.2f"},
	{"small GET, 1 client: proxy CPU per request", "get1.cpu", "µs", "%.0f"},
	{"small GET, 16 clients", "get16.rps", "req/s", "%.0f"},
	{"small GET, 16 clients: p50", "get16.p50", "ms", "%.2f"},
	{"small GET, 16 clients: p99", "get16.p99", "ms", "%.2f"},
	{"small GET, 16 clients: proxy CPU per request", "get16.cpu", "µs", "%.0f"},
	{"small GET, 64 clients", "get64.rps", "req/s", "%.0f"},
	{"small GET, 64 clients: p50", "get64.p50", "ms", "%.2f"},
	{"small GET, 64 clients: p99", "get64.p99", "ms", "%.2f"},
	{"small GET, 64 clients: proxy CPU per request", "get64.cpu", "µs", "%.0f"},
	{"upload (S3 PUT): throughput", "upload.mibs", "MiB/s", "%.0f"},
	{"upload: proxy peak RSS", "upload.rss", "MiB", "%.0f"},
	{"download (S3 GET): throughput", "download.mibs", "MiB/s", "%.0f"},
	{"download: time to first byte", "download.ttfb", "ms", "%.0f"},
	{"download: proxy peak RSS", "download.rss", "MiB", "%.0f"},
	{"stream (1 event / 100 ms): time to first byte", "stream.first", "ms", "%.0f"},
	{"stream: time to last byte", "stream.last", "ms", "%.0f"},
}

func (r *results) markdown(proxies []*proxyKind, info reportInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "_Written by `run-proxy.sh`; do not edit by hand between the markers._\n\n")
	fmt.Fprintf(&b, "- Date: %s; the run took %s; %s, %d CPUs\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), info.elapsed, runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s\n", info.loadBefore, info.loadAfter)
	fmt.Fprintf(&b, "- %d repetitions, proxies interleaved; small GETs for %s each; upload and download of %s\n", info.reps, info.duration, formatSize(info.size))
	fmt.Fprintf(&b, "- The upstream accepted %d requests and rejected %d\n", info.accepted, info.rejected)
	fmt.Fprintf(&b, "- Command: `%s`\n\n", info.command)
	b.WriteString("Median of the repetitions, with the range (min–max) in brackets.\n\n")
	b.WriteString("| workload |")
	for _, p := range proxies {
		b.WriteString(" " + p.name + " |")
	}
	b.WriteString("\n|---|")
	for range proxies {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		label := row.label
		if row.metric == "upload.mibs" || row.metric == "download.mibs" {
			label = strings.Replace(label, "upload", formatSize(info.size)+" upload", 1)
			label = strings.Replace(label, "download", formatSize(info.size)+" download", 1)
		}
		fmt.Fprintf(&b, "| %s (%s) |", label, row.unit)
		for _, p := range proxies {
			med, lo, hi, ok := summary(r.m[p.name][row.metric])
			if !ok {
				b.WriteString(" n/a |")
				continue
			}
			f := row.format
			fmt.Fprintf(&b, " "+f+" ("+f+"–"+f+") |", med, lo, hi)
		}
		b.WriteString("\n")
	}
	r.ratios(&b, proxies)
	for _, p := range proxies {
		for _, e := range r.errors[p.name] {
			fmt.Fprintf(&b, "\n- %s failed a repetition: %s", p.name, e)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// ratios writes kivuli proxy's figures over each other proxy's, per
// repetition (the proxies of a repetition ran one after the other, so a
// change in the machine's load touches both), as their median and range.
// Against "kivuli proxy (again)" the ratios are the noise band: what two
// identical proxies differ by in this run.
func (r *results) ratios(b *strings.Builder, proxies []*proxyKind) {
	if len(proxies) < 2 {
		return
	}
	kivuli := proxies[0].name
	b.WriteString("\nkivuli proxy over each, per repetition: median (min–max). Requests/s: above 1 is kivuli ahead; latency and CPU: below 1 is.\n\n| workload |")
	for _, p := range proxies[1:] {
		b.WriteString(" ÷ " + p.name + " |")
	}
	b.WriteString("\n|---|")
	for range proxies[1:] {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		if !strings.HasPrefix(row.metric, "get") {
			continue
		}
		fmt.Fprintf(b, "| %s |", row.label)
		for _, p := range proxies[1:] {
			k, o := r.m[kivuli][row.metric], r.m[p.name][row.metric]
			var q []float64
			for i := range min(len(k), len(o)) {
				if o[i] > 0 {
					q = append(q, k[i]/o[i])
				}
			}
			med, lo, hi, ok := summary(q)
			if !ok {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(b, " %.2fx (%.2f–%.2f) |", med, lo, hi)
		}
		b.WriteString("\n")
	}
}

const (
	beginMarker = "<!-- proxy-results:begin -->"
	endMarker   = "<!-- proxy-results:end -->"
)

// rewriteSection replaces the text between the markers of path.
func rewriteSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + section + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

// parseSize reads 1GiB, 100MiB, 512KiB or a number of bytes.
func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
