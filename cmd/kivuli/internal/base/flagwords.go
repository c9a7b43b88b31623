package base

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/kivuli-go/kivuli"
)

// The one place where the command turns the library's words into its
// own: the Go fields, options and types its messages name, each with the
// flag or environment variable that sets it. Execute puts every message
// a command prints in these words; the proxy its answers and log too.
// TestNoGoNames (internal/root) runs each command's refusals to check
// that none is left.

// libraryWords are the library's names as every command says them. A
// name that is the prefix of another comes after it: a Replacer takes
// the first that matches, in this order.
var libraryWords = []string{
	// kivuli.Transport
	"Transport.AllowedHosts", "--allow-host",
	"Transport.Service", "--service",
	"Transport.Region", "--region",
	"Transport.MaxBufferedBody", "the limit on a body read once",
	"Transport.Credentials", "the credentials",
	"Transport.Policies", "the policy table",
	"Transport.Base", "the HTTP transport",
	// kivuli.Policy: every command signs with the default policies, so
	// a policy is not the user's to change.
	" (Policy.Algorithm is AlgorithmSigV4)", ", which kivuli signs with SigV4 only",
	"Policy.Algorithm", "the service's signing algorithm",
	"AlgorithmSigV4A", "SigV4a",
	"AlgorithmSigV4", "SigV4",
	" (kivuli.ProxyReporter)", "",
	"kivuli.CheckRedirect", "the redirect rule",
	"CheckRedirect", "the redirect rule",
	// the proxy package's Router (kivuli proxy --route, --routes)
	"RouterConfig.Routes", "--route and --routes",
	"RouterConfig.ServeHosts", "--serve-host",
	"RouterConfig.AllowOrigins", "--allow-origin",
	"RouterConfig.MaxRequests", "--max-requests",
	"RouterConfig.MemoryBudget", "the memory for bodies",
	"Route.PathPrefix", "the route's path prefix",
	"Route.Host", "the route's host",
	"Route.Name", "the route's name",
	// the proxy package's Config
	"Config.UpstreamServerName", "--upstream-server-name",
	"Config.Upstream's path", "--upstream's path",
	"the Config.Upstream's path", "--upstream's path",
	"Config.Upstream", "--upstream",
	"Config.SignHost", "--sign-host",
	"Config.Service", "--service",
	"Config.Region", "--region",
	"Config.AllowedHosts", "--allow-host",
	"Config.ServeHosts", "--serve-host",
	"Config.AllowOrigins", "--allow-origin",
	"Config.SignHeaders", "--header-allow",
	"Config.DropHeaders", "--header-deny",
	"Config.SetHeaders", "--custom-headers",
	"Config.UnsignedPayload", "--unsigned-payload",
	"Config.MaxBody", "--max-body",
	"Config.MaxBuffer", "--max-buffer",
	"Config.SpoolDir", "--spool-dir",
	"Config.MaxSpool", "--max-spool",
	"Config.MaxRequests", "--max-requests",
	"Config.QueueTimeout", "--queue-timeout",
	"Config.BodyIdleTimeout", "--body-idle-timeout",
	"Config.MaxAttempts", "--max-attempts",
	"Config.MaxIdleConns", "--max-idle-conns",
	"Config.IdleConnTimeout", "--idle-conn-timeout",
	"Config.ResponseHeaderTimeout", "--response-header-timeout",
	"Config.MemoryBudget", "the memory for bodies",
	"Config.Credentials", "the credentials",
	// the request the proxy sends: its Host is --sign-host's
	"Request.Host", "--sign-host",
	"URL.Host", "--upstream's host",
	// the library's options, as the credential-source flags set them
	"role name: ", "--role ",
	"invalid configuration: endpoint: ", "--imds-endpoint ",
}

// curlWords are kivuli curl's own words for the names that the proxy
// sets with other flags: curl's request is the one of its command line.
var curlWords = []string{
	"Request.Host", "-H 'Host:'",
	"URL.Host", "the URL's host",
	"Request.ContentLength", "--size",
	"ContentLength", "the length (of -T's file, or --size)",
	"GetBody", "reopening the body",
	"X-Amz-Sdk-Checksum-Algorithm", "--checksum (X-Amz-Sdk-Checksum-Algorithm)",
}

// commandWords are the words of each command that has its own, by name.
var commandWords = map[string]*strings.Replacer{
	"curl": strings.NewReplacer(append(slices.Clone(curlWords), libraryWords...)...),
}

var (
	libraryReplacer = strings.NewReplacer(libraryWords...)
	// goTypeRE is a Go type that a message prints with %T.
	goTypeRE = regexp.MustCompile(`\bBase, an? \S+, cannot tell`)
)

// FlagWords is a message of the library in the words of the command's
// flags (kivuli proxy's, where the commands differ).
func FlagWords(msg string) string { return commandFlagWords("", msg) }

// commandFlagWords is msg in the words of the command named name.
func commandFlagWords(name, msg string) string {
	r, ok := commandWords[name]
	if !ok {
		r = libraryReplacer
	}
	return goTypeRE.ReplaceAllString(r.Replace(msg), "the HTTP transport cannot tell")
}

// ConfigError is an error of a configuration the flags made: a usage
// error in the flags' words when it is the library's ErrInvalidConfig.
func ConfigError(err error) error {
	var ke *kivuli.Error
	if errors.As(err, &ke) && errors.Is(err, kivuli.ErrInvalidConfig) {
		return UsageErrorf("%s", FlagWords(ke.Reason))
	}
	return err
}
