// Package interop holds tests that show Kivuli working with aws-sdk-go-v2:
// the SDK's own ec2rolecreds provider reads credentials from the imdstest
// emulator, and SDK service clients sign with *kivuli.Credentials. It is a
// module of its own so that the library's go.mod stays small.
package interop
