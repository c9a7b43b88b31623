package proxycmd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
)

// kivuli proxy's start-up check names every wrong or missing flag in one
// message: a user moving a command line over from aws-sigv4-proxy should
// not need a try per flag. The flags are checked, then the signer is asked
// about the upstream with made-up credentials (nothing is sent), before
// the credential source is opened: a refusal does not wait for IMDS.

// problems gathers the start-up errors.
type problems struct {
	errs []error
}

// add records err, if any.
func (p *problems) add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// err is nil, the one problem as it is, or all of them in one error:
// exit 2 if any flag is wrong, 4 if the signer's refusals are all.
func (p *problems) err() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	code := base.ExitRefused
	var b strings.Builder
	fmt.Fprintf(&b, "kivuli: %d problems:", len(p.errs))
	for _, e := range p.errs {
		if base.ExitCode(e) != base.ExitRefused {
			code = base.ExitUsage
		}
		b.WriteString("\n  " + strings.TrimPrefix(e.Error(), "kivuli: "))
	}
	return &base.ExitError{Code: code, Err: errors.New(b.String())}
}

// probeCredentials are the made-up credentials of the start-up check:
// the signer presigns one URL with them, which is never sent.
var probeCredentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDKIVULISTARTUP", SecretAccessKey: "start-up-check", Source: "kivuli proxy's start-up check"}, nil
})

// probeRegion stands in for the region the credential source may give.
const probeRegion = "us-east-1"

// checkSigner makes the proxy of cfg with made-up credentials, and on
// each refusal that a flag answers (--allow-host, --service, --region)
// records it and tries again as if the flag were given, so that every one
// is named. A region that nothing names yet is not a problem: the credential
// source may give it (IMDS's placement/region, the profile); needRegion
// says the source is to be asked.
func checkSigner(ctx context.Context, cfg proxy.Config, p *problems) (needRegion bool) {
	cfg.Credentials, cfg.Observer, cfg.Logger, cfg.ErrorHandler = probeCredentials, nil, nil, nil
	listed := false
	for range 4 {
		px, err := proxy.New(ctx, cfg)
		if err == nil {
			px.Close()
			return needRegion
		}
		switch {
		case !listed && (errors.Is(err, kivuli.ErrHostNotAllowed) || errors.Is(err, kivuli.ErrPlaintext)):
			p.add(upstreamError(cfg.Upstream, err))
			listed = true
			if u, perr := url.Parse(cfg.Upstream); perr == nil {
				cfg.AllowedHosts = append(slices.Clip(cfg.AllowedHosts), u.Host)
			}
		case errors.Is(err, kivuli.ErrUnknownScope) && cfg.Service == "" && !hostNamesService(cfg):
			p.add(upstreamError(cfg.Upstream, err))
			cfg.Service = "kivuli-start-up-check"
		case errors.Is(err, kivuli.ErrUnknownScope) && cfg.Region == "":
			needRegion = true
			cfg.Region = probeRegion
		default:
			p.add(upstreamError(cfg.Upstream, err))
			return needRegion
		}
	}
	return needRegion
}

// signedHost is the host the proxy signs for: --sign-host, else the
// upstream's.
func signedHost(cfg proxy.Config) string {
	if cfg.SignHost != "" {
		return cfg.SignHost
	}
	if u, err := url.Parse(cfg.Upstream); err == nil {
		return u.Host
	}
	return ""
}

// hostNamesService reports whether the signed host tells its service.
func hostNamesService(cfg proxy.Config) bool {
	service, _ := kivuli.InferScope(signedHost(cfg), "/")
	return service != ""
}

// upstreamError is an error of proxy.New in the flags' words: exit 4 for
// the signer's refusals, 2 for a wrong flag.
func upstreamError(upstream string, err error) error {
	if base.RefusedBySigner(err) {
		return &base.ExitError{Code: base.ExitRefused, Err: fmt.Errorf("kivuli: --upstream %s: %s", redactedURL(upstream), base.FlagWords(strings.TrimPrefix(err.Error(), "kivuli: ")))}
	}
	return base.ConfigError(err)
}

// redactedURL is raw as a message shows it: any password hidden.
func redactedURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}
