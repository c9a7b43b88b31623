package kivuli

import (
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// envKeys are the variables [WithEnvironment] exports. The key ID is
// first: it is unset first and set last (exportEnv).
var envKeys = [...]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

var (
	// envMu serialises exports, so that two never interleave.
	envMu sync.Mutex
	// setenv and unsetenv change the environment; tests make them fail.
	setenv   = os.Setenv
	unsetenv = os.Unsetenv
)

// envValues are the values exported for v: no session token unsets
// AWS_SESSION_TOKEN.
func envValues(v aws.Credentials) [len(envKeys)]string {
	return [...]string{v.AccessKeyID, v.SecretAccessKey, v.SessionToken}
}

// exportEnv exports v to the three variables. Readers of the environment
// (os.Environ, a child process started meanwhile) take no lock of ours and
// see each variable change on its own, so the order of the writes is what
// keeps a key ID from being paired with another set's secret or token:
// the key ID is unset first, the secret and token are written, and the key
// ID is set last. A reader sees the old set, the new set, or no key ID,
// after which the SDKs move on to their next credential source. A failure
// on the way puts back what the variables held before, in the same order.
// Values that the environment cannot hold are refused before anything is
// changed.
func exportEnv(v aws.Credentials) error {
	vals := envValues(v)
	for _, val := range vals {
		if strings.IndexByte(val, 0) >= 0 {
			return errors.New("kivuli: credentials holding a NUL byte cannot be exported to the environment")
		}
	}
	envMu.Lock()
	defer envMu.Unlock()
	var saved [len(envKeys)]string
	var had [len(envKeys)]bool
	for i, k := range envKeys {
		saved[i], had[i] = os.LookupEnv(k)
	}
	if k, err := writeEnv(vals, [len(envKeys)]bool{true, true, true}); err != nil {
		writeEnv(saved, had)
		return wrap("exporting the credentials to "+k, err)
	}
	return nil
}

// writeEnv sets each variable of envKeys to vals[i], or unsets it when
// vals[i] is empty or set[i] is false: the key ID unset first and set
// last. It returns the first variable it could not change.
func writeEnv(vals [len(envKeys)]string, set [len(envKeys)]bool) (string, error) {
	if err := unsetenv(envKeys[0]); err != nil {
		return envKeys[0], err
	}
	for i := len(envKeys) - 1; i >= 0; i-- {
		k := envKeys[i]
		var err error
		switch {
		case set[i] && vals[i] != "":
			err = setenv(k, vals[i])
		case i > 0:
			err = unsetenv(k)
		}
		if err != nil {
			return k, err
		}
	}
	return "", nil
}

// unexportEnv unsets the three variables if they still hold the values of
// v, the set a Credentials exported last. Once the Credentials is closed no
// one keeps them fresh: left behind they would expire within hours, and a
// child process would fail with ExpiredToken, where without them its SDK
// asks IMDS itself. Values exported since by someone else are left alone.
func unexportEnv(v aws.Credentials) {
	if v.AccessKeyID == "" {
		return // nothing was exported
	}
	envMu.Lock()
	defer envMu.Unlock()
	for i, val := range envValues(v) {
		if got, ok := os.LookupEnv(envKeys[i]); got != val || (val != "") != ok {
			return
		}
	}
	for _, k := range envKeys {
		unsetenv(k)
	}
}
