package kivuli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// wire sends a request the way net/http writes it, parses it the way a
// server reads it, and checks its signature with sigv4test: the whole trip
// without sockets.
type wire struct {
	v   *sigv4test.Verifier
	rec sigv4test.Record
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	var buf bytes.Buffer
	err := r.Write(&buf)
	if r.Body != nil {
		r.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	got, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		return nil, err
	}
	w.rec = w.v.Verify(got)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// FuzzTransportSignature: for any path, query, header value and body the
// transport signs, the independent checker computes the same signature
// from the bytes on the wire.
func FuzzTransportSignature(f *testing.F) {
	creds := aws.Credentials{AccessKeyID: "ASIAFUZZ", SecretAccessKey: "fuzz/secret+key", SessionToken: "tok/en+==", CanExpire: true, Expires: time.Now().Add(time.Hour)}
	w := &wire{v: &sigv4test.Verifier{Secrets: sigv4test.Static(sigv4test.Credentials{
		AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
	})}}
	provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	services := []string{"es", "s3", "sts", "execute-api", "aoss"}
	f.Add(uint8(0), "/logs-*/_search", "q=a+b&x=%2F", "v  a  l", "{}")
	f.Add(uint8(1), "/bucket/report (final) café.txt", "list-type=2&prefix=a%2Fb", "x", "")
	f.Add(uint8(1), "/bucket/a%2Fb//./c", "", "", "body")
	f.Add(uint8(2), "/a/../b/./c//", "Action=GetCallerIdentity&Version=2011-06-15", "", "")
	f.Add(uint8(3), "/prod/users/%E2%82%AC", "k=1&k=0&flag", "", "")
	f.Fuzz(func(t *testing.T, svc uint8, path, query, header, body string) {
		if !validHeaderValue(header) {
			t.Skip() // http.Transport refuses it before sending
		}
		u, err := url.Parse("https://host.eu-west-2.amazonaws.com" + path)
		if err != nil || u.Host != "host.eu-west-2.amazonaws.com" || u.Opaque != "" || u.Fragment != "" {
			t.Skip()
		}
		u.RawQuery = query
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, err := http.NewRequest(http.MethodPost, u.String(), rb)
		if err != nil {
			t.Skip()
		}
		req.URL.RawQuery = query
		req.Header.Set("X-Custom", header)
		tr := &kivuli.Transport{Credentials: provider, Service: services[int(svc)%len(services)], Region: "eu-west-2", Base: w}
		w.rec = sigv4test.Record{}
		_, err = tr.RoundTrip(req)
		if err != nil {
			if errors.Is(err, kivuli.ErrInvalidRequest) || strings.Contains(err.Error(), "invalid header") || strings.Contains(err.Error(), "malformed") || strings.Contains(err.Error(), "invalid") {
				t.Skip() // refused with a clear error, or not sendable by net/http
			}
			t.Fatalf("RoundTrip: %v", err)
		}
		if w.rec.Err != nil {
			t.Fatalf("service %s path %q query %q header %q: %v", tr.Service, path, query, header, w.rec.Err)
		}
	})
}

// validHeaderValue is what http.Transport accepts: no control bytes but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
