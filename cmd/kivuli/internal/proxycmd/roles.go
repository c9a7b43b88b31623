package proxycmd

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/proxy"
)

// A route's role-arn: its requests are signed with a role assumed with
// the source's credentials (the instance role), as --role-arn does for
// the whole command. Each role is assumed once at start, whatever number
// of routes name it, and kept fresh by the library ahead of its expiry;
// STS is reached as the SDK's configuration says (AWS_ENDPOINT_URL_STS,
// a proxy), in the route's region, else --region's or the source's, else
// us-east-1.

// assumeRoles sets the credentials of each route of rc that has a role
// (roles, by index) to that role's, and returns what stops their
// refreshes. A role STS refuses exits 3.
func assumeRoles(ctx context.Context, src *base.Source, rc *proxy.RouterConfig, roles []string) (func(), error) {
	byRole := map[string]*kivuli.Credentials{}
	closeAll := func() {
		for _, c := range byRole {
			c.Close()
		}
	}
	for i, arn := range roles {
		if arn == "" {
			continue
		}
		region := cmp.Or(rc.Routes[i].Config.Region, src.Region, "us-east-1")
		key := arn + " " + region
		if byRole[key] == nil {
			c, err := assumeRole(ctx, src.Creds, arn, region)
			if err != nil {
				closeAll()
				return nil, &base.ExitError{Code: base.ExitNoCreds, Err: fmt.Errorf("kivuli: route %q: role-arn %s: %w", routeName(rc.Routes[i]), arn, err)}
			}
			byRole[key] = c
		}
		rc.Routes[i].Config.Credentials = byRole[key]
	}
	return closeAll, nil
}

// assumeRole is the credentials of the role arn, assumed with creds
// through STS in region.
func assumeRole(ctx context.Context, creds *kivuli.Credentials, arn, region string) (*kivuli.Credentials, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithCredentialsProvider(creds))
	if err != nil {
		return nil, fmt.Errorf("configuring STS: %w", err)
	}
	// The client signs with creds itself: kivuli keeps them fresh, and the
	// SDK's cache that config wraps them in would keep them until expiry.
	client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.Credentials = creds })
	assume := stscreds.NewAssumeRoleProvider(client, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = fmt.Sprintf("kivuli-proxy-%d", time.Now().Unix())
	})
	return kivuli.New(ctx, kivuli.WithProvider(assume))
}
