package exec

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/internal/guard"
)

// errNoExecve says that the system cannot replace the process.
var errNoExecve = errors.New("kivuli: no execve on this system")

// credentialsPath is the endpoint's path, as ECS's agent names it.
const credentialsPath = "/v2/credentials"

// randomToken is a 256-bit token, base64url.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kivuli: a random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// credentialsHandler serves credentials in the format of ECS container
// credentials (the endpoint of AWS_CONTAINER_CREDENTIALS_FULL_URI), to
// loopback clients that send the token as their Authorization header,
// under the guard's rules: a web page cannot know the token, but a rebound
// one must not even be answered.
type credentialsHandler struct {
	creds aws.CredentialsProvider
	token []byte
	guard *guard.Guard
}

func newCredentialsHandler(creds aws.CredentialsProvider, token string) http.Handler {
	g, _ := guard.New(nil, "", nil, "") // IP literals and localhost: the endpoint is http://127.0.0.1
	return &credentialsHandler{creds: creds, token: []byte(token), guard: g}
}

// containerCredentials is the endpoint's answer, as the SDKs'
// endpointcreds providers read it.
type containerCredentials struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token,omitempty"`
	Expiration      string `json:"Expiration,omitempty"`
}

func (h *credentialsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !base.LoopbackAddr(r.RemoteAddr) {
		writeEndpointError(w, http.StatusForbidden, "AccessDenied", "kivuli: the credentials endpoint answers loopback clients only")
		return
	}
	if rf := h.guard.Check(r); rf != nil {
		writeEndpointError(w, rf.Status, "AccessDenied", rf.Msg)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), h.token) != 1 {
		writeEndpointError(w, http.StatusUnauthorized, "AccessDenied", "kivuli: the Authorization header must hold AWS_CONTAINER_AUTHORIZATION_TOKEN")
		return
	}
	if r.URL.Path != credentialsPath {
		writeEndpointError(w, http.StatusNotFound, "NotFound", "kivuli: credentials are served at "+credentialsPath)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeEndpointError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "kivuli: GET or HEAD")
		return
	}
	v, err := h.creds.Retrieve(r.Context())
	if err != nil {
		writeEndpointError(w, http.StatusServiceUnavailable, "CredentialsUnavailable", base.Message(err))
		return
	}
	doc := containerCredentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, Token: v.SessionToken}
	if v.CanExpire {
		doc.Expiration = v.Expires.UTC().Format(time.RFC3339)
	}
	body, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// writeEndpointError answers as the ECS agent does: {"code", "message"}.
func writeEndpointError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
