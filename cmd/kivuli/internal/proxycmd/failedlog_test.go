package proxycmd

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// spaced is b in hex, a byte at a time, as S3 writes StringToSignBytes.
func spaced(b string) string {
	h := hex.EncodeToString([]byte(b))
	var out []string
	for i := 0; i < len(h); i += 2 {
		out = append(out, h[i:i+2])
	}
	return strings.Join(out, " ")
}

// signatureDoesNotMatch is S3's answer to a request it cannot verify,
// echoing what signed r, as S3 does, and padded to pad bytes.
func signatureDoesNotMatch(r *http.Request, pad int) string {
	token := r.Header.Get("X-Amz-Security-Token")
	auth := r.Header.Get("Authorization")
	akid := regexp.MustCompile(`Credential=([^/]+)/`).FindStringSubmatch(auth)[1]
	sig := regexp.MustCompile(`Signature=([0-9a-f]+)`).FindStringSubmatch(auth)[1]
	sts := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n20260101/eu-west-2/s3/aws4_request\n" + strings.Repeat("ab", 32)
	canon := "GET\n/key\n\nhost:b.s3.eu-west-2.amazonaws.com\nx-amz-security-token:" + token + "\n\nhost;x-amz-security-token\nUNSIGNED-PAYLOAD"
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message>" +
		"<AWSAccessKeyId>" + akid + "</AWSAccessKeyId><StringToSign>" + sts + "</StringToSign><SignatureProvided>" + sig + "</SignatureProvided>" +
		"<StringToSignBytes>" + spaced(sts) + "</StringToSignBytes><CanonicalRequest>" + canon + "</CanonicalRequest>" +
		"<CanonicalRequestBytes>" + spaced(canon) + "</CanonicalRequestBytes><RequestId>4442587FB7D0A2F9</RequestId></Error>\n" +
		strings.Repeat("<!-- padding -->\n", pad/17)
}

// --log-failed-requests logs the start of the upstream's error body with
// the key ID, token and signature it echoes redacted (in every form S3
// gives them), and the client gets the whole answer as it was.
func TestProxyLogFailedRequests(t *testing.T) {
	var sent string
	f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent = signatureDoesNotMatch(r, 20<<10)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, sent)
	}))
	p := startProxy(t, f, "--sign-host", "b.s3.eu-west-2.amazonaws.com", "--log-failed-requests")
	resp, err := http.Get(p.url + "/key?X-Amz-Security-Token=client-token-0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || string(got) != sent {
		t.Errorf("the client got %d, %d bytes; the upstream sent %d", resp.StatusCode, len(got), len(sent))
	}
	p.waitRequests(t, 1)
	log := p.logs.String()
	for _, want := range []string{"upstream error answer", "status=403", "SignatureDoesNotMatch", "truncated=true",
		"<AWSAccessKeyId>REDACTED</AWSAccessKeyId>", "<CanonicalRequestBytes>REDACTED</CanonicalRequestBytes>", "x-amz-security-token:REDACTED"} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the log:\n%s", want, log)
		}
	}
	c := f.IMDS.Current()
	for _, secret := range []string{c.AccessKeyID, c.SessionToken, spaced(c.SessionToken[:16]), "client-token-0123456789abcdef0123"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if m := regexp.MustCompile(`body="[^\n]*`).FindString(log); len(m) > 2*failedBodyMax {
		t.Errorf("%d bytes of body logged", len(m))
	}
	// The proxy's own refusals are in the access log, not logged again.
	req, _ := http.NewRequest("GET", p.url+"/key", nil)
	req.Host = "evil.example"
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	p.waitRequests(t, 2)
	if n := strings.Count(p.logs.String(), "upstream error answer"); n != 1 {
		t.Errorf("%d error answers logged, want 1:\n%s", n, p.logs.String())
	}
}

// An error answer is still streamed with --log-failed-requests: its
// first part reaches the client before the upstream writes the rest.
func TestProxyLogFailedRequestsStreams(t *testing.T) {
	release := make(chan struct{})
	f := wiretest.NewFixture(t, imdstestConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(wiretest.FailAfter):
		}
		io.WriteString(w, "data: last\n\n")
	}))
	p := startProxy(t, f, "--sign-host", "sts.eu-west-2.amazonaws.com", "--log-failed-requests", "--max-attempts", "1")
	resp, err := http.Get(p.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("%q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: last\n\n" {
		t.Errorf("rest %q", rest)
	}
	p.waitRequests(t, 1)
	if !strings.Contains(p.logs.String(), fmt.Sprintf("status=%d", http.StatusServiceUnavailable)) {
		t.Errorf("the log:\n%s", p.logs.String())
	}
}
