package kivuli

import (
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// envKeys are the variables [WithEnvironment] exports, in the order set.
var envKeys = [...]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

var (
	// envMu serialises exports, so that the three variables change together.
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

// exportEnv exports v to the three variables, all of them or none: values
// that the environment cannot hold are refused before anything is set, and
// a failure on the way puts back what the variables held before, so that a
// key ID is never paired with another set's secret.
func exportEnv(v aws.Credentials) error {
	vals := envValues(v)
	for _, val := range vals {
		if strings.IndexByte(val, 0) >= 0 {
			return errors.New("kivuli: credentials holding a NUL byte cannot be exported to the environment")
		}
	}
	envMu.Lock()
	defer envMu.Unlock()
	var saved [len(envKeys)]struct {
		val string
		ok  bool
	}
	for i, k := range envKeys {
		saved[i].val, saved[i].ok = os.LookupEnv(k)
	}
	for i, k := range envKeys {
		var err error
		if vals[i] == "" {
			err = unsetenv(k)
		} else {
			err = setenv(k, vals[i])
		}
		if err != nil {
			for j := i; j >= 0; j-- {
				if saved[j].ok {
					setenv(envKeys[j], saved[j].val)
				} else {
					unsetenv(envKeys[j])
				}
			}
			return wrap("exporting the credentials to "+k, err)
		}
	}
	return nil
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
