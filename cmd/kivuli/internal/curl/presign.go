package curl

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/kivuli-go/kivuli"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/pflag"
)

// --presign is a switch, and the URL's lifetime a flag of its own,
// --expires-in, as aws s3 presign has it: a flag whose value may be left
// out cannot take one after a space without guessing whether the next
// word is the value or the URL, nor a negative one at all (pflag reads
// "-1m" as flags). The older spellings still work where they cannot be
// misread: --presign=15m, and --presign 15m URL, since kivuli curl takes
// one URL and a lifetime is never one.

// presignFlag is --presign: a switch that also takes the lifetime in the
// older spelling, --presign=DUR.
type presignFlag struct {
	on   bool
	life lifetimeFlag // --presign=DUR
}

func (p *presignFlag) String() string { return fmt.Sprint(p.on) }
func (p *presignFlag) Type() string   { return "bool" }

func (p *presignFlag) Set(s string) error {
	switch s {
	case "true", "false":
		p.on = s == "true"
		return nil
	}
	if err := p.life.Set(s); err != nil {
		return fmt.Errorf("%v (--presign=DUR is the older spelling of --expires-in DUR)", err)
	}
	p.on = true
	return nil
}

// addPresignFlags adds --presign, --expires-in and --cap-to-credentials.
func (f *curlFlags) addPresignFlags(fl *pflag.FlagSet) {
	fl.Var(&f.presign, "presign", "print a presigned URL instead of sending the request (it lives 5 minutes unless --expires-in says otherwise)")
	fl.Lookup("presign").NoOptDefVal = "true"
	fl.Var(&f.expiresIn, "expires-in", "with --presign, the URL's lifetime `DUR`: seconds (3600) or a duration (15m, 1h, 7d, 1d12h), 1s to 7d")
	fl.BoolVar(&f.capToCreds, "cap-to-credentials", false, "with --presign, end the URL's lifetime when the credentials that sign it expire, if they expire first")
}

// presignArgs checks the presigning flags, takes a lifetime given as
// --presign 15m URL, and returns the arguments left.
func (f *curlFlags) presignArgs(args []string) ([]string, error) {
	if !f.presign.on {
		switch {
		case f.expiresIn.raw != "":
			return nil, base.UsageErrorf("--expires-in is the lifetime of a presigned URL: add --presign")
		case f.capToCreds:
			return nil, base.UsageErrorf("--cap-to-credentials is for a presigned URL: add --presign")
		}
		return args, nil
	}
	given := f.presign.life.raw != "" || f.expiresIn.raw != ""
	if f.presign.life.raw != "" && f.expiresIn.raw != "" {
		return nil, base.UsageErrorf("--presign=%s and --expires-in %s: give the lifetime once, with --expires-in", f.presign.life.raw, f.expiresIn.raw)
	}
	if len(args) == 2 && !given {
		d, err := parseLifetime(args[0])
		if err != nil {
			return nil, base.UsageErrorf("--presign %s %s: kivuli curl takes one URL, and %v; give the lifetime as --expires-in DUR", args[0], args[1], err)
		}
		f.expiresIn.d, f.expiresIn.raw = d, args[0]
		return args[1:], nil
	}
	if f.presign.life.raw != "" {
		f.expiresIn = f.presign.life
	}
	return args, nil
}

// negativeValue explains pflag's refusal of "--presign -1m", which it
// reads as the flags -1 and -m: the lifetime's range, not only
// "unknown shorthand flag".
func negativeValue(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, " in -"); i >= 0 && len(msg) > i+5 && msg[i+5] >= '0' && msg[i+5] <= '9' {
		return fmt.Errorf("%s is not a flag; as a lifetime, it is out of range: --expires-in takes %s", msg[i+4:], lifetimeRange)
	}
	return err
}

// presignURL prints req's URL presigned by t for --expires-in (without
// it, the service's policy says, else five minutes). A URL that would
// outlive the credentials that sign it dies with them, whatever its
// X-Amz-Expires says (AWS refuses an expired session token): standard
// error says so, and --cap-to-credentials makes the URL's lifetime end
// there instead.
func (f *curlFlags) presignURL(ctx context.Context, t *kivuli.Transport, creds aws.CredentialsProvider, req *http.Request) error {
	v, err := base.Retrieve(ctx, creds)
	if err != nil {
		return err
	}
	signed, err := t.Presign(req, f.expiresIn.d)
	if err != nil {
		return err
	}
	lifetime := urlLifetime(signed)
	left := time.Until(v.Expires).Truncate(time.Second)
	expiry := v.Expires.UTC().Format(time.RFC3339)
	switch {
	case !v.CanExpire || lifetime <= left:
	case !f.capToCreds:
		f.note("warning: the URL says it lives %v, but it stops working in %v, at %s, when the credentials that sign it expire (AWS refuses it then); --cap-to-credentials makes the URL say so", lifetime, left, expiry)
	case left < minLifetime:
		return &base.ExitError{Code: base.ExitNoCreds, Err: fmt.Errorf("kivuli: the credentials expire at %s: no time left for a URL", expiry)}
	default:
		if signed, err = t.Presign(req, left); err != nil {
			return err
		}
		f.note("the URL lives %v, until the credentials that sign it expire at %s (--cap-to-credentials)", left, expiry)
	}
	fmt.Fprintln(f.Stdout, signed)
	return nil
}

// urlLifetime is the X-Amz-Expires of a presigned URL.
func urlLifetime(signed string) time.Duration {
	u, err := url.Parse(signed)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(u.Query().Get("X-Amz-Expires"))
	return time.Duration(n) * time.Second
}

// note writes a line to standard error, unless -s without -S.
func (f *curlFlags) note(format string, args ...any) {
	if f.silent && !f.showError {
		return
	}
	fmt.Fprintf(f.Stderr, "kivuli: "+format+"\n", args...)
}
