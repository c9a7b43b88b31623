package proxycmd

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// aws-sigv4-proxy's flags (its cmd/aws-sigv4-proxy/main.go, 4165dc7) that
// kivuli proxy names otherwise or does without. Each is taken as a hidden
// flag, so that a command line moved over from aws-sigv4-proxy is refused
// with every such flag's kivuli equivalent at once (exit 2), not with
// "unknown flag" for the first. Those with the same name and meaning are
// kivuli proxy's own: --region, --sign-host, --role-arn,
// --unsigned-payload, -v/--verbose, and, with kivuli's safer rules,
// --custom-headers, --log-failed-requests and --no-verify-ssl.

// peerFlag is one of aws-sigv4-proxy's flags, and what to say instead.
type peerFlag struct {
	name, short string
	isBool      bool
	// hint says what kivuli proxy does instead, given the value.
	hint func(v string) string
}

var peerFlags = []peerFlag{
	{name: "name", hint: func(v string) string {
		return fmt.Sprintf("use --service %s (leave it out where the upstream's host names the service)", v)
	}},
	{name: "host", hint: func(v string) string {
		return fmt.Sprintf("use --upstream https://%s: kivuli proxy takes a URL, and never the client's Host, which aws-sigv4-proxy follows without --host", v)
	}},
	{name: "port", hint: portHint},
	{name: "strip", short: "s", hint: func(v string) string {
		return fmt.Sprintf("use --header-deny %s (names, or prefixes with a trailing *)", v)
	}},
	{name: "upstream-url-scheme", hint: func(v string) string {
		return fmt.Sprintf("use the scheme of --upstream: --upstream %s://HOST (http:// only to loopback or an --allow-host host)", v)
	}},
	{name: "log-signing-process", isBool: true, hint: func(string) string {
		return "use -v (--verbose), which logs each canonical request and string to sign, the token redacted"
	}},
	{name: "duplicate-headers", hint: func(string) string {
		return "kivuli proxy has none: the client's headers reach the upstream under their own names (sign them with --header-allow); its Authorization and X-Amz-* signing headers are dropped, never passed on under another name"
	}},
	{name: "transport.idle-conn-timeout", hint: func(v string) string {
		return fmt.Sprintf("use --idle-conn-timeout %s", v)
	}},
}

// portHint turns aws-sigv4-proxy's --port (":8080", "host:port") into
// --listen, which is on loopback unless --allow-remote.
func portHint(v string) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		host, port = "", v
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		return fmt.Sprintf("use --listen %s (with --allow-remote if it is not loopback)", v)
	}
	use := "use --listen 127.0.0.1:" + port
	if port == "8080" {
		use = "leave it out: kivuli proxy listens on 127.0.0.1:8080"
	}
	return fmt.Sprintf("%s, for this machine's programs; aws-sigv4-proxy listens on every interface, as --listen 0.0.0.0:%s --allow-remote would, and then whoever reaches the port makes requests as the role", use, port)
}

// peerValues are the values given to aws-sigv4-proxy's flags.
type peerValues struct {
	fs     *pflag.FlagSet
	values map[string]*[]string
}

// addPeerFlags adds aws-sigv4-proxy's flags to cmd, hidden.
func addPeerFlags(cmd *cobra.Command) *peerValues {
	pv := &peerValues{fs: cmd.Flags(), values: map[string]*[]string{}}
	for _, p := range peerFlags {
		var f *pflag.Flag
		if p.isBool {
			cmd.Flags().BoolP(p.name, p.short, false, "aws-sigv4-proxy's")
			f = cmd.Flags().Lookup(p.name)
		} else {
			v := new([]string)
			pv.values[p.name] = v
			cmd.Flags().StringArrayVarP(v, p.name, p.short, nil, "aws-sigv4-proxy's")
			f = cmd.Flags().Lookup(p.name)
		}
		f.Hidden = true
	}
	return pv
}

// check adds a problem for each of aws-sigv4-proxy's flags given.
func (pv *peerValues) check(p *problems) {
	for _, f := range peerFlags {
		if !pv.fs.Changed(f.name) {
			continue
		}
		if f.isBool {
			p.add(base.UsageErrorf("--%s is aws-sigv4-proxy's flag: %s", f.name, f.hint("")))
			continue
		}
		for _, v := range *pv.values[f.name] {
			p.add(base.UsageErrorf("--%s %s is aws-sigv4-proxy's flag: %s", f.name, v, f.hint(v)))
		}
	}
}

// customHeaders parses --custom-headers as aws-sigv4-proxy does
// (comma-separated NAME=VALUE), refusing what it would skip with a
// warning: a header the operator asked for is not silently left out.
// The library checks the names.
func customHeaders(specs []string, p *problems) http.Header {
	var h http.Header
	n := 0
	for _, spec := range specs {
		for item := range strings.SplitSeq(spec, ",") {
			n++
			name, value, ok := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				// Not shown: it may be a value, and a value a secret.
				p.add(base.UsageErrorf("--custom-headers: entry %d is not NAME=VALUE (values cannot hold commas)", n))
				continue
			}
			if h == nil {
				h = http.Header{}
			}
			h[name] = append(h[name], strings.TrimSpace(value))
		}
	}
	return h
}
