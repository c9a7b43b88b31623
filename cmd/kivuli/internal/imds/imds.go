package imds

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/imdstest"
	"github.com/kivuli-go/kivuli/internal/guard"
	"github.com/spf13/cobra"
)

// imdsFlags are kivuli imds's own flags, and the run they are for.
type imdsFlags struct {
	*base.App
	listen       string
	v1, v2only   bool
	noToken      bool
	role         string
	noRole       bool
	lifetime     time.Duration
	rotateBefore time.Duration
	faults       []string
	region       string
	allowRemote  bool
	serveHosts   []string
	sf           base.SourceFlags
}

// NewCommand is kivuli imds.
func NewCommand(a *base.App) *cobra.Command {
	f := &imdsFlags{App: a}
	cmd := &cobra.Command{
		Use:   "imds [options] [-- CMD [ARGS...]]",
		Short: "run the EC2 Instance Metadata Service emulator as a server",
		Long: `kivuli imds serves the project's IMDS emulator (the library's imdstest) over
HTTP, speaking the protocol as the EC2 User Guide defines it: session
tokens (PUT /latest/api/token with a TTL of 1 to 21600 seconds, refused when
the request carries X-Forwarded-For), the role list and the role's
credential document under /latest/meta-data/iam/security-credentials/, 401
for a missing or expired token in --v2-only mode, GET and HEAD. It also
serves placement/region, placement/availability-zone and a minimal
dynamic/instance-identity/document (what the SDKs read for the region).

Credentials are fakes by default, in the shapes of real ones, issued anew
--rotate-before their expiry, as EC2 rotates them. With --from, the
documents carry real, refreshing credentials from a source (imds: another
IMDS, chain: the aws-sdk-go-v2 default chain, with --profile and --role-arn),
so that code written for EC2 runs unchanged on a laptop or in CI:

  AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1338/

Given CMD, kivuli imds runs it with that variable set, without the
variables that would come before IMDS in its SDK's chain (those kivuli
exec removes: see kivuli exec --help), and exits with its status when it
ends; otherwise it serves until interrupted.

Any local process can read what kivuli imds serves, real credentials
included: it listens on loopback by default, and with --from it refuses a
non-loopback --listen address unless --allow-remote says so.

A web page in a browser on the same machine can send requests to it too,
and, by DNS rebinding its own name to 127.0.0.1, read the answers. So with
--from, kivuli imds:
  - requires IMDSv2 (as --v2-only): a browser cannot send the token PUT,
    nor a GET with the token header, to another origin. --v1 or --no-token
    serve real credentials without a token all the same;
  - answers only a Host that is an IP address, localhost, the host of
    --listen, or a name given with --serve-host (421 Misdirected Request
    otherwise: a rebound page sends its own name);
  - refuses a request from a web page of another origin (Origin, or
    Sec-Fetch-Site other than same-origin or none; 403), and, as EC2 does
    for the token PUT, any request relayed by a proxy (X-Forwarded-For;
    403).
With fake credentials only the control endpoint has these rules.

Faults, as the emulator has them, are switched on at start with --fault
and at run time through the control endpoint. It answers loopback clients
that send the header Kivuli-Control (a web page can send it to another
origin only after a CORS preflight, which the emulator never grants), under
the Host and origin rules above: 403 without the header or from a page of
another origin, 421 for another Host:

  C='Kivuli-Control: 1'
  curl -H "$C" --data 'credentials:503,times=3' http://127.0.0.1:1338/kivuli/faults
  curl -H "$C" -X DELETE http://127.0.0.1:1338/kivuli/faults  # clear them
  curl -H "$C" -X POST http://127.0.0.1:1338/kivuli/rotate    # new credentials now
  curl -H "$C" http://127.0.0.1:1338/kivuli/stats             # requests counted

` + faultSpecHelp,
		Annotations: map[string]string{
			base.AnnSynopsis: `kivuli imds [--listen 127.0.0.1:1338] [--v1 | --v2-only | --no-token]
            [--role NAME] [--lifetime DUR] [--rotate-before DUR] [--fault SPEC]...
            [--region R] [--from SOURCE [--allow-remote]] [--serve-host NAME]...
            [-- CMD [ARGS...]]`,
			base.AnnExitOnly: `0    interrupted (SIGINT, SIGTERM) while serving.
1    the server failed (the address is in use, ...).
2    a flag or an argument is wrong.
3    --from: the source gave no credentials.
With CMD: CMD's exit status, or 126 and 127 when it cannot run.`,
			base.AnnSeeAlso: "amazon-ec2-metadata-mock (AEMM); kivuli curl --help",
		},
		Example: `# an IMDSv2-only instance on the default port, in the background
kivuli imds --v2-only &
export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1338/

# a test suite against an IMDS whose token PUT is lost (hop limit 1)
kivuli imds --fault token:hang -- go test ./...

# credentials that rotate every two minutes, and a throttled IMDS
kivuli imds --lifetime 10m --rotate-before 8m --fault 'credentials:429,times=2'

# real credentials from the shared config for code written for EC2
kivuli imds --from chain --profile dev -- python app.py

# an Elastic Beanstalk Docker container: no tokens at all
kivuli imds --no-token --role aws-elasticbeanstalk-ec2-role`,
		Args: base.UsageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return fmt.Errorf("a command to run goes after --: kivuli imds [options] -- CMD")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd.Context(), args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:1338", "listen on `ADDR` (host:port; port 0 picks one)")
	fl.BoolVar(&f.v1, "v1", false, "accept IMDSv1 and IMDSv2 requests alike (the default without --from; with --from, serve real credentials without a token)")
	fl.BoolVar(&f.v2only, "v2-only", false, "IMDSv2 only: a GET without a valid token is answered 401")
	fl.BoolVar(&f.noToken, "no-token", false, "an IMDS that knows no tokens: the token PUT is answered 404, GETs need none (Elastic Beanstalk)")
	fl.StringVar(&f.role, "role", "kivuli-test-role", "the instance role `NAME` listed and served")
	fl.BoolVar(&f.noRole, "no-role", false, "an instance without a role: the role list answers 404")
	fl.DurationVar(&f.lifetime, "lifetime", 6*time.Hour, "the lifetime `DUR` of each fake credential set (with --from, of real ones that never expire)")
	fl.DurationVar(&f.rotateBefore, "rotate-before", 0, "issue a new set when the current one has less than `DUR` left (default: five sixths of --lifetime, a new set every hour for 6h ones, as EC2 does)")
	fl.StringArrayVar(&f.faults, "fault", nil, "inject the fault `SPEC` from the start (repeatable; see DESCRIPTION)")
	fl.StringVar(&f.region, "region", "us-east-1", "the `REGION` served as placement/region and in the identity document")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "with --from, listen on a non-loopback --listen address all the same")
	fl.StringArrayVar(&f.serveHosts, "serve-host", nil, "also answer requests whose Host is `NAME` (host or host:port; the port is not compared), such as host.docker.internal (repeatable)")
	base.AddSourceFlags(cmd, &f.sf, false)
	return cmd
}

