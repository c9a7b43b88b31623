package kivuli

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseDocument: the credential document parser never panics, accepts
// only complete documents, and never quotes a secret in its errors.
func FuzzParseDocument(f *testing.F) {
	f.Add([]byte(`{"Code":"Success","LastUpdated":"2026-11-28T17:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG","Token":"IQoJb3JpZ2luX2VjE","Expiration":"2026-11-28T23:00:00Z"}`))
	f.Add([]byte(`{"Code":"AssumeRoleUnauthorizedAccess","Message":"denied"}`))
	f.Add([]byte(`{"Code":"Success","AccessKeyId":7}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"Code":"Success","Expiration":"tomorrow"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parseDocument("role", body)
		if err == nil {
			if v.AccessKeyID == "" || v.SecretAccessKey == "" || v.SessionToken == "" || v.Expires.IsZero() || !v.CanExpire {
				t.Fatalf("accepted an incomplete document: %q", body)
			}
			return
		}
		var d struct{ Code, Message, SecretAccessKey, Token string }
		if json.Unmarshal(body, &d) == nil {
			for _, secret := range []string{d.SecretAccessKey, d.Token} {
				// Code and Message are quoted on purpose; a secret is not.
				if len(secret) >= 4 && strings.Contains(err.Error(), secret) &&
					!strings.Contains(d.Code, secret) && !strings.Contains(d.Message, secret) {
					t.Fatalf("error %q quotes a secret", err)
				}
			}
		}
	})
}
