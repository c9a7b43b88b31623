package benchmarks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/sigv4"
)

// The prometheus implementation is prometheus/sigv4's RoundTripper, built
// as Prometheus builds it for remote_write, Thanos and Cortex for their
// clients: sigv4.NewSigV4RoundTripper(&sigv4.SigV4Config{...}, next).
// Its config takes static keys, a profile or a role to assume, and
// otherwise loads the SDK's default credential chain
// (config.LoadDefaultConfig) and caches it in an aws.CredentialsCache of
// its own; no field takes a credentials provider. So it is handed the
// same kivuli.Credentials the way a Prometheus user would hand it
// kivuli's: as `kivuli exec --serve -- prometheus` does, an ECS-style
// credentials endpoint on loopback serving kivuli.Credentials
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN),
// which the default chain reads. The credentials it signs with are then
// kivuli's; per request it reads them from its aws.CredentialsCache
// (an atomic load and an expiry check) where kivuli reads its own
// Credentials, which costs the same.

// credentialsPath is where the endpoint serves, as ECS's agent does.
const credentialsPath = "/v2/credentials"

// credentialsEndpoint serves creds on loopback in the format of ECS
// container credentials, to clients that send token as their
// Authorization header, as kivuli exec --serve does.
func credentialsEndpoint(creds aws.CredentialsProvider, token string) *endpoint {
	return &endpoint{token: token, Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != token || r.URL.Path != credentialsPath {
			http.Error(w, `{"code":"AccessDenied"}`, http.StatusUnauthorized)
			return
		}
		v, err := creds.Retrieve(r.Context())
		if err != nil {
			http.Error(w, `{"code":"CredentialsUnavailable"}`, http.StatusServiceUnavailable)
			return
		}
		doc := map[string]string{"AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey, "Token": v.SessionToken}
		if v.CanExpire {
			doc["Expiration"] = v.Expires.UTC().Format(time.RFC3339)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))}
}

// endpoint is a credentials endpoint and the token it wants.
type endpoint struct {
	*httptest.Server
	token string
}

// randomToken returns an endpoint's authorization token.
func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newPrometheus returns prometheus/sigv4's RoundTripper over base, signing
// for svc in region with the credentials that ep serves.
func newPrometheus(ep *endpoint, svc string, base http.RoundTripper) (http.RoundTripper, error) {
	var rt http.RoundTripper
	err := withAWSEnvironment(map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": ep.URL + credentialsPath,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":  ep.token,
		// Nothing else of the machine's: no shared files, no IMDS.
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}, func() (err error) {
		// It fetches the credentials here, once, and then only when its
		// cache finds them within 30 s of expiring: the endpoint and the
		// token are read now, so the environment can be put back after.
		rt, err = sigv4.NewSigV4RoundTripper(&sigv4.SigV4Config{Region: region, ServiceName: svc}, base,
			sigv4.WithContext(context.Background()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prometheus/sigv4: %w", err)
	}
	return rt, nil
}

// withAWSEnvironment runs f with the process's AWS_ variables replaced by
// vars, and puts them back after. The benchmarks and tests of this package
// do not run in parallel with it.
func withAWSEnvironment(vars map[string]string, f func() error) error {
	saved := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			saved[k] = v
			os.Unsetenv(k)
		}
	}
	for k, v := range vars {
		os.Setenv(k, v)
	}
	defer func() {
		for k := range vars {
			os.Unsetenv(k)
		}
		for k, v := range saved {
			os.Setenv(k, v)
		}
	}()
	return f()
}
