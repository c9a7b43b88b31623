package kivuli

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExportEnvRollsBack (issue 9, defect 5): when setting one variable
// fails, the ones set before it are put back: all three or none.
func TestExportEnvRollsBack(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDOLD")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secretold")
	os.Unsetenv("AWS_SESSION_TOKEN")
	defer func() { setenv = os.Setenv }()
	setenv = func(k, v string) error {
		if k == "AWS_SECRET_ACCESS_KEY" && v != "secretold" {
			return errors.New("setenv: refused")
		}
		return os.Setenv(k, v)
	}
	err := exportEnv(aws.Credentials{AccessKeyID: "AKIDNEW", SecretAccessKey: "secretnew", SessionToken: "tokennew"})
	require.ErrorContains(t, err, "AWS_SECRET_ACCESS_KEY")
	assert.Equal(t, "AKIDOLD", os.Getenv("AWS_ACCESS_KEY_ID"))
	assert.Equal(t, "secretold", os.Getenv("AWS_SECRET_ACCESS_KEY"))
	_, set := os.LookupEnv("AWS_SESSION_TOKEN")
	assert.False(t, set)

	require.Error(t, exportEnv(aws.Credentials{AccessKeyID: "AKIDNEW", SecretAccessKey: "a\x00b"}), "a NUL is refused before anything is set")
	assert.Equal(t, "AKIDOLD", os.Getenv("AWS_ACCESS_KEY_ID"))
}

// TestExportEnvNeverTorn (issue 17, point 3): readers of the environment
// take no lock of kivuli's, so while a refresh exports a new set,
// os.Environ() (and a child started at that moment) must never pair a key
// ID with another set's secret or token; a snapshot without a key ID is
// fine: the SDKs then move on to their next source.
func TestExportEnvNeverTorn(t *testing.T) {
	for _, k := range envKeys {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	set := func(i int) aws.Credentials {
		n := strconv.Itoa(i)
		c := aws.Credentials{AccessKeyID: "ASIA" + n, SecretAccessKey: "secret" + n, SessionToken: "token" + n}
		if i%5 == 0 {
			c.SessionToken = "" // a set without a token unsets it
		}
		return c
	}
	done := make(chan struct{})
	var torn, seen atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				vars := map[string]string{}
				for _, kv := range os.Environ() {
					if k, v, ok := strings.Cut(kv, "="); ok && slices.Contains(envKeys[:], k) {
						vars[k] = v
					}
				}
				id, ok := vars["AWS_ACCESS_KEY_ID"]
				if !ok {
					continue
				}
				seen.Add(1)
				i, _ := strconv.Atoi(strings.TrimPrefix(id, "ASIA"))
				want := set(i)
				if vars["AWS_SECRET_ACCESS_KEY"] != want.SecretAccessKey || vars["AWS_SESSION_TOKEN"] != want.SessionToken {
					torn.Add(1)
				}
			}
		})
	}
	for i := 1; i <= 3000; i++ {
		require.NoError(t, exportEnv(set(i)))
	}
	close(done)
	wg.Wait()
	assert.Positive(t, seen.Load(), "the readers saw key IDs")
	assert.Zero(t, torn.Load(), "snapshots that paired a key ID with another set's secret or token, of %d", seen.Load())
}
