package kivuli

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
)

// The signing region of a request is, in this order:
//
//  1. Transport.Region, when set (for every host);
//  2. the region the host names (sts.eu-west-2.amazonaws.com), or that
//     AWS's endpoint data gives it (iam.amazonaws.com: us-east-1);
//  3. AWS_REGION, else AWS_DEFAULT_REGION, as the AWS SDKs and CLI read
//     them, for a host that names none;
//
// and an error ([ErrUnknownScope]) when none gives one. A program on EC2
// that talks to its own region through a custom domain or a tunnel can set
// Transport.Region from [Credentials.Region] (or [IMDS.Region]), which asks
// the instance metadata service with the client that fetches the
// credentials.

// regionPath is where IMDS tells the instance's region.
const regionPath = "/latest/meta-data/placement/region"

// envRegion is the region of the environment, read once per Transport: the
// route cache keeps the scopes decided with it, so that reading it again
// on a later host switch could give hosts of one Transport different
// defaults; and the SDKs too read it once, when their configuration is
// loaded.
type envRegion struct {
	once   sync.Once
	region string
	err    error
}

func (t *Transport) envRegion() (string, error) {
	t.env.once.Do(func() { t.env.region, t.env.err = regionFromEnv() })
	return t.env.region, t.env.err
}

// regionFromEnv returns AWS_REGION, else AWS_DEFAULT_REGION; an empty
// variable counts as unset, as in the SDKs.
func regionFromEnv() (string, error) {
	for _, name := range [...]string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := os.Getenv(name); v != "" {
			if !validRegionName(v) {
				return "", invalid(ErrInvalidConfig, name+": %q is not a region name", v)
			}
			return v, nil
		}
	}
	return "", nil
}

// validRegionName reports whether s can be a region name: lower case
// letters, digits and '-', as every region's name is. It is not held to the
// partitions' patterns, so that a SigV4 server of one's own may have a
// region of its own.
func validRegionName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Region returns the AWS Region the instance runs in, as the instance
// metadata service tells it (GET /latest/meta-data/placement/region), with
// the session token, retries and fallbacks of credential requests. The
// context bounds the call; without a deadline, 5 seconds do. It
// does not cache the answer: call it once, at start-up.
func (p *IMDS) Region(ctx context.Context) (string, error) {
	return imdsCall(ctx, p, p.region)
}

// region is Region's call.
func (p *IMDS) region(ctx context.Context, op *operation) (string, error) {
	body, err := p.get(ctx, op, "region", regionPath)
	if err != nil {
		var ierr *IMDSError
		if errors.As(err, &ierr) && errors.Is(err, ErrNoRole) {
			// get reads a 404 as a missing role, which it is not here.
			return "", wrap("IMDS does not tell the region", ierr)
		}
		return "", err
	}
	region := strings.TrimSpace(string(body))
	if !validRegionName(region) {
		return "", invalid(ErrInvalidDocument, "the region answer (%d bytes, not shown) is not a region name", len(region))
	}
	return region, nil
}

// Region returns the AWS Region the instance runs in, from the instance
// metadata service that the credentials come from ([IMDS.Region]), so that
// a program needs no second IMDS client:
//
//	creds, err := kivuli.New(ctx)
//	...
//	region, err := creds.Region(ctx)
//	...
//	tr := &kivuli.Transport{Credentials: creds, Region: region}
//
// It returns [ErrNotIMDS] for credentials from another source.
func (c *Credentials) Region(ctx context.Context) (string, error) {
	p, ok := c.src.CredentialsProvider.(*IMDS)
	if !ok {
		return "", ErrNotIMDS
	}
	return p.Region(ctx)
}
