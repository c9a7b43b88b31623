package base

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// WithCredentials sets v in env as the AWS SDKs read it.
func WithCredentials(env Environ, v aws.Credentials) Environ {
	env = env.With("AWS_ACCESS_KEY_ID", v.AccessKeyID).With("AWS_SECRET_ACCESS_KEY", v.SecretAccessKey)
	if v.SessionToken != "" {
		env = env.With("AWS_SESSION_TOKEN", v.SessionToken)
	}
	if v.CanExpire {
		env = env.With("AWS_CREDENTIAL_EXPIRATION", Isoformat(v.Expires))
	}
	return env
}

// RunChild runs the command as a child, passing signals on, and returns
// its exit status as the error.
func (a *App) RunChild(path string, args []string, env Environ) error {
	c := exec.Command(path, args[1:]...)
	c.Args = args
	c.Env = env
	c.Stdin, c.Stdout, c.Stderr = a.Stdin, a.Stdout, a.Stderr
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, forwardedSignals...)
	defer signal.Stop(signals)
	if err := c.Start(); err != nil {
		return &ExitError{Code: ExitCannotRun, Err: fmt.Errorf("kivuli: exec %s: %w", args[0], err)}
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case sig := <-signals:
			c.Process.Signal(sig)
		case err := <-done:
			return childStatus(c, err)
		}
	}
}

// childStatus turns the command's end into kivuli's exit status.
func childStatus(c *exec.Cmd, err error) error {
	if c.ProcessState == nil {
		return fmt.Errorf("kivuli: %s: %w", c.Args[0], err)
	}
	if sig, ok := killedBy(c.ProcessState); ok {
		return &SignalExit{Sig: sig}
	}
	if code := c.ProcessState.ExitCode(); code != 0 {
		return &SilentError{Code: code}
	}
	return nil
}

// Isoformat writes t as Python's datetime.isoformat does for the UTC
// times botocore holds, which is what the AWS CLI prints:
// 2024-05-01T12:00:00+00:00, with microseconds when there are any.
func Isoformat(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "+00:00"
}

// LookPath finds the command to run as exec.LookPath does, failing with
// the exit status env(1) and the shells give: 126 for one found that
// cannot be run, 127 for one not found.
func LookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		code := ExitNotFound
		if errors.Is(err, fs.ErrPermission) {
			code = ExitCannotRun
		}
		return "", &ExitError{Code: code, Err: fmt.Errorf("kivuli: exec %s: %w", name, err)}
	}
	return path, nil
}
