package main

import (
	"slices"
	"strings"
)

// environ is an environment as os.Environ gives it: "KEY=value" strings.
type environ []string

func newEnviron(env []string) environ { return slices.Clone(env) }

// get returns the value of key, or "".
func (e environ) get(key string) string {
	v, _ := e.lookup(key)
	return v
}

// lookup returns the value of key; of a repeated key, the first, as
// os.Getenv reads it.
func (e environ) lookup(key string) (string, bool) {
	for _, kv := range e {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// without returns e less the given keys.
func (e environ) without(keys ...string) environ {
	return slices.DeleteFunc(slices.Clone(e), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(keys, k)
	})
}

// with returns e with key set to value, replacing any earlier value.
func (e environ) with(key, value string) environ {
	return append(e.without(key), key+"="+value)
}
