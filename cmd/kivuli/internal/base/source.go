package base

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/kivuli-go/kivuli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Credential sources.
const (
	SourceIMDS  = "imds"
	SourceChain = "chain"
)

// SourceFlags are the CREDENTIAL SOURCE options every command takes.
type SourceFlags struct {
	Source       string
	role         string
	noToken      bool
	IMDSEndpoint string
	Profile      string
	RoleARN      string
	externalID   string
	sessionName  string

	// from names the flag that picks the source: "source", or "from"
	// for kivuli imds, where --role and --no-token describe the
	// emulated IMDS instead.
	from  string
	flags *pflag.FlagSet // the command's, to tell which flags were given
}

// AddSourceFlags adds the credential-source flags to cmd. With imdsRole
// false (kivuli imds), --role and --no-token are left to the command and
// --source is called --from.
func AddSourceFlags(cmd *cobra.Command, sf *SourceFlags, imdsRole bool) {
	fs := pflag.NewFlagSet("source", pflag.ContinueOnError)
	fs.SortFlags = false
	sf.from = "source"
	if imdsRole {
		fs.StringVar(&sf.Source, "source", SourceIMDS, "where credentials come from: `SOURCE` is imds (the instance role, through the kivuli library) or chain (the aws-sdk-go-v2 default chain: environment, shared config and SSO, web identity, ECS/EKS container credentials, IMDS)")
		fs.StringVar(&sf.role, "role", "", "the instance role `NAME` to read from IMDS (default: the first role IMDS lists)")
		fs.BoolVar(&sf.noToken, "no-token", false, "IMDSv1 requests only, no session token (Elastic Beanstalk Docker containers, where the token request cannot succeed)")
	} else {
		sf.from = "from"
		fs.StringVar(&sf.Source, "from", "", "serve real, refreshing credentials from this `SOURCE` (imds or chain, as --source elsewhere) instead of fake ones; any local process can then read them")
	}
	fs.StringVar(&sf.IMDSEndpoint, "imds-endpoint", "", "the IMDS endpoint `URL` (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254)")
	fs.StringVar(&sf.Profile, "profile", "", "the shared-config `PROFILE` to use; implies --"+sf.from+" chain")
	fs.StringVar(&sf.RoleARN, "role-arn", "", "assume the role `ARN` with STS, with the credentials of the source")
	fs.StringVar(&sf.externalID, "external-id", "", "the external `ID` that --role-arn's trust policy asks for")
	fs.StringVar(&sf.sessionName, "role-session-name", "", "the session `NAME` for --role-arn (default: kivuli- and the time)")
	fs.VisitAll(func(f *pflag.Flag) { _ = fs.SetAnnotation(f.Name, groupSource, []string{"1"}) })
	cmd.Flags().AddFlagSet(fs)
	sf.flags = cmd.Flags()
}

// name returns the source the flags pick, or a usage error when they
// contradict each other.
func (sf *SourceFlags) name() (string, error) {
	name := sf.Source
	set := sf.flags.Changed(sf.from)
	if name == "" {
		name = SourceIMDS
	}
	if name != SourceIMDS && name != SourceChain {
		return "", UsageErrorf("--%s %q: want %s or %s", sf.from, sf.Source, SourceIMDS, SourceChain)
	}
	if err := checkIMDSEndpoint(sf.IMDSEndpoint); err != nil {
		return "", err
	}
	if sf.Profile != "" {
		if set && name == SourceIMDS {
			return "", UsageErrorf("--profile reads the shared config: it needs --%s chain, not --%s imds", sf.from, sf.from)
		}
		name = SourceChain
	}
	if name == SourceChain && sf.from == "source" {
		for _, f := range []string{"role", "no-token"} {
			if sf.flags.Changed(f) {
				return "", UsageErrorf("--%s applies to --source imds; the chain reads IMDS with the SDK's defaults", f)
			}
		}
	}
	return name, nil
}

