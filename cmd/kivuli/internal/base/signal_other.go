//go:build !unix

package base

import "os"

var forwardedSignals = []os.Signal{os.Interrupt}

func killedBy(*os.ProcessState) (os.Signal, bool) { return nil, false }

func signalNumber(os.Signal) int { return 0 }

func raise(os.Signal) {}
