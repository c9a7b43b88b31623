package base

import (
	"slices"
	"strings"
)

// Environ is an environment as os.Environ gives it: "KEY=value" strings.
type Environ []string

func NewEnviron(env []string) Environ { return slices.Clone(env) }

// get returns the value of key, or "".
func (e Environ) Get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// lookup returns the value of key; of a repeated key, the first, as
// os.Getenv reads it.
func (e Environ) Lookup(key string) (string, bool) {
	for _, kv := range e {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// without returns e less the given keys.
func (e Environ) Without(keys ...string) Environ {
	return slices.DeleteFunc(slices.Clone(e), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(keys, k)
	})
}

// with returns e with key set to value, replacing any earlier value.
func (e Environ) With(key, value string) Environ {
	return append(e.Without(key), key+"="+value)
}
