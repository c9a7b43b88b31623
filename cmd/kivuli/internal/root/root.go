// Package root is the kivuli command's root command: its manual,
// --version, and the five subcommands, each a package of its own.
package root

import (
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/creds"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/curl"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/exec"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/imds"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/proxycmd"
	"github.com/spf13/cobra"
)

// Main runs kivuli with the process's command line, and exits.
func Main() { base.Main(NewCommand) }

// NewCommand is kivuli: its manual, --version, and the five subcommands.
func NewCommand(a *base.App) *cobra.Command {
	root := &cobra.Command{
		Use:   "kivuli",
		Short: "signed requests, credentials and an IMDS emulator from the command line",
		Long: `kivuli brings the credential logic and the SigV4 signer of the Go library
github.com/kivuli-go/kivuli to shells, scripts, cron jobs and programs in
any language on the same machine.

Credentials come from the EC2 Instance Metadata Service (IMDS) by default,
through the library: IMDSv2 tokens with a fallback to IMDSv1, retries,
refresh ahead of expiry. --source chain uses the whole aws-sdk-go-v2
default chain instead (environment, shared config and SSO, web identity,
ECS/EKS container credentials, then IMDS); --role-arn assumes a role on
top of either. Every command takes these CREDENTIAL SOURCE options.

Commands:
  curl    send one signed HTTP request, with curl's flags
  creds   print credentials in the AWS CLI's export-credentials formats
  exec    run a command with credentials in its environment, or served
          to it by a local ECS-style endpoint that keeps them fresh
  imds    run the IMDS emulator as a server, with faults on demand
  proxy   a signing reverse proxy: plain HTTP in, signed requests out

Run 'kivuli help COMMAND' or 'kivuli COMMAND --help' for its manual.`,
		Example: `kivuli curl https://sts.amazonaws.com/?Action=GetCallerIdentity\&Version=2011-06-15
kivuli creds --format env
kivuli exec -- aws s3 ls
kivuli imds -- go test ./...
kivuli proxy --upstream https://search-logs-abc.eu-west-2.es.amazonaws.com`,
		Args: base.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printVersion(cmd) {
				return nil
			}
			return cmd.Help()
		},
	}
	base.SetupRoot(root, curl.NewCommand(a), creds.NewCommand(a), exec.NewCommand(a), imds.NewCommand(a), proxycmd.NewCommand(a))
	addVersionFlag(root)
	return root
}
