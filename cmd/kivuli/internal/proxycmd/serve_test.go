package proxycmd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// On SIGTERM the proxy stops accepting connections, answers 503 on
// /readyz, lets the request in flight finish, and exits 0; past
// --drain-timeout it ends what is left and exits 0 all the same.
func TestProxyDrainsOnSIGTERM(t *testing.T) {
	arrived := make(chan string, 4)
	release := make(chan struct{})
	f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	}))
	for _, c := range []struct {
		name    string
		timeout string
		finish  bool // the upstream answers during the drain
	}{
		{"drained", "30s", true},
		{"timed out", "200ms", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProxyProcess(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--drain-timeout", c.timeout)
			type result struct {
				status int
				body   string
				err    error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := http.Get(p.url + "/logs/_search")
				if err != nil {
					got <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{resp.StatusCode, string(b), err}
			}()
			select {
			case <-arrived:
			case <-time.After(wiretest.FailAfter):
				t.Fatal("the request did not reach the upstream")
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			p.waitLine(t, "not accepting connections")
			if c.finish {
				resp, err := http.Get(p.admin + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "draining") {
					t.Errorf("/readyz while draining: %d %s", resp.StatusCode, b)
				}
				if _, err := http.Get(p.url + "/logs/_count"); err == nil {
					t.Error("a new connection was accepted while draining")
				}
				release <- struct{}{}
				r := <-got
				if r.err != nil || r.status != http.StatusOK || r.body != "done" {
					t.Errorf("the request in flight: %d %q %v", r.status, r.body, r.err)
				}
			} else {
				p.waitLine(t, "drain timed out")
				if r := <-got; r.err == nil && r.status == http.StatusOK && r.body == "done" {
					t.Error("the request outlived the drain")
				}
			}
			err := p.cmd.Wait()
			if err != nil {
				t.Errorf("kivuli proxy: %v\n%s", err, p.stderr.String())
			}
			p.waitLine(t, "kivuli proxy: stopped")
		})
	}
}

// A 100 MiB OpenSearch bulk body, with its length and chunked, is spooled
// to a file, hashed from it and sent, accepted by sigv4test; the proxy's
// memory stays far below the body (the Go runtime's whole memory, and
// the bodies held in memory, counted by the proxy's own metrics), and the
// spool directory is empty afterwards. The proxy runs as a process of its
// own, so that its memory is its own.
func TestProxySpoolsLargeBodies(t *testing.T) {
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	spool := t.TempDir()
	p := startProxyProcess(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--spool-dir", spool)
	const size = 100 << 20
	for _, chunked := range []bool{false, true} {
		h := sha256.New()
		req, err := http.NewRequest(http.MethodPost, p.url+"/_bulk", io.TeeReader(io.LimitReader(&wiretest.BulkReader{}, size), h))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.ContentLength = size
		if chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("chunked %v: %d %s", chunked, resp.StatusCode, b)
		}
		recs := wiretest.Accepted(t, f.AWS)
		r := recs[len(recs)-1]
		if r.BodyLen != size || r.Chunked || r.PayloadHash != hex.EncodeToString(h.Sum(nil)) {
			t.Errorf("chunked %v: %d bytes, chunked %v, hash %s", chunked, r.BodyLen, r.Chunked, r.PayloadHash)
		}
	}
	p.waitRequests(t, 2)
	m := map[string]float64{}
	for _, s := range []string{`kivuli_proxy_request_bodies_total{mode="spooled"}`, `kivuli_proxy_body_memory_peak_bytes`,
		`go_memstats_sys_bytes`, `go_memstats_heap_alloc_bytes`, `kivuli_process_resident_memory_peak_bytes`} {
		m[s] = metricValue(t, p.admin, s)
	}
	t.Logf("after 2 x 100 MiB: Go runtime %.1f MiB, heap %.1f MiB, peak RSS (race detector included) %.1f MiB, peak body memory %.0f KiB",
		m[`go_memstats_sys_bytes`]/(1<<20), m[`go_memstats_heap_alloc_bytes`]/(1<<20),
		m[`kivuli_process_resident_memory_peak_bytes`]/(1<<20), m[`kivuli_proxy_body_memory_peak_bytes`]/(1<<10))
	if m[`kivuli_proxy_request_bodies_total{mode="spooled"}`] != 2 {
		t.Errorf("%v bodies spooled", m[`kivuli_proxy_request_bodies_total{mode="spooled"}`])
	}
	if v := m[`kivuli_proxy_body_memory_peak_bytes`]; v > 1<<20 {
		t.Errorf("%v bytes of body held in memory at once, over --max-buffer", v)
	}
	if v := m[`go_memstats_sys_bytes`]; v <= 0 || v > 64<<20 {
		t.Errorf("the Go runtime holds %.1f MiB for a 100 MiB body", v/(1<<20))
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("the spool directory holds %v", ents)
	}
}

// With --tls-cert and --tls-key the listener speaks TLS: HTTP/1.1 only,
// even to a client that asks for HTTP/2, whose connections no bound per
// connection covers.
func TestProxyTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	f := wiretest.NewFixture(t, imdstestConfig(), nil)
	p := startProxy(t, f, "--sign-host", "sts.eu-west-2.amazonaws.com", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("listening on %s", p.url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(p.url + "/?Action=GetCallerIdentity&Version=2011-06-15")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.Proto != "HTTP/1.1" {
		t.Errorf("status %d, TLS %v, %s", resp.StatusCode, resp.TLS != nil, resp.Proto)
	}
	wiretest.Accepted(t, f.AWS)
	// Plain HTTP to the TLS listener gets no signed request through.
	host := strings.TrimPrefix(p.url, "https://")
	if resp, _ := wiretest.RawRequest(t, host, "GET / HTTP/1.1\nHost: x\n\n"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS listener: %d", resp.StatusCode)
	}
	if n := len(f.AWS.Records()); n != 1 {
		t.Errorf("%d requests upstream", n)
	}
	// A key that does not match: exit 2 at start.
	_, otherKey, _ := selfSigned(t, t.TempDir())
	if r := runCmd(t, "", append(proxyArgs(f), "--tls-cert", certFile, "--tls-key", otherKey)...); r.Code != base.ExitUsage {
		t.Errorf("mismatched key: exit %d: %s", r.Code, r.Stderr)
	}
}

// A tunnel to a VPC-only domain: the upstream is a listed loopback port
// that serves the domain's certificate; --upstream-server-name verifies it
// for the domain's name, without which the certificate is refused.
func TestProxyTunnelServerName(t *testing.T) {
	const domain = "vpc-logs-abc.eu-west-2.es.amazonaws.com"
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedFor(t, dir, domain, nil)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	imds := imdstest.NewServer(imdstest.Config{})
	defer imds.Close()
	v := &sigv4test.Verifier{Secrets: sigv4test.Lookup(imds.Lookup)}
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec := v.Verify(r); rec.Err != nil || r.Host != domain {
			http.Error(w, fmt.Sprintf("host %s: %v", r.Host, rec.Err), http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	}))
	upstream.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	upstream.StartTLS()
	defer upstream.Close()
	host := upstream.Listener.Addr().String()
	f := &wiretest.Fixture{IMDS: imds}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--upstream-server-name", domain}, http.StatusOK},
		{nil, http.StatusBadGateway}, // the certificate is not for 127.0.0.1
	} {
		args := append([]string{"proxy", "--listen", "127.0.0.1:0", "--admin", "", "--imds-endpoint", imds.URL,
			"--upstream", "https://" + host, "--allow-host", host, "--sign-host", domain}, c.args...)
		p := startProxyProcessArgs(t, f, args, "SSL_CERT_FILE="+certFile)
		resp, err := http.Get(p.url + "/_cluster/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%v: %d %s", c.args, resp.StatusCode, b)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return selfSignedFor(t, dir, "", []net.IP{net.IPv4(127, 0, 0, 1)})
}

// selfSignedFor writes a self-signed certificate for name or ips, and its
// key, to dir.
func selfSignedFor(t *testing.T, dir, name string, ips []net.IP) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kivuli proxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  ips,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	if name != "" {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// Every listener the command opens is on loopback unless --allow-remote
// says otherwise: the proxy's --admin as its --listen, refused before
// anything else is done.
func TestListenersLoopback(t *testing.T) {
	f := wiretest.NewFixture(t, imdstest.Config{}, nil)
	for _, c := range []struct{ flag, addr string }{
		{"--admin", "0.0.0.0:0"},
		{"--admin", ":0"},
		{"--admin", "[::]:0"},
		{"--admin", "192.0.2.1:8081"},
		{"--listen", "0.0.0.0:0"},
	} {
		t.Run(c.flag+" "+c.addr, func(t *testing.T) {
			args := []string{"proxy", "--upstream", "https://sqs.eu-west-2.amazonaws.com", "--imds-endpoint", f.IMDS.URL,
				"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", c.flag, c.addr}
			// Bounded for a proxy that serves, as one that does not check
			// would: it returns at once otherwise.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var stderr testkit.SyncBuffer
			code := runContext(ctx, args, strings.NewReader(""), io.Discard, &stderr, os.Environ())
			if code != base.ExitUsage || !strings.Contains(stderr.String(), c.flag+" "+c.addr+" is not loopback") {
				t.Errorf("exit %d, want %d: %s", code, base.ExitUsage, stderr.String())
			}
		})
	}
	// With --allow-remote, both may be anywhere.
	p := startRaw(t, f, []string{"proxy", "--upstream", "http://" + f.Host(), "--allow-host", f.Host(), "--imds-endpoint", f.IMDS.URL,
		"--sign-host", "sqs.eu-west-2.amazonaws.com", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0", "--allow-remote"})
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(p.admin, "http://"))
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("admin on %s", p.admin)
	}
}
