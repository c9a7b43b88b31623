package creds

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/cobra"
)

// The formats of kivuli creds: the AWS CLI's export-credentials formats,
// and json.
var credsFormats = []string{"process", "env", "env-no-export", "powershell", "windows-cmd", "fish", "json"}

// credsOptions are kivuli creds's flags, and the run they are for.
type credsOptions struct {
	*base.App
	sf     base.SourceFlags
	format string
}

// NewCommand is kivuli creds.
func NewCommand(a *base.App) *cobra.Command {
	o := &credsOptions{App: a}
	cmd := &cobra.Command{
		Use:   "creds [--format FORMAT]",
		Short: "print credentials for any tool, in the AWS CLI's export formats",
		Long: `kivuli creds gets credentials from the source (the instance role by
default) and prints them in the format asked for. The formats are those of
'aws configure export-credentials', byte for byte, so that what works with
the AWS CLI's output works with kivuli's:

  process        the credential_process JSON: Version 1, AccessKeyId,
                 SecretAccessKey, SessionToken, Expiration (the default)
  env            export AWS_ACCESS_KEY_ID=... lines for POSIX shells
  env-no-export  AWS_ACCESS_KEY_ID=... lines, not exported
  powershell     $Env:AWS_ACCESS_KEY_ID="..." lines
  windows-cmd    set AWS_ACCESS_KEY_ID=... lines
  fish           set -gx AWS_ACCESS_KEY_ID "..." lines
  json           one JSON object: AccessKeyId, SecretAccessKey,
                 SessionToken, Expiration (kivuli's own format)

The session token is printed when the credentials have one, and the
expiry (AWS_CREDENTIAL_EXPIRATION, Expiration) whenever they expire, in
RFC 3339 with a +00:00 offset as the AWS CLI writes it. Credentials that
--source chain finds in the environment expire when
AWS_CREDENTIAL_EXPIRATION says, read as the AWS CLI reads it (ISO 8601
with an offset), so that 'kivuli exec -- kivuli creds --source chain'
keeps the expiry: a time already past is refused (exit 3), one that is
not a time is a wrong variable (exit 2).

The shell formats (env, env-no-export, powershell, windows-cmd, fish)
print the values as the AWS CLI does: unquoted, or in double quotes that
the shell still expands. That is safe only for the characters AWS issues,
so those formats print nothing else: an access key ID may hold only
letters, digits and _, a secret access key and a session token only
letters, digits, +, / and = (base64). Credentials holding anything else,
whatever the source (IMDS, the chain, a profile, a credential_process),
did not come from AWS and could run commands in the shell that evaluates
them: kivuli creds prints nothing, says which value is wrong without
showing it, and exits with status 3. From IMDS (--source imds), such
credentials are refused in every format. The process and json formats
quote every value as JSON and print what other sources give.

With 'credential_process = kivuli creds' in ~/.aws/config every AWS SDK and
the AWS CLI use kivuli's IMDS client: IMDSv2 with the fallback to IMDSv1,
or --no-token where the token request cannot succeed (Elastic Beanstalk
Docker). The SDKs run the process again when the credentials near their
Expiration (botocore 15 minutes before, aws-sdk-go-v2 when they expire):
kivuli creds keeps no cache between runs.

The output holds secrets: print it to a terminal or a pipe, not to a log.`,
		Annotations: map[string]string{
			base.AnnSynopsis: "kivuli creds [--format FORMAT] [CREDENTIAL SOURCE options]",
			base.AnnExitOnly: strings.Replace(base.ExitStatusText, "AssumeRole refused).", "AssumeRole refused); with a shell\n     format, credentials holding characters AWS never issues.", 1),
			base.AnnSeeAlso:  "kivuli exec --help (a command run with credentials), aws configure export-credentials",
		},
		Example: `# ~/.aws/config: every SDK and the AWS CLI get kivuli's IMDS credentials
[profile instance]
credential_process = kivuli creds --format process

# the same in an Elastic Beanstalk Docker container (no IMDSv2 token)
credential_process = kivuli creds --no-token

# into the current shell
eval "$(kivuli creds --format env)"

# PowerShell
kivuli creds --format powershell | Invoke-Expression

# a role assumed on top of the instance role
kivuli creds --role-arn arn:aws:iam::123456789012:role/deploy --format env`,
		Args: base.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	cmd.Flags().StringVar(&o.format, "format", "process", "the output `FORMAT`: "+strings.Join(credsFormats, ", "))
	base.AddSourceFlags(cmd, &o.sf, true)
	return cmd
}

// run prints the source's credentials in the format asked for.
func (o *credsOptions) run(ctx context.Context) error {
	if !slices.Contains(credsFormats, o.format) {
		return base.UsageErrorf("--format %q: want one of %s", o.format, strings.Join(credsFormats, ", "))
	}
	src, err := o.sf.Open(ctx, o.App, "", false)
	if err != nil {
		return err
	}
	defer src.Close()
	v, err := base.Retrieve(ctx, src.Creds)
	if err != nil {
		return err
	}
	out, err := formatCreds(o.format, v, runtime.GOOS)
	if err != nil {
		return err
	}
	_, err = io.WriteString(o.Stdout, out)
	return err
}

// formatCreds returns v in format, for a program running on goos; a shell
// format refuses values that a shell could read as more than text (see
// shellSafe).
func formatCreds(format string, v aws.Credentials, goos string) (string, error) {
	var exp string
	if v.CanExpire {
		exp = base.Isoformat(v.Expires)
	}
	if format == "process" {
		return processJSON(v, exp), nil
	}
	if format == "json" {
		return plainJSON(v), nil
	}
	if err := shellSafe(v, format); err != nil {
		return "", err
	}
	// The AWS CLI writes "\n", which Python turns into "\r\n" on Windows
	// for the formats it does not force to "\n" (those of Windows shells).
	nl := "\n"
	var line string
	switch format {
	case "env":
		line = "export %s=%s"
	case "env-no-export":
		line = "%s=%s"
	case "powershell":
		line = `$Env:%s="%s"`
	case "windows-cmd":
		line = "set %s=%s"
	case "fish":
		line = `set -gx %s "%s"`
	}
	if goos == "windows" && (format == "powershell" || format == "windows-cmd") {
		nl = "\r\n"
	}
	var b strings.Builder
	add := func(k, v string) { fmt.Fprintf(&b, line+nl, k, v) }
	add("AWS_ACCESS_KEY_ID", v.AccessKeyID)
	add("AWS_SECRET_ACCESS_KEY", v.SecretAccessKey)
	if v.SessionToken != "" {
		add("AWS_SESSION_TOKEN", v.SessionToken)
	}
	if exp != "" {
		add("AWS_CREDENTIAL_EXPIRATION", exp)
	}
	return b.String(), nil
}

// processJSON is the AWS CLI's process format: json.dumps with indent=2
// and separators (',', ': '), then a newline.
func processJSON(v aws.Credentials, exp string) string {
	fields := [][2]string{{"AccessKeyId", v.AccessKeyID}, {"SecretAccessKey", v.SecretAccessKey}}
	if v.SessionToken != "" {
		fields = append(fields, [2]string{"SessionToken", v.SessionToken})
	}
	if exp != "" {
		fields = append(fields, [2]string{"Expiration", exp})
	}
	var b strings.Builder
	b.WriteString("{\n  \"Version\": 1")
	for _, f := range fields {
		b.WriteString(",\n  " + pyQuote(f[0]) + ": " + pyQuote(f[1]))
	}
	b.WriteString("\n}\n")
	return b.String()
}

// plainJSON is the json format: one line, no Version, Expiration in
// RFC 3339 UTC as IMDS and the ECS endpoint write it.
func plainJSON(v aws.Credentials) string {
	var b strings.Builder
	b.WriteString(`{"AccessKeyId":` + pyQuote(v.AccessKeyID) + `,"SecretAccessKey":` + pyQuote(v.SecretAccessKey))
	if v.SessionToken != "" {
		b.WriteString(`,"SessionToken":` + pyQuote(v.SessionToken))
	}
	if v.CanExpire {
		b.WriteString(`,"Expiration":` + pyQuote(v.Expires.UTC().Format(time.RFC3339)))
	}
	b.WriteString("}\n")
	return b.String()
}

// pyQuote quotes s as Python's json.dumps does by default (ensure_ascii):
// '"' and '\\' escaped, control characters and everything beyond ASCII
// as \uXXXX (surrogate pairs beyond the BMP); '/' and '<' stay as they
// are, unlike encoding/json's defaults.
func pyQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || r >= 0x7f && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
