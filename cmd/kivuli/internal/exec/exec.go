package exec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/cobra"
)

// execOptions are kivuli exec's flags, and the run they are for.
type execOptions struct {
	*base.App
	sf     base.SourceFlags
	serve  bool
	region string
}

// NewCommand is kivuli exec.
func NewCommand(a *base.App) *cobra.Command {
	o := &execOptions{App: a}
	cmd := &cobra.Command{
		Use:   "exec [options] [--] CMD [ARGS...]",
		Short: "run a command with credentials, in its environment or served to it",
		Long: `kivuli exec runs CMD with the credentials of the source (the instance role
by default) in its environment:

  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
  AWS_CREDENTIAL_EXPIRATION   when they expire (RFC 3339, +00:00)
  AWS_REGION, AWS_DEFAULT_REGION
                              from --region, else AWS_REGION or
                              AWS_DEFAULT_REGION, else the profile's,
                              else IMDS's placement/region

The command's credentials are exactly kivuli's, with or without --serve:
every variable that would give its SDK other credentials, or take
precedence over kivuli's, is removed: the caller's AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SECURITY_TOKEN,
AWS_CREDENTIAL_EXPIRATION, AWS_ACCESS_KEY, AWS_SECRET_KEY, AWS_ACCOUNT_ID,
AWS_PROFILE, AWS_DEFAULT_PROFILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME,
AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_FULL_URI and
_RELATIVE_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN and _TOKEN_FILE,
AWS_CREDENTIAL_FILE and AWS_BEARER_TOKEN_BEDROCK. AWS_CONFIG_FILE and
AWS_SHARED_CREDENTIALS_FILE stay, for the other settings of those files:
the credentials kivuli sets come first in every SDK's chain, and its
AWS_REGION before a profile's region. kivuli exec then becomes CMD
(execve), so that signals reach it directly and its exit status is
kivuli's.

Environment variables do not refresh: a command that outlives the
credentials (an hour to six on EC2) gets refusals. For such commands use
--serve: kivuli exec then serves the credentials, kept fresh, from an
endpoint on 127.0.0.1 in the format of ECS container credentials, and sets
only AWS_CONTAINER_CREDENTIALS_FULL_URI and a random
AWS_CONTAINER_AUTHORIZATION_TOKEN (and the region). Every AWS SDK and the
AWS CLI read such an endpoint and refresh from it by themselves. The
endpoint answers only requests that carry the token, listens on loopback
only, and ends with the command. A web page in a browser cannot know the
token, and is not answered either: the endpoint answers only a Host that
is an IP address or localhost (421 otherwise: a page that rebinds its own
name to 127.0.0.1 sends that name), and refuses a request from a page of
another origin (an Origin, or a Sec-Fetch-Site other than same-origin or
none; 403). A [default] profile with credentials in the shared files
still comes before the endpoint in the SDKs' chains. With --serve, kivuli
exec stays the command's parent: it passes every signal it can catch on to
the command (a Ctrl-C in a terminal reaches the command from the terminal
as well) and exits with the command's status, or by the signal that ended
it.

Flags after CMD are CMD's: use -- before a command that starts with '-'.`,
		Annotations: map[string]string{
			base.AnnSynopsis: "kivuli exec [--serve] [--region R] [CREDENTIAL SOURCE options] [--] CMD [ARGS...]",
			base.AnnExitOnly: fmt.Sprintf(`The exit status of CMD; when a signal ended CMD, kivuli exec --serve ends
by the same signal (a shell reports 128+N). Before CMD runs:
2    a flag or an argument is wrong.
3    no credentials: the source did not give any (when IMDS does not
     answer, the message says where --source chain would find some).
%d  CMD was found but could not be run.
%d  CMD was not found.`, base.ExitCannotRun, base.ExitNotFound),
			base.AnnSeeAlso: "kivuli creds --help, aws-vault exec, env(1)",
		},
		Example: `# a script with the instance role's credentials and region
kivuli exec -- ./deploy.sh --stage prod

# a long job: credentials served and refreshed, never stale
kivuli exec --serve -- python etl.py

# the AWS CLI with a role assumed on top of the instance role
kivuli exec --role-arn arn:aws:iam::123456789012:role/read-only -- aws s3 ls

# a profile of the shared config, through the SDK's chain
kivuli exec --profile ci -- terraform plan

# offline, with the emulator's credentials
kivuli imds -- kivuli exec -- env`,
		Args: base.UsageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), args) },
	}
	cmd.Flags().SetInterspersed(false) // flags after CMD are CMD's
	cmd.Flags().BoolVar(&o.serve, "serve", false, "serve the credentials, kept fresh, from a loopback endpoint in the ECS format instead of setting them in the environment")
	cmd.Flags().StringVar(&o.region, "region", "", "the `REGION` to set as AWS_REGION and AWS_DEFAULT_REGION (default: see above)")
	base.AddSourceFlags(cmd, &o.sf, true)
	return cmd
}

// run runs the command with the source's credentials: in its environment
// (becoming it), or served to it (--serve).
func (o *execOptions) run(ctx context.Context, args []string) error {
	path, err := base.LookPath(args[0])
	if err != nil {
		return err
	}
	src, err := o.sf.Open(ctx, o.App, o.region, true)
	if err != nil {
		return err
	}
	defer src.Close()
	env := base.ChildEnviron(o.Env)
	if src.Region != "" {
		env = env.With("AWS_REGION", src.Region).With("AWS_DEFAULT_REGION", src.Region)
	}
	if o.serve {
		return o.serveAndRun(ctx, src, env, path, args)
	}
	v, err := base.Retrieve(ctx, src.Creds)
	if err != nil {
		return err
	}
	env = base.WithCredentials(env, v)
	src.Close()
	return o.execve(path, args, env)
}

// execve makes the process become the command, where the system can;
// elsewhere it runs it as a child.
func (o *execOptions) execve(path string, args []string, env base.Environ) error {
	if err := replaceProcess(path, args, env); err != nil && !errors.Is(err, errNoExecve) {
		return &base.ExitError{Code: base.ExitCannotRun, Err: fmt.Errorf("kivuli: exec %s: %w", args[0], err)}
	}
	return o.RunChild(path, args, env)
}

// serveAndRun serves src's credentials on loopback and runs the command
// with the endpoint in its environment, until it ends.
func (o *execOptions) serveAndRun(ctx context.Context, src *base.Source, env base.Environ, path string, args []string) error {
	ln, err := base.ListenTCP("--serve", "127.0.0.1:0", false, "")
	if err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           newCredentialsHandler(src.Creds, token),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          base.DiscardLog(),
	}
	go srv.Serve(ln)
	defer func() {
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	env = env.With("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://"+ln.Addr().String()+credentialsPath).
		With("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
	return o.RunChild(path, args, env)
}
