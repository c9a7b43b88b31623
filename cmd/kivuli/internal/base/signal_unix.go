//go:build unix

package base

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// forwardedSignals are the signals kivuli exec --serve passes on to its
// command: every one a process can catch that is about the command's
// life or its terminal. SIGCHLD, SIGPIPE and SIGURG concern kivuli only.
var forwardedSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
	syscall.SIGTSTP, syscall.SIGCONT, syscall.SIGTTIN, syscall.SIGTTOU,
}

// killedBy reports the signal that ended a process.
func killedBy(ps *os.ProcessState) (os.Signal, bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return nil, false
	}
	return ws.Signal(), true
}

// signalNumber is the number shells add to 128.
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}

// raise ends the process by sig, as the command it ran was ended, so
// that its parent sees the same. It returns if sig does not end it.
func raise(sig os.Signal) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	signal.Reset(s)
	syscall.Kill(os.Getpid(), s)
	time.Sleep(100 * time.Millisecond) // the signal is delivered meanwhile
}
