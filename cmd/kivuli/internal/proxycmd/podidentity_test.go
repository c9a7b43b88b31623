package proxycmd

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/wiretest"
	"github.com/kivuli-go/kivuli/sigv4test"
)

// EKS Pod Identity (aws-sigv4-proxy#190): with --source chain, the proxy
// signs with the credentials of the container endpoint that EKS names in
// AWS_CONTAINER_CREDENTIALS_FULL_URI, asked with the token that EKS mounts
// in AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read again on each refresh:
// the kubelet rotates it).
func TestProxyEKSPodIdentity(t *testing.T) {
	testkit.ChainEnv(t)
	const token = "eks-pod-identity-token-0123456789"
	creds := sigv4test.Credentials{AccessKeyID: "ASIAPODIDENTITY00001", SecretAccessKey: "pod-identity-secret", SessionToken: "pod-identity-session-token"}
	var asked, refused atomic.Int32
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/credentials" || r.Header.Get("Authorization") != token {
			refused.Add(1)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		asked.Add(1)
		json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": creds.AccessKeyID, "SecretAccessKey": creds.SecretAccessKey, "Token": creds.SessionToken,
			"AccountId": "111122223333", "Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
		})
	}))
	t.Cleanup(agent.Close)
	tokenFile := filepath.Join(t.TempDir(), "eks-pod-identity-token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.URL+"/v1/credentials")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	v := &sigv4test.Verifier{Secrets: func(id string) (sigv4test.Credentials, bool) { return creds, id == creds.AccessKeyID }}
	aws := sigv4test.NewServer(v, nil)
	t.Cleanup(aws.Close)
	host := aws.Listener.Addr().String()
	imds := imdstest.NewServer(imdstest.Config{}) // for startRaw's check of the log: never asked
	t.Cleanup(imds.Close)
	f := &wiretest.Fixture{IMDS: imds, AWS: aws}
	p := startRaw(t, f, []string{"proxy", "--source", "chain", "--listen", "127.0.0.1:0",
		"--upstream", "http://" + host, "--allow-host", host, "--sign-host", "sts.eu-west-2.amazonaws.com"})
	resp, err := http.Get(p.url + "/?Action=GetCallerIdentity&Version=2011-06-15")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := f.Accepted(t)
	if resp.StatusCode != http.StatusOK || rec.AccessKeyID != creds.AccessKeyID || rec.Token != sigv4test.HeaderSigned {
		t.Errorf("%d, signed with %s (token %+v), want %s and its token", resp.StatusCode, rec.AccessKeyID, rec.Token, creds.AccessKeyID)
	}
	if asked.Load() == 0 || refused.Load() != 0 || imds.Stats() != (imdstest.Stats{}) {
		t.Errorf("the endpoint was asked %d times with the token, %d without; IMDS: %+v", asked.Load(), refused.Load(), imds.Stats())
	}
	if log := p.logs.String(); strings.Contains(log, creds.SecretAccessKey) || strings.Contains(log, creds.SessionToken) || strings.Contains(log, token) {
		t.Errorf("the log holds a secret:\n%s", log)
	}
}
