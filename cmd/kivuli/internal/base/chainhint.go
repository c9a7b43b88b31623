package base

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/kivuli-go/kivuli"
)

// withChainHint adds to err, IMDS not answering, where --source chain
// would find credentials, when it would: a user on a laptop with keys in
// the environment or a profile otherwise reads only "not running on EC2".
// It names variables, files and profiles, never values.
func withChainHint(ctx context.Context, err error) error {
	if !errors.Is(err, kivuli.ErrNotOnEC2) && !errors.Is(err, kivuli.ErrIMDSDisabled) {
		return err
	}
	var hints []string
	if vars := envKeyVars(); vars != "" {
		hints = append(hints, vars+" are set: --source chain would use them")
	}
	if profile, files := profileWithCredentials(ctx); len(files) > 0 {
		also := ""
		if profile != "default" {
			also = " (or --profile " + profile + ")"
		}
		hints = append(hints, fmt.Sprintf("the profile %q in %s has credentials: --source chain%s would use them", profile, strings.Join(files, " and "), also))
	}
	if len(hints) == 0 {
		return err
	}
	return fmt.Errorf("%w\nkivuli: but %s", err, strings.Join(hints, "; "))
}

// envKeyVars names the pair of variables that give the chain's
// environment provider its keys, as aws-sdk-go-v2 reads them (the first
// of each pair that is set), or "" when it has none.
func envKeyVars() string {
	id := firstSet("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secret := firstSet("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	if id == "" || secret == "" {
		return ""
	}
	return id + " and " + secret
}

func firstSet(names ...string) string {
	for _, n := range names {
		if os.Getenv(n) != "" {
			return n
		}
	}
	return ""
}

// profileWithCredentials returns the profile the chain would read
// (AWS_PROFILE, else AWS_DEFAULT_PROFILE, else default) and the shared
// files in which it has credentials or a way to get them; none when it
// has none.
func profileWithCredentials(ctx context.Context) (string, []string) {
	profile := cmp.Or(os.Getenv("AWS_PROFILE"), os.Getenv("AWS_DEFAULT_PROFILE"), "default")
	creds := cmp.Or(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), config.DefaultSharedCredentialsFilename())
	conf := cmp.Or(os.Getenv("AWS_CONFIG_FILE"), config.DefaultSharedConfigFilename())
	var files []string
	if hasCredentials(ctx, profile, nil, []string{creds}) {
		files = append(files, creds)
	}
	if hasCredentials(ctx, profile, []string{conf}, nil) {
		files = append(files, conf)
	}
	if len(files) == 0 && hasCredentials(ctx, profile, []string{conf}, []string{creds}) {
		files = []string{conf, creds} // a role in one, its source in the other
	}
	return profile, files
}

// hasCredentials reports whether profile, read from the files given, has
// credentials or a way to get them other than IMDS.
func hasCredentials(ctx context.Context, profile string, confFiles, credsFiles []string) bool {
	sc, err := config.LoadSharedConfigProfile(ctx, profile, func(o *config.LoadSharedConfigOptions) {
		o.ConfigFiles = append([]string{}, confFiles...) // empty, not nil: nil is the defaults
		o.CredentialsFiles = append([]string{}, credsFiles...)
	})
	if err != nil {
		return false
	}
	if sc.CredentialSource == "Ec2InstanceMetadata" {
		return false // IMDS again
	}
	return sc.Credentials.HasKeys() || sc.CredentialProcess != "" || sc.WebIdentityTokenFile != "" ||
		sc.SSOSessionName != "" || sc.SSOStartURL != "" || sc.LoginSession != "" || sc.RoleARN != ""
}
