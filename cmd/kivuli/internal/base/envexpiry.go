package base

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// ExpirationVar is when credentials in the environment expire, as
// botocore's EnvProvider and the JavaScript SDK v3 read it, and as the
// AWS CLI's export-credentials and kivuli exec write it.
const ExpirationVar = "AWS_CREDENTIAL_EXPIRATION"

// withEnvExpiry gives credentials that the chain found in the environment
// the expiry in ExpirationVar: aws-sdk-go-v2's environment provider does
// not read it, and without it "kivuli exec -- kivuli creds --source chain"
// would hand on credentials that seem never to expire.
func withEnvExpiry(p aws.CredentialsProvider) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		v, err := p.Retrieve(ctx)
		if err != nil || v.Source != config.CredentialsSourceName {
			return v, err
		}
		s := os.Getenv(ExpirationVar)
		if s == "" {
			return v, nil
		}
		t, err := parseExpiration(s)
		if err != nil {
			return aws.Credentials{}, err
		}
		if !t.After(time.Now()) {
			// As botocore refuses them; kivuli would otherwise serve them
			// a few minutes longer, as it does IMDS's in an outage.
			return aws.Credentials{}, &sourceError{fmt.Errorf("the credentials in the environment expired at %s (%s)", Isoformat(t), ExpirationVar)}
		}
		v.CanExpire, v.Expires = true, t
		return v, nil
	})
}

// parseExpiration reads an ISO 8601 time with its offset, as the writers
// of ExpirationVar write it: 2025-06-01T12:34:56+00:00 (the AWS CLI, with
// microseconds when there are any), 2025-06-01T12:34:56.000Z (the
// JavaScript SDK), or an offset without its colon. botocore refuses a
// time without an offset too, when it compares it with its own clock.
func parseExpiration(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &envExpiryError{value: s}
}

// envExpiryError is an ExpirationVar that is not a time: a wrong
// environment variable (exit 2). An expiry is not a secret.
type envExpiryError struct{ value string }

func (e *envExpiryError) Error() string {
	return fmt.Sprintf("kivuli: %s %q: want an ISO 8601 time with its offset, such as 2025-06-01T12:34:56+00:00", ExpirationVar, e.value)
}

// asUsage makes err a usage error (exit 2) when the environment's
// ExpirationVar caused it.
func asUsage(err error) error {
	var ee *envExpiryError
	if errors.As(err, &ee) {
		return &ExitError{Code: ExitUsage, Err: ee}
	}
	return err
}
