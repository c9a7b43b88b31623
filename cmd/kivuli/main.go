// Command kivuli signs HTTP requests, exports credentials, runs programs
// with credentials and emulates the EC2 Instance Metadata Service, with the
// credential logic and signer of the kivuli library.
//
//	kivuli curl [options] URL           a signed request, as curl sends it
//	kivuli creds [--format F]           credentials for any tool (credential_process, env, ...)
//	kivuli exec [options] [--] CMD ...  run CMD with credentials, or a credentials endpoint
//	kivuli imds [options] [-- CMD ...]  the IMDS emulator as a server
//	kivuli proxy --upstream URL         a signing reverse proxy
//
// Run "kivuli help COMMAND" for each command's manual. Each command is a
// package of internal/ (curl, creds, exec, imds, proxycmd), internal/base
// holds what they share, and internal/root puts them together.
package main

import "github.com/kivuli-go/kivuli/cmd/kivuli/internal/root"

func main() { root.Main() }
