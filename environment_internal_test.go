package kivuli

import (
	"errors"
	"os"
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
