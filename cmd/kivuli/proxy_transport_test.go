package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// Retries: a request whose body can be sent again (spooled here) is
// retried after a 503, signed anew, the whole body sent each time; an
// expired-token answer makes the proxy refresh its credentials and retry
// once with the new ones; a streamed body is sent once; --max-attempts 1
// sends everything once.
func TestProxyRetries(t *testing.T) {
	var fail atomic.Int32 // answers 503 to this many requests
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if fail.Add(-1) >= 0 {
			http.Error(w, `{"__type":"ServiceUnavailableException"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	f := newFixture(t, imdstestConfig(), handler)
	p := startProxy(t, f, "--sign-host", "search-logs-abc.eu-west-2.es.amazonaws.com", "--max-buffer", "16KiB")
	post := func(url string, body io.Reader, n int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, body)
		req.ContentLength = n
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	fail.Store(1)
	const size = 300 << 10 // spooled
	if code, body := post(p.url+"/_bulk", io.LimitReader(&bulkReader{}, size), size); code != http.StatusOK {
		t.Fatalf("after one 503: %d %s", code, body)
	}
	recs := accepted(t, f.aws)
	if len(recs) != 2 || recs[0].BodyLen != size || recs[1].BodyLen != size || recs[0].PayloadHash != recs[1].PayloadHash {
		t.Errorf("want the whole body twice: %+v", recs)
	}

	// An expired token: the upstream takes the key the proxy holds for
	// expired; IMDS has issued a new one since the proxy started.
	fail.Store(0)
	f3 := &fixture{imds: imdstest.NewServer(imdstest.Config{}), aws: nil}
	defer f3.imds.Close()
	old3 := f3.imds.Current().AccessKeyID
	v3 := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) {
		c, ok := f3.imds.Lookup(id)
		if id == old3 {
			c.Expiration = time.Now().Add(-time.Minute)
		}
		return sigv4test.Credentials(c), ok
	}}
	f3.aws = sigv4test.NewServer(v3, handler)
	defer f3.aws.Close()
	p3 := startProxy(t, f3, "--sign-host", "sts.eu-west-2.amazonaws.com")
	f3.imds.Rotate()
	if code, body := post(p3.url+"/?Action=GetCallerIdentity&Version=2011-06-15", nil, 0); code != http.StatusOK {
		t.Fatalf("after ExpiredToken: %d %s", code, body)
	}
	recs = f3.aws.Records()
	if len(recs) != 2 || recs[0].AccessKeyID != old3 || !isCode(recs[0].Err, "ExpiredToken") || recs[1].Err != nil || recs[1].AccessKeyID == old3 {
		t.Errorf("want ExpiredToken with the old key, then accepted with the new one: %+v", recs)
	}

	// A streamed body (S3, over --max-buffer) is sent once.
	s3 := newFixture(t, imdstestConfig(), handler)
	p4 := startProxy(t, s3, "--sign-host", "my-bucket.s3.eu-west-2.amazonaws.com", "--max-buffer", "16KiB")
	fail.Store(1)
	req, _ := http.NewRequest(http.MethodPut, p4.url+"/big.bin", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(s3.aws.Records()) != 1 {
		t.Errorf("streamed PUT after a 503: %d, %d requests upstream", resp.StatusCode, len(s3.aws.Records()))
	}

	// --max-attempts 1.
	f5 := newFixture(t, imdstestConfig(), handler)
	p5 := startProxy(t, f5, "--sign-host", "sts.eu-west-2.amazonaws.com", "--max-attempts", "1")
	fail.Store(1)
	if code, _ := post(p5.url+"/?Action=GetCallerIdentity&Version=2011-06-15", nil, 0); code != http.StatusServiceUnavailable || len(f5.aws.Records()) != 1 {
		t.Errorf("--max-attempts 1 after a 503: %d, %d requests upstream", code, len(f5.aws.Records()))
	}
}

func isCode(err error, code string) bool {
	e, ok := err.(*sigv4test.Error)
	return ok && e.Code == code
}

// The upstream's connections are kept and reused under concurrent load:
// three rounds of 32 requests, which the upstream holds until all 32 of a
// round have arrived, open 32 connections in all; with --max-idle-conns 2,
// each round after the first opens 30 more (net/http's default keeps 2).
func TestProxyConnectionPool(t *testing.T) {
	const clients, rounds = 32, 3
	for _, c := range []struct {
		name  string
		args  []string
		conns int
	}{
		{"default", nil, clients},
		{"max-idle-conns 2", []string{"--max-idle-conns", "2"}, clients + (rounds-1)*(clients-2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			conns := map[string]bool{}
			var arrived atomic.Int32
			gates := make([]chan struct{}, rounds)
			for i := range gates {
				gates[i] = make(chan struct{})
			}
			f := newFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				conns[r.RemoteAddr] = true
				mu.Unlock()
				n := int(arrived.Add(1))
				if n%clients == 0 {
					close(gates[n/clients-1])
				}
				select {
				case <-gates[(n-1)/clients]:
				case <-time.After(failAfter):
					t.Errorf("round %d: the requests did not arrive together", (n-1)/clients+1)
				}
				io.WriteString(w, "ok")
			}))
			p := startProxy(t, f, append([]string{"--sign-host", "sts.eu-west-2.amazonaws.com"}, c.args...)...)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients}}
			defer client.CloseIdleConnections()
			for round := range rounds {
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						resp, err := client.Get(p.url + "/?Action=GetCallerIdentity&Version=2011-06-15")
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					})
				}
				wg.Wait()
				// Logged once its handler has returned, after the upstream's
				// answer was read to its end and its connection put back.
				p.waitRequests(t, (round+1)*clients)
			}
			mu.Lock()
			n := len(conns)
			mu.Unlock()
			if n != c.conns {
				t.Errorf("%d connections to the upstream, want %d", n, c.conns)
			}
			accepted(t, f.aws)
		})
	}
}

// With --tls-cert and --tls-key the listener speaks TLS: HTTP/1.1 only,
// even to a client that asks for HTTP/2, whose connections no bound per
// connection covers.
func TestProxyTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	f := newFixture(t, imdstestConfig(), nil)
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
	accepted(t, f.aws)
	// Plain HTTP to the TLS listener gets no signed request through.
	host := strings.TrimPrefix(p.url, "https://")
	if resp, _ := rawRequest(t, host, "GET / HTTP/1.1\nHost: x\n\n"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS listener: %d", resp.StatusCode)
	}
	if n := len(f.aws.Records()); n != 1 {
		t.Errorf("%d requests upstream", n)
	}
	// A key that does not match: exit 2 at start.
	_, otherKey, _ := selfSigned(t, t.TempDir())
	if r := runCmd(t, "", append(proxyArgs(f), "--tls-cert", certFile, "--tls-key", otherKey)...); r.code != exitUsage {
		t.Errorf("mismatched key: exit %d: %s", r.code, r.stderr)
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
	f := &fixture{imds: imds}
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
