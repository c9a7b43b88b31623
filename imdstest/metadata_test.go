package imdstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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

// TestMetadataTree (issue 19, point 16): the tree as EC2 serves it, with
// the paths the SDKs and the AWS CLI read: botocore's and aws-cli v2's
// region lookup asks placement/availability-zone/ with a trailing '/',
// and directories are listed, with or without one.
func TestMetadataTree(t *testing.T) {
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{Region: "eu-west-2", Role: "app-role"})
		for path, want := range map[string]string{
			"/latest/meta-data/placement/availability-zone/": "eu-west-2a",
			"/latest/meta-data/placement/availability-zone":  "eu-west-2a",
			"/latest/meta-data/placement/region/":            "eu-west-2",
			"/latest/meta-data/instance-id":                  "i-0123456789abcdef0",
			"/latest/meta-data/services/partition":           "aws",
			"/latest/meta-data/services/domain":              "amazonaws.com",
			"/latest/meta-data/placement/":                   "availability-zone\nregion",
			"/latest/meta-data/iam":                          "info\nsecurity-credentials/",
			"/latest/meta-data/iam/security-credentials":     "app-role",
			"/latest/meta-data/iam/security-credentials/":    "app-role",
			"/latest/dynamic/instance-identity/":             "document",
			"/latest/":                                       "dynamic\nmeta-data",
		} {
			if res := h.do(t, http.MethodGet, path); res.status != 200 || res.body != want {
				t.Errorf("GET %s: %d %q, want 200 %q", path, res.status, res.body, want)
			}
		}
		res := h.do(t, http.MethodGet, "/latest/meta-data/")
		for _, entry := range []string{"ami-id", "hostname", "iam/", "instance-id", "instance-type", "local-ipv4", "placement/", "services/"} {
			if !slices.Contains(strings.Split(res.body, "\n"), entry) {
				t.Errorf("the meta-data listing lacks %s:\n%s", entry, res.body)
			}
		}
		res = h.do(t, http.MethodGet, "/latest/meta-data/iam/info")
		var info map[string]string
		if err := json.Unmarshal([]byte(res.body), &info); err != nil || info["Code"] != "Success" || !strings.HasSuffix(info["InstanceProfileArn"], ":instance-profile/app-role") {
			t.Errorf("iam/info: %d %s (%v)", res.status, res.body, err)
		}
		for _, path := range []string{"/latest/meta-data/nothing", "/latest/meta-data/placement/region/x", "/latest/user-data", "/"} {
			if res := h.do(t, http.MethodGet, path); res.status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", path, res.status)
			}
		}
	})
	eachTransport(t, func(t *testing.T, start func(Config) harness) {
		h := start(Config{NoRole: true, Region: "cn-north-1"})
		if res := h.do(t, http.MethodGet, "/latest/meta-data/iam/info"); res.status != http.StatusNotFound {
			t.Errorf("iam/info without a role: %d, want 404", res.status)
		}
		if res := h.do(t, http.MethodGet, "/latest/meta-data/services/partition"); res.body != "aws-cn" {
			t.Errorf("partition in cn-north-1: %q", res.body)
		}
	})
}
