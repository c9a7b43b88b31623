package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A proxy configured to forward to itself sends each request to itself
// again, signed anew each time, until it runs out of connections or memory
// (aws-sigv4-proxy#172). Two guards: at start, kivuli proxy refuses an
// upstream that resolves to its own listening address; at run time, it
// marks each request it forwards with a Via entry of its own, unsigned, and
// answers 508 Loop Detected to a request that comes back with it (a loop
// through other hops, or a name that resolved elsewhere at start).

// viaToken is this process's pseudonym in Via headers: random, so that
// two proxies never take each other's requests for their own.
func viaToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "kivuli-" + hex.EncodeToString(b)
}

// seenBefore reports whether the request's Via names token: it has come
// through this process already.
func seenBefore(h http.Header, token string) bool {
	for _, v := range h.Values("Via") {
		if strings.Contains(v, token) {
			return true
		}
	}
	return false
}

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
