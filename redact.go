package kivuli

import (
	"strings"
	"unicode/utf8"
)

// redacted replaces what looks like a secret in a remote answer quoted by an
// error.
const redacted = "[REDACTED]"

// maxQuoted bounds the remote text an error quotes.
const maxQuoted = 256

// redactSecrets returns s fit to quote in an error: every occurrence of one
// of the given secret values (of 4 bytes or more), and every run that looks
// like an access key ID, a secret access key or a session token, replaced by
// "[REDACTED]"; control characters replaced by spaces, so that a message
// cannot forge log lines; cut to 256 bytes. IMDS's messages are English
// sentences, role names and ARNs: nothing in them looks like a key.
func redactSecrets(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && keyChar(s[j]) {
			j++
		}
		if j > i {
			if run := s[i:j]; secretLike(run) {
				b.WriteString(redacted)
			} else {
				b.WriteString(run)
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0 || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	out := b.String()
	for _, v := range secrets {
		// A secret that survives (one that is part of the marker itself)
		// withholds the whole text.
		if len(v) >= 4 && strings.Contains(out, v) {
			return redacted
		}
	}
	if len(out) > maxQuoted {
		out = strings.ToValidUTF8(out[:maxQuoted], "") + "..."
	}
	return out
}

// keyChar reports the characters of access keys, secret keys and session
// tokens (base64).
func keyChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

// keyIDPrefixes are the prefixes of AWS access key IDs (and of the other
// unique IDs of the same form).
var keyIDPrefixes = []string{"AKIA", "ASIA", "AROA", "AIDA", "AGPA", "ANPA", "ANVA", "APKA", "ABIA", "ACCA", "AIPA"}

// secretLike reports a run of key characters that looks like a credential:
// an access key ID (a known prefix and 16 or more characters), or a run of
// 20 or more holding a digit or one of + / = (a secret key is 40, a token
// hundreds), or any run of 32 or more. English words and the codes IMDS
// answers with ("AssumeRoleUnauthorizedAccess") are none of these.
func secretLike(run string) bool {
	if len(run) >= 16 {
		for _, p := range keyIDPrefixes {
			if strings.HasPrefix(run, p) {
				return true
			}
		}
	}
	if len(run) >= 32 {
		return true
	}
	return len(run) >= 20 && strings.ContainsAny(run, "0123456789+/=")
}
