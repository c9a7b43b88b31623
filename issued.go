package kivuli

// The characters AWS issues in credentials. A credential document whose
// values hold anything else did not come from AWS, and such values are
// dangerous downstream: printed for a shell (kivuli creds --format env,
// the AWS CLI's export-credentials), a secret of "x;touch pwned;#" runs a
// command. Refusing them where the document is read keeps every consumer
// safe, whatever it does with the values.

// issuedKeyID reports whether s is made of the characters of an access
// key ID: IAM documents the pattern [\w]+ (ASCII letters, digits and _),
// and issues upper-case letters and digits (AKIA..., ASIA...). The wider
// documented set is kept so that no key AWS may issue is ever refused;
// none of it means anything to a shell.
func issuedKeyID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// issuedBase64 reports whether s is made of base64's characters
// (A-Z a-z 0-9 + / =), those of every secret access key and session
// token AWS issues.
func issuedBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '+' && c != '/' && c != '=' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
