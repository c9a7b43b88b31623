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
// Run "kivuli help COMMAND" for each command's manual.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM end a server (imds, exec --serve) cleanly; exec
	// installs its own handlers to pass every signal to the child.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	if sig, ok := pendingSignal.Load().(os.Signal); ok {
		raise(sig) // end as exec's command ended, if the signal does end us
	}
	os.Exit(code)
}
