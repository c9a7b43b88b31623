package imds

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kivuli-go/kivuli/imdstest"
)

// faultTargets are the targets of a fault spec, as imdstest has them.
var faultTargets = map[string]imdstest.Target{
	"any": imdstest.AnyPath, "token": imdstest.TokenPath,
	"role-list": imdstest.RoleListPath, "roles": imdstest.RoleListPath,
	"credentials": imdstest.CredentialsPath, "creds": imdstest.CredentialsPath,
}

// faultSpecHelp is the syntax of --fault and of the control endpoint.
const faultSpecHelp = `A fault is [TARGET:]ITEM[,ITEM...], TARGET one of any (the default),
token, role-list, credentials; the items:
  NNN, status=NNN    answer with this status (500, 503, 429, 404, 401, ...)
  retry-after=N      with a status, a Retry-After of N seconds
  hang               never answer (a token PUT lost, as with hop limit 1)
  delay=DUR          answer after DUR (e.g. 300ms, 2s)
  expired            serve credentials whose Expiration is already past
  code=CODE          a credential document with Code CODE and no keys
  message=TEXT       its Message
  body=TEXT          answer with exactly TEXT (the rest of the spec)
  times=N            apply to the next N matching requests only
Examples: token:hang,times=1   credentials:503,times=3   any:delay=2s
          credentials:expired   credentials:body={"Code":   role-list:404`

// parseFault parses a fault spec.
func parseFault(spec string) (imdstest.Fault, error) {
	var f imdstest.Fault
	rest := strings.TrimSpace(spec)
	if t, after, ok := strings.Cut(rest, ":"); ok && !strings.Contains(t, "=") && !strings.Contains(t, ",") {
		target, known := faultTargets[t]
		if !known {
			return f, fmt.Errorf("fault %q: unknown target %q (any, token, role-list, credentials)", spec, t)
		}
		f.Target, rest = target, after
	}
	if rest == "" {
		return f, fmt.Errorf("fault %q: nothing to do", spec)
	}
	for rest != "" {
		var item string
		if strings.HasPrefix(rest, "body=") {
			item, rest = rest, "" // the body is the rest, commas included
		} else {
			item, rest, _ = strings.Cut(rest, ",")
		}
		if err := setFaultItem(&f, spec, item); err != nil {
			return f, err
		}
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return f, fmt.Errorf("fault %q: status %d is not in 100..599", spec, f.Status)
	}
	return f, nil
}

// setFaultItem sets in f what one item of the fault spec says.
func setFaultItem(f *imdstest.Fault, spec, item string) error {
	key, value, hasValue := strings.Cut(item, "=")
	number := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("fault %q: %s wants a number, not %q", spec, key, value)
		}
		return n, nil
	}
	var err error
	switch {
	case !hasValue && len(key) == 3 && strings.Trim(key, "0123456789") == "":
		f.Status, _ = strconv.Atoi(key)
	case key == "status":
		f.Status, err = number()
	case key == "retry-after":
		f.RetryAfter, err = number()
	case key == "times":
		f.Times, err = number()
	case key == "hang" && !hasValue:
		f.Hang = true
	case key == "expired" && !hasValue:
		f.Expired = true
	case key == "delay":
		f.Delay, err = time.ParseDuration(value)
		if err == nil && f.Delay < 0 {
			err = fmt.Errorf("fault %q: a negative delay", spec)
		}
	case key == "code" && value != "":
		f.Code = value
	case key == "message":
		f.Message = value
	case key == "body" && value != "":
		f.Body = value
	default:
		return fmt.Errorf("fault %q: unknown item %q", spec, item)
	}
	return err
}