// mode is the emulator's mode the flags choose: IMDSv1 and IMDSv2 by
// default, IMDSv2 only by default with real credentials, which a web page
// could otherwise read with a GET.
func (f *imdsFlags) mode(real bool) (imdstest.Mode, error) {
	switch {
	case f.v1 && f.v2only || f.v1 && f.noToken || f.v2only && f.noToken:
		return 0, base.UsageErrorf("--v1, --v2-only and --no-token exclude each other")
	case f.noToken:
		return imdstest.TokenUnsupported, nil
	case f.v2only || real && !f.v1:
		return imdstest.TokenRequired, nil
	}
	return imdstest.TokenOptional, nil
}

func (f *imdsFlags) run(ctx context.Context, args []string) error {
	real := f.sf.Source != "" || f.sf.Profile != "" || f.sf.RoleARN != ""
	cfg, faults, err := f.config(real)
	if err != nil {
		return err
	}
	g, err := guard.New(f.serveHosts, "--serve-host", nil, "")
	if err != nil {
		return base.ConfigError(err)
	}
	g.ServeListen(f.listen)
	what := "fake credentials"
	if real {
		src, err := f.sf.Open(ctx, f.App, "", false)
		if err != nil {
			return err
		}
		defer src.Close()
		cfg.Credentials, what = src.Creds, "real credentials from "+cmp.Or(f.sf.Source, base.SourceChain)
	}
	s := &imdsServer{emu: imdstest.NewHandler(cfg), real: real, guard: g}
	defer s.emu.Close()
	for _, fault := range faults {
		s.emu.Inject(fault)
	}
	return f.serve(ctx, s, fmt.Sprintf("%s, role %s, %s", modeName(cfg.Mode), f.role, what), args)
}

