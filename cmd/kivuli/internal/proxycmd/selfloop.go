package proxycmd

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// A proxy configured to forward to itself sends each request to itself
// again, signed anew each time (aws-sigv4-proxy#172). The handler marks
// what it forwards with a Via entry and answers 508 to a request that
// comes back; kivuli proxy also refuses at start an upstream that
// resolves to its own listening address.

// loopsToSelf reports whether upstream names the address ln listens on:
// its port, and one of the addresses its host resolves to (the listener's
// own address, or any address of this machine when the listener is on
// all of them). A host that does not resolve now is not refused: the Via
// guard catches a loop at run time.
func loopsToSelf(ctx context.Context, upstream *url.URL, ln net.Addr) bool {
	tcp, ok := ln.(*net.TCPAddr)
	if !ok {
		return false
	}
	port := upstream.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[upstream.Scheme]
	}
	if port != "" && port != strconv.Itoa(tcp.Port) {
		return false
	}
	var addrs []netip.Addr
	host := upstream.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	listenAddr, _ := netip.AddrFromSlice(tcp.IP)
	listenAddr = listenAddr.Unmap()
	for _, a := range addrs {
		a = a.Unmap()
		if !listenAddr.IsUnspecified() {
			if a == listenAddr {
				return true
			}
			continue
		}
		if a.IsLoopback() || a.IsUnspecified() || isLocalAddr(a) {
			return true
		}
	}
	return false
}

// isLocalAddr reports whether a is an address of one of this machine's
// interfaces.
func isLocalAddr(a netip.Addr) bool {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range ifaddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}
