package base

import (
	"net"
	"strings"
	"testing"
)

// listenTCP checks the address it is bound to, so that a name is judged
// by what it resolved to.
func TestListenTCP(t *testing.T) {
	ln, err := ListenTCP("--listen", "localhost:0", false, "risk")
	if err != nil {
		t.Fatal(err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("localhost bound to %v", ip)
	}
	ln.Close()
	for _, addr := range []string{"0.0.0.0:0", ":0", "example.com:0", "127.0.0.1"} {
		if ln, err := ListenTCP("--listen", addr, false, "risk"); err == nil {
			ln.Close()
			t.Errorf("%s: listening", addr)
		} else if !strings.Contains(err.Error(), "--listen "+addr+" is not loopback: risk") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	ln, err = ListenTCP("--listen", "0.0.0.0:0", true, "risk")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
