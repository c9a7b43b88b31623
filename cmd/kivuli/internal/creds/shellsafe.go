package creds

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// The characters AWS issues in credentials, the only ones the shell
// formats print. Those formats write values unquoted (env, env-no-export,
// windows-cmd) or in double quotes that still expand $, ` and \
// (powershell, fish), byte for byte as the AWS CLI does: safe for what
// AWS issues, a command run for a value such as "x;touch pwned;#". The
// library's IMDS client refuses such values already; the chain, a
// profile and credential_process hand over whatever they are given.
const (
	alnumChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// keyIDChars: IAM documents key IDs as [\w]+, and issues A-Z0-9.
	keyIDChars = alnumChars + "_"
	// base64Chars: secret access keys and session tokens.
	base64Chars = alnumChars + "+/="
)

// shellSafe refuses, with exit status 3 as any unusable answer of a
// credential source, credentials holding a character AWS never issues.
// The message names the value, never quotes it. The expiry needs no
// check: kivuli writes it from a time (digits, -, :, T, . and +).
func shellSafe(v aws.Credentials, format string) error {
	for _, f := range [...]struct{ what, value, chars, rule string }{
		{"access key ID (AWS_ACCESS_KEY_ID)", v.AccessKeyID, keyIDChars, "a key ID is letters, digits and _"},
		{"secret access key (AWS_SECRET_ACCESS_KEY)", v.SecretAccessKey, base64Chars, "a secret key is base64: letters, digits, +, / and ="},
		{"session token (AWS_SESSION_TOKEN)", v.SessionToken, base64Chars, "a session token is base64: letters, digits, +, / and ="},
	} {
		if strings.Trim(f.value, f.chars) != "" {
			return &base.ExitError{Code: base.ExitNoCreds, Err: fmt.Errorf(
				"kivuli: refusing to print the credentials for a shell (--format %s): their %s holds characters AWS never issues (%s); the credential source is broken or hostile",
				format, f.what, f.rule)}
		}
	}
	return nil
}
