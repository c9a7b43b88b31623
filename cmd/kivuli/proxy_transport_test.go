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
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// With --tls-cert and --tls-key the listener speaks TLS: HTTP/1.1 only,
// even to a client that asks for HTTP/2, whose connections no bound per
// connection covers.
func TestProxyTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	f := testkit.NewFixture(t, imdstestConfig(), nil)
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
	accepted(t, f.AWS)
	// Plain HTTP to the TLS listener gets no signed request through.
	host := strings.TrimPrefix(p.url, "https://")
	if resp, _ := rawRequest(t, host, "GET / HTTP/1.1\nHost: x\n\n"); resp.StatusCode != http.StatusBadRequest {
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
	f := &testkit.Fixture{IMDS: imds}
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
