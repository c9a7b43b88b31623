package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// A proxy configured to forward to itself sends each request to itself
// again, signed anew each time, until it runs out of connections or memory
// (aws-sigv4-proxy#172). So the proxy marks each request it forwards with
// a Via entry of its own, unsigned, and answers 508 Loop Detected to a
// request that comes back with it. (The kivuli command also refuses, at
// start, an upstream that resolves to its own listening address.)

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