// Source is the credentials of one run, and what to close after it.
type Source struct {
	Creds   *kivuli.Credentials
	Region  string // from --region, the environment, the profile, or IMDS when asked; may be ""
	closers []func()
}

// Close stops the credentials' refreshes.
func (s *Source) Close() {
	for _, c := range slices.Backward(s.closers) {
		c()
	}
}

// Open gets credentials as the flags say, with region as the region
// flag gave it (possibly ""); with needRegion, a region that neither the
// flag, the environment nor the profile gives is asked of IMDS. The
// credentials are refreshed in the background until Close.
func (sf *SourceFlags) Open(ctx context.Context, a *App, region string, needRegion bool) (*Source, error) {
	name, err := sf.name()
	if err != nil {
		return nil, err
	}
	s := &Source{Region: cmp.Or(region, a.Env.Get("AWS_REGION"), a.Env.Get("AWS_DEFAULT_REGION"))}
	if name == SourceChain {
		err = sf.openChain(ctx, s, region)
	} else {
		err = sf.openIMDS(ctx, s, needRegion || sf.RoleARN != "")
	}
	if err != nil {
		return nil, err
	}
	if sf.RoleARN == "" {
		return s, nil
	}
	if err := sf.assumeRole(ctx, s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openIMDS gets s's credentials from IMDS with the library, and with
// needRegion the region from IMDS when s has none.
func (sf *SourceFlags) openIMDS(ctx context.Context, s *Source, needRegion bool) error {
	opts := []kivuli.Option{}
	if sf.role != "" {
		opts = append(opts, kivuli.WithRoleName(sf.role))
	}
	if sf.noToken {
		opts = append(opts, kivuli.WithoutAPIToken())
	}
	if sf.IMDSEndpoint != "" {
		opts = append(opts, kivuli.WithEndpoint(sf.IMDSEndpoint))
	}
	c, err := kivuli.New(ctx, opts...)
	if errors.Is(err, kivuli.ErrInvalidConfig) {
		return err // a flag or the environment: exit 2 (ExitCode)
	}
	if err != nil {
		return &ExitError{Code: ExitNoCreds, Err: withChainHint(ctx, err)}
	}
	s.closers = append(s.closers, func() { c.Close() })
	s.Creds = c
	if s.Region == "" && needRegion {
		s.Region = sf.imdsRegion(ctx)
	}
	return nil
}

// openChain gets s's credentials, and its region when it has none, from
// the SDK's default chain, region as the region flag gave it.
func (sf *SourceFlags) openChain(ctx context.Context, s *Source, region string) error {
	if err := recursionGuard(); err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx, sf.configOptions(region)...)
	if err != nil {
		return &ExitError{Code: ExitNoCreds, Err: fmt.Errorf("kivuli: loading the AWS configuration: %w", err)}
	}
	if s.Region == "" {
		s.Region = cfg.Region
	}
	if cfg.Credentials == nil {
		return &ExitError{Code: ExitNoCreds, Err: errors.New("kivuli: the default credential chain found no credentials")}
	}
	c, err := kivuli.New(ctx, kivuli.WithProvider(withEnvExpiry(uncached(cfg.Credentials))))
	if err != nil {
		return asUsage(&ExitError{Code: ExitNoCreds, Err: fmt.Errorf("kivuli: the default credential chain: %w", err)})
	}
	s.closers = append(s.closers, func() { c.Close() })
	s.Creds = c
	return nil
}

// assumeRole replaces s's credentials with those of --role-arn, assumed
// with them.
func (sf *SourceFlags) assumeRole(ctx context.Context, s *Source) error {
	base := s.Creds
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cmp.Or(s.Region, "us-east-1")), config.WithCredentialsProvider(base))
	if err != nil {
		return &ExitError{Code: ExitNoCreds, Err: fmt.Errorf("kivuli: configuring STS for --role-arn: %w", err)}
	}
	// The client signs with base itself: kivuli keeps it fresh, and the
	// SDK's cache that config wraps it in would keep it until it expires.
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.Credentials = base })
	assume := stscreds.NewAssumeRoleProvider(client, sf.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		if sf.externalID != "" {
			o.ExternalID = aws.String(sf.externalID)
		}
		o.RoleSessionName = cmp.Or(sf.sessionName, fmt.Sprintf("kivuli-%d", time.Now().Unix()))
	})
	c, err := kivuli.New(ctx, kivuli.WithProvider(assume))
	if err != nil {
		return &ExitError{Code: ExitNoCreds, Err: fmt.Errorf("kivuli: assuming role %s: %w", sf.RoleARN, err)}
	}
	s.closers = append(s.closers, func() { c.Close() })
	s.Creds = c
	return nil
}

