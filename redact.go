package kivuli

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redaction: kivuli never shows a secret, nor what would let a reader sign
// or replay a request (a signature, a session token), wherever it shows a
// request or an answer: errors (redactSecrets), the signer's debug log
// (redactCanonical), the kivuli command's -v output and the proxy's access
// log (RedactQuery, RedactHeader). A request's query and headers, as sent
// or received, also lose the access key ID: it is no secret to AWS, but it
// names the account and the role session, and logs travel further than
// requests; the scope after it (date, region, service) stays, since it is
// what a wrong signature is debugged with. The canonical request keeps the
// key ID: it is shown to be compared byte for byte with the one AWS quotes
// in a SignatureDoesNotMatch answer, which holds it.

// redacted stands in place of what is hidden, in every redaction: one
// word, which needs no escaping in a query, a header or a log line (a
// bracket would, in a URL).
const redacted = "REDACTED"

// maxQuoted bounds the remote text an error quotes.
const maxQuoted = 256

// redactSecrets returns s fit to quote in an error: every occurrence of one
// of the given secret values (of 4 bytes or more), and every run that looks
// like an access key ID, a secret access key or a session token, replaced by
// "REDACTED"; control characters replaced by spaces, so that a message
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
	if len(out) > maxQuoted {
		out = strings.ToValidUTF8(out[:maxQuoted], "") + "..."
	}
	for _, v := range secrets {
		// A secret that survives (one that is part of the marker itself,
		// or that the "..." of a cut completes) withholds the whole text.
		if len(v) >= 4 && strings.Contains(out, v) {
			return redacted
		}
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

// RedactQuery returns a raw URL query fit to print or log: the values of
// X-Amz-Signature and X-Amz-Security-Token replaced by REDACTED, and the
// access key ID of X-Amz-Credential too, its scope kept. Parameter names
// are matched in any letter case and escaping, as AWS reads them; the rest
// of the query is left as it is.
func RedactQuery(rawQuery string) string { return redactQuery(rawQuery, true) }

// redactQuery is RedactQuery, which hides the access key ID only if keyID.
func redactQuery(rawQuery string, keyID bool) string {
	if !strings.Contains(rawQuery, "%") && !strings.Contains(strings.ToLower(rawQuery), "x-amz-") {
		return rawQuery // nothing to hide, nothing to allocate
	}
	params := strings.Split(rawQuery, "&")
	for i, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		name := k
		if dk, err := url.QueryUnescape(k); err == nil {
			name = dk
		}
		switch strings.ToLower(name) {
		case "x-amz-signature", "x-amz-security-token":
			params[i] = k + "=" + redacted
		case "x-amz-credential":
			if keyID {
				params[i] = k + "=" + redactKeyID(v)
			}
		}
	}
	return strings.Join(params, "&")
}

// redactKeyID replaces the access key ID at the start of a credential
// (AKID/20150830/us-east-1/iam/aws4_request), before a slash, escaped or
// not; a credential without one is replaced whole.
func redactKeyID(credential string) string {
	i := -1
	// Byte by byte: strings.ToLower would turn a byte that is not UTF-8
	// into three, and its indexes would not be credential's.
	for _, sep := range []string{"/", "%2f", "%2F"} {
		if j := strings.Index(credential, sep); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return redacted
	}
	return redacted + credential[i:]
}

var (
	authSignature  = regexp.MustCompile(`(?i)(Signature=)[^,\s]+`)
	authCredential = regexp.MustCompile(`(?i)(Credential=)[^/,\s]+`)
)

// RedactHeader returns the value of the header name fit to print or log:
// the signature and the access key ID of an Authorization header replaced
// by REDACTED (the scope and the signed headers kept), and the whole value
// of X-Amz-Security-Token and X-Amz-Signature. Other headers are returned
// as they are.
func RedactHeader(name, value string) string {
	switch strings.ToLower(name) {
	case "authorization":
		value = authSignature.ReplaceAllString(value, "${1}"+redacted)
		return authCredential.ReplaceAllString(value, "${1}"+redacted)
	case "x-amz-security-token", "x-amz-signature":
		return redacted
	}
	return value
}

// redactCanonical redacts a canonical request, for the signer's debug log:
// its query line as RedactQuery does but for the access key ID, its header
// lines as RedactHeader does, by where they stand rather than by value,
// which the signer may have changed (collapsing the spaces of a header
// value, escaping a query value); and then the session token by value, in
// the forms the signer may give it, in case the request moved it
// elsewhere.
func redactCanonical(canon, token string) string {
	lines := strings.Split(canon, "\n")
	if len(lines) > 2 {
		lines[2] = redactQuery(lines[2], false)
	}
	for i := 3; i < len(lines) && lines[i] != ""; i++ {
		if name, value, ok := strings.Cut(lines[i], ":"); ok {
			lines[i] = name + ":" + RedactHeader(name, value)
		}
	}
	out := strings.Join(lines, "\n")
	if token != "" {
		for _, form := range []string{token, strings.Join(strings.Fields(token), " "), queryEscape(token)} {
			if len(form) >= 8 { // a shorter one is no secret, and would garble the log
				out = strings.ReplaceAll(out, form, redacted)
			}
		}
	}
	return out
}