// config checks the flags, before anything is done, and makes the
// emulator's configuration (its credentials fake until a source gives
// real ones) and its faults.
func (f *imdsFlags) config(real bool) (imdstest.Config, []imdstest.Fault, error) {
	mode, err := f.mode(real)
	if err != nil {
		return imdstest.Config{}, nil, err
	}
	if f.rotateBefore == 0 {
		f.rotateBefore = f.lifetime * 5 / 6
	}
	if f.lifetime <= 0 || f.rotateBefore <= 0 || f.rotateBefore >= f.lifetime {
		return imdstest.Config{}, nil, base.UsageErrorf("--rotate-before (%v) must be positive and under --lifetime (%v)", f.rotateBefore, f.lifetime)
	}
	var faults []imdstest.Fault
	for _, spec := range f.faults {
		fault, err := parseFault(spec)
		if err != nil {
			return imdstest.Config{}, nil, base.UsageErrorf("--fault: %v", err)
		}
		faults = append(faults, fault)
	}
	if !real && f.sf.IMDSEndpoint != "" {
		return imdstest.Config{}, nil, base.UsageErrorf("--imds-endpoint names the source of --from imds")
	}
	if err := base.CheckListen("--listen", f.listen, f.allowRemote || !real, imdsRisk); err != nil {
		return imdstest.Config{}, nil, err
	}
	return imdstest.Config{Role: f.role, NoRole: f.noRole, Mode: mode, Lifetime: f.lifetime, RotateBefore: f.rotateBefore, Region: f.region}, faults, nil
}

// serve serves s on --listen, what it serves told on standard error,
// until the command args given has ended, or else ctx.
func (f *imdsFlags) serve(ctx context.Context, s *imdsServer, what string, args []string) error {
	ln, err := base.ListenTCP("--listen", f.listen, f.allowRemote || !s.real, imdsRisk)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: base.DiscardLog()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(f.Stderr, "kivuli imds: serving IMDS on %s (%s)\n", url, what)
	fmt.Fprintf(f.Stderr, "kivuli imds:   export AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/\n", url)
	var runErr error
	if len(args) > 0 {
		runErr = f.runUnder(url, args)
	} else {
		select {
		case <-ctx.Done():
		case err := <-served:
			runErr = fmt.Errorf("kivuli: imds: %w", err)
		}
	}
	s.emu.Close() // releases requests held by hang and delay faults
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return runErr
}

// runUnder runs the command with the emulator as its IMDS.
func (f *imdsFlags) runUnder(url string, args []string) error {
	path, err := base.LookPath(args[0])
	if err != nil {
		return err
	}
	env := base.ChildEnviron(f.Env).Without("AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").
		With("AWS_EC2_METADATA_SERVICE_ENDPOINT", url+"/")
	return f.RunChild(path, args, env)
}

// imdsRisk is what a non-loopback listener of kivuli imds --from risks.
const imdsRisk = "with --from every host that reaches it can read real credentials"

func modeName(m imdstest.Mode) string {
	switch m {
	case imdstest.TokenRequired:
		return "IMDSv2 only"
	case imdstest.TokenUnsupported:
		return "no tokens"
	}
	return "IMDSv1 and IMDSv2"
}