// configOptions are the aws-sdk-go-v2 config options the flags imply.
func (sf *SourceFlags) configOptions(region string) []func(*config.LoadOptions) error {
	var opts []func(*config.LoadOptions) error
	if sf.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(sf.Profile))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if sf.IMDSEndpoint != "" {
		opts = append(opts, config.WithEC2IMDSEndpoint(sf.IMDSEndpoint))
	}
	return opts
}

// checkIMDSEndpoint refuses an --imds-endpoint that is not an http(s)
// URL of a host, as the library and the SDK would, before either is
// asked: a missing scheme is a wrong flag, not a missing IMDS.
func checkIMDSEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return nil
	}
	if !strings.Contains(endpoint, "://") {
		return UsageErrorf("--imds-endpoint %q has no scheme: http://%s?", endpoint, endpoint)
	}
	return UsageErrorf("--imds-endpoint %q: want http://HOST[:PORT], such as http://169.254.169.254", endpoint)
}

// imdsRegion asks IMDS for the instance's region, briefly: it only fills
// in AWS_REGION for exec, and STS's region for --role-arn. It returns ""
// when IMDS does not say.
func (sf *SourceFlags) imdsRegion(ctx context.Context) string {
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return ""
	}
	endpoint := cmp.Or(sf.IMDSEndpoint, os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
	client := imds.New(imds.Options{Endpoint: endpoint, EnableFallback: aws.TrueTernary})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := client.GetRegion(ctx, nil)
	if err != nil {
		return ""
	}
	return out.Region
}

// uncached makes an aws.CredentialsCache hand its provider's answer
// through: kivuli caches and refreshes ahead of expiry itself, and a
// cache below it would hand back the same credentials until they expire.
func uncached(p aws.CredentialsProvider) aws.CredentialsProvider {
	cache, ok := p.(*aws.CredentialsCache)
	if !ok {
		return p
	}
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		cache.Invalidate()
		v, err := cache.Retrieve(ctx)
		if err != nil {
			return v, &sourceError{err: err}
		}
		return v, nil
	})
}

// DepthVar counts the kivuli commands reading the chain inside one
// another, as the AWS CLI's _AWS_CLI_PROFILE_CHAIN does: a profile whose
// credential_process is "kivuli creds --profile" of itself would
// otherwise run itself until the machine gives out.
const DepthVar = "_KIVULI_CHAIN_DEPTH"

// maxDepth allows a credential_process that runs kivuli on another
// profile, and one more level.
const maxDepth = 4

// recursionGuard refuses a chain read nested too deep, and counts this
// one in the environment the SDK's credential_process children inherit.
func recursionGuard() error {
	depth, _ := strconv.Atoi(os.Getenv(DepthVar))
	if depth >= maxDepth {
		return &ExitError{Code: ExitNoCreds, Err: fmt.Errorf("kivuli: %d kivuli commands read the credential chain inside one another: a credential_process runs kivuli on its own profile?", depth)}
	}
	return os.Setenv(DepthVar, strconv.Itoa(depth+1))
}

// sourceError wraps a failure to get credentials from a source other than
// kivuli's own IMDS client: the SDK's chain, a profile, AssumeRole.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }

func (e *sourceError) Unwrap() error { return e.err }
