package exec

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/internal/wiretest"
)

// exec --serve's endpoint answers a rebound Host and a cross-site page
// with neither credentials nor the token's check; on top of the token.
func TestExecServeRefusesBrowsers(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: secret, SessionToken: "token", CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
	})
	srv := httptest.NewServer(newCredentialsHandler(creds, "tok3n"))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	auth := func(h map[string]string) map[string]string {
		h["Authorization"] = "tok3n"
		return h
	}
	for _, c := range []struct {
		br   wiretest.BrowserRequest
		want int
	}{
		{wiretest.BrowserRequest{Name: "a rebound Host", Method: "GET", Path: credentialsPath, Header: auth(map[string]string{"Host": "evil.example:" + port})}, http.StatusMisdirectedRequest},
		{wiretest.BrowserRequest{Name: "a cross-site page", Method: "GET", Path: credentialsPath, Header: auth(wiretest.CrossSite(nil))}, http.StatusForbidden},
		{wiretest.BrowserRequest{Name: "the URL's Host", Method: "GET", Path: credentialsPath, Header: auth(map[string]string{})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "Host localhost", Method: "GET", Path: credentialsPath, Header: auth(map[string]string{"Host": "localhost:" + port})}, http.StatusOK},
		{wiretest.BrowserRequest{Name: "no token", Method: "GET", Path: credentialsPath}, http.StatusUnauthorized},
	} {
		code, body := c.br.Send(t, srv.URL)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.br.Name, code, body, c.want)
		}
		if c.want != http.StatusOK && strings.Contains(body, secret) {
			t.Errorf("%s: the refusal holds the secret", c.br.Name)
		}
	}
}
