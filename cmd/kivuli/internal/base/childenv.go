package base

// CredentialVars are the environment variables that kivuli removes from
// the environment of a command it gives credentials to (kivuli exec, with
// or without --serve, and kivuli imds -- CMD): each gives an AWS SDK
// other credentials, a way to get them, or something that takes
// precedence over the ones kivuli gives, so that the command's
// credentials are exactly kivuli's. Why each goes, from aws-sdk-go-v2
// (config/env_config.go, resolve_credentials.go), botocore
// (credentials.py) and the JavaScript SDK v3 (defaultProvider):
//
//	AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
//	AWS_CREDENTIAL_EXPIRATION
//	    kivuli sets its own (exec); a caller's left over would go with
//	    them (a session token of other keys) or, with --serve, come
//	    first in every chain.
//	AWS_SECURITY_TOKEN
//	    botocore reads it before AWS_SESSION_TOKEN: the caller's would
//	    go with kivuli's keys.
//	AWS_ACCESS_KEY, AWS_SECRET_KEY
//	    aws-sdk-go's names when the first two are unset: with --serve,
//	    environment credentials ahead of the endpoint.
//	AWS_ACCOUNT_ID
//	    the account of the caller's keys, which aws-sdk-go-v2 and
//	    botocore attach to environment credentials: DynamoDB's
//	    account endpoints would name another account.
//	AWS_PROFILE, AWS_DEFAULT_PROFILE
//	    the JavaScript SDK v3 skips environment credentials when
//	    AWS_PROFILE is set; botocore and aws-sdk-go-v2 fail on a profile
//	    the files lack ("profile (foo) could not be found"); with
//	    --serve the profile's credentials come ahead of the endpoint.
//	    The region kivuli sets in AWS_REGION is what the profile's
//	    would have been for: kivuli read the same profile with
//	    --profile or --source chain.
//	AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME
//	    web identity: second in every chain, ahead of the endpoint.
//	AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
//	AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
//	    container credentials: --serve sets its own FULL_URI and token,
//	    and every SDK prefers a RELATIVE_URI to a FULL_URI and a token
//	    file to a token.
//	AWS_CREDENTIAL_FILE
//	    botocore's file of the old EC2 tools, read ahead of container
//	    credentials.
//	AWS_BEARER_TOKEN_BEDROCK
//	    a Bedrock API key, which the SDKs use for Bedrock instead of
//	    the credentials.
//
// Kept: AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE. Without them the
// SDKs read ~/.aws/config and ~/.aws/credentials: removing them would
// swap one set of files for another, not remove a source, and lose what
// the files say besides credentials (endpoints, retries, S3's settings, a
// CA bundle). With AWS_PROFILE gone, environment credentials come first
// in every SDK's chain; with --serve, a [default] profile with
// credentials still comes before the endpoint (the manual says so). Kept
// too: the region, endpoint, IMDS (last in every chain) and other
// settings that choose no credentials.
var CredentialVars = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION",
	"AWS_SECURITY_TOKEN",
	"AWS_ACCESS_KEY", "AWS_SECRET_KEY",
	"AWS_ACCOUNT_ID",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_CREDENTIAL_FILE",
	"AWS_BEARER_TOKEN_BEDROCK",
}

// ChildEnviron is env without CredentialVars: the environment of a
// command before kivuli adds the credentials (or the endpoint) it gives.
func ChildEnviron(env Environ) Environ { return env.Without(CredentialVars...) }
