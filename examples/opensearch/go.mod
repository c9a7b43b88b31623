module github.com/kivuli-go/kivuli/examples/opensearch

go 1.26.0

require (
	github.com/kivuli-go/kivuli v0.0.0
	github.com/opensearch-project/opensearch-go/v4 v4.8.1
)

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0 // indirect
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/aws/smithy-go/aws-http-auth v1.2.2 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	golang.org/x/sync v0.23.0 // indirect
)

replace github.com/kivuli-go/kivuli => ../..
