package curl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A presigned URL's lifetime, as --expires-in (and --presign=DUR, the
// older spelling) take it: a number of seconds, as aws s3 presign
// --expires-in takes it, or a duration whose days may be given (7d,
// 1d12h), from one second to seven days, which is all AWS accepts.
const (
	minLifetime = time.Second
	maxLifetime = 7 * 24 * time.Hour
)

// lifetimeRange is the accepted values, as every refusal states them.
const lifetimeRange = "1s to 7d: seconds (3600, as aws s3 presign --expires-in), or a duration (90s, 15m, 1h, 7d, 1d12h)"

// lifetimeFlag is --expires-in.
type lifetimeFlag struct {
	d   time.Duration
	raw string
}

func (l *lifetimeFlag) String() string { return l.raw }
func (l *lifetimeFlag) Type() string   { return "duration" }

func (l *lifetimeFlag) Set(s string) error {
	d, err := parseLifetime(s)
	if err != nil {
		return err
	}
	l.d, l.raw = d, s
	return nil
}

// parseLifetime parses a presigned URL's lifetime; its errors state the
// accepted range.
func parseLifetime(s string) (time.Duration, error) {
	d, err := lifetimeDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a lifetime: want %s", s, lifetimeRange)
	}
	if d < minLifetime || d > maxLifetime {
		return 0, fmt.Errorf("a lifetime of %s is out of range: want %s", s, lifetimeRange)
	}
	return d, nil
}

// lifetimeDuration reads s as seconds, or as a Go duration that may start
// with a number of days. A number too large to be a lifetime is -1, out
// of range, rather than an overflow.
func lifetimeDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(maxLifetime/time.Second) {
			return -1, nil
		}
		return time.Duration(n) * time.Second, nil
	}
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 8)
	if err != nil || strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "-") {
		return 0, fmt.Errorf("not a number of days")
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	r, err := time.ParseDuration(rest)
	return d + r, err
}
