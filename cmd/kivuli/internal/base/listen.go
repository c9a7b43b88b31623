package base

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
)

// The rule of every listener the command opens (proxy --listen and
// --admin, imds --listen, exec --serve's endpoint): it is on loopback,
// unless --allow-remote says otherwise. Whoever reaches a listener gets
// what it serves (credentials, requests signed as the role, the proxy's
// state), and loopback keeps that on this machine.

// CheckListen refuses addr, the value of the flag named flag, when it is
// not a loopback address and remote (--allow-remote) was not given; risk
// says what anyone who reaches it could do. It only reads the address,
// so that a command can refuse it before it does anything else.
func CheckListen(flag, addr string, remote bool, risk string) error {
	if remote || LoopbackAddr(addr) {
		return nil
	}
	return UsageErrorf("%s %s is not loopback: %s (add --allow-remote if that is what you want)", flag, addr, risk)
}

// ListenTCP opens the listener of the flag named flag on addr, under
// checkListen's rule, and checks the address it is bound to as well: a
// name such as localhost is checked as it resolved, not as it reads.
func ListenTCP(flag, addr string, remote bool, risk string) (net.Listener, error) {
	if err := CheckListen(flag, addr, remote, risk); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kivuli: %s %s: %w", flag, addr, err)
	}
	if err := CheckListen(flag, ln.Addr().String(), remote, risk); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// LoopbackAddr reports whether host:port is loopback only: a loopback IP
// address, or localhost. It serves listen addresses, which may name
// localhost, and peers' addresses, which are numeric and so never do.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// DiscardLog is an http.Server's error log that keeps quiet: a client
// hanging up is not the user's business.
func DiscardLog() *log.Logger { return log.New(io.Discard, "", 0) }
