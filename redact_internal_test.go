package kivuli

import (
	"strings"
	"testing"
)

// FuzzRedactSecrets: whatever the text and the secrets, the result never
// holds one of the secrets (of 4 bytes or more, but for substrings of the
// marker), nor a control character, and is bounded.
func FuzzRedactSecrets(f *testing.F) {
	f.Add("not authorized: key ASIAQWERTYUIOPASDFGH", "wJalrXUtnFEMI/K7MDENG", "tok")
	f.Add("REDACTED [REDACT", "REDACT", "D]")
	f.Add("line\nforged", "", "")
	f.Fuzz(func(t *testing.T, s, secret1, secret2 string) {
		out := redactSecrets(s, secret1, secret2)
		for _, v := range []string{secret1, secret2} {
			if len(v) >= 4 && !strings.Contains(redacted, v) && strings.Contains(out, v) {
				t.Fatalf("redactSecrets(%q) = %q holds the secret %q", s, out, v)
			}
		}
		if strings.ContainsAny(out, "\n\r\x00\x1b") {
			t.Fatalf("redactSecrets(%q) = %q holds a control character", s, out)
		}
		if len(out) > maxQuoted+3 {
			t.Fatalf("redactSecrets: %d bytes, over %d", len(out), maxQuoted+3)
		}
	})
}
