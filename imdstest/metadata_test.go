package imdstest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestMetadata (issue 18, point 3): the availability zone and the
// instance identity document, which the SDKs read the region from, with
// the token rules of every other path.
func TestMetadata(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		clock := newClock()
		h := start(Config{Region: "eu-west-2", Mode: TokenRequired, Clock: clock.Now})
		if res := h.do(t, http.MethodGet, zonePath); res.status != http.StatusUnauthorized {
			t.Errorf("zone without a token: %d, want 401", res.status)
		}
		tok := h.token(t, "60")
		if res := h.do(t, http.MethodGet, zonePath, tokenHeader, tok); res.status != 200 || res.body != "eu-west-2a" {
			t.Errorf("zone: %d %q, want 200 eu-west-2a", res.status, res.body)
		}
		res := h.do(t, http.MethodGet, identityPath, tokenHeader, tok)
		if res.status != 200 || res.header.Get("Content-Type") != appJSON {
			t.Fatalf("identity document: %d %s", res.status, res.header.Get("Content-Type"))
		}
		var doc map[string]string
		if err := json.Unmarshal([]byte(res.body), &doc); err != nil {
			t.Fatalf("identity document %q: %v", res.body, err)
		}
		for k, want := range map[string]string{"region": "eu-west-2", "availabilityZone": "eu-west-2a", "pendingTime": "2026-11-28T17:00:00Z", "accountId": "123456789012"} {
			if doc[k] != want {
				t.Errorf("identity document %s = %q, want %q", k, doc[k], want)
			}
		}
		if res := h.do(t, http.MethodHead, identityPath, tokenHeader, tok); res.status != 200 || res.body != "" {
			t.Errorf("HEAD: %d %q, want 200 without a body", res.status, res.body)
		}
	})
}
