package base

import (
	"errors"
	"strings"

	"github.com/kivuli-go/kivuli"
)

// fieldFlags are the Go fields the library's errors name, with the flags
// that set them: the one place where the command turns the library's
// words into its own.
var fieldFlags = strings.NewReplacer(
	"Transport.AllowedHosts", "--allow-host",
	"Request.Host", "--sign-host",
	"Transport.Service", "--service",
	"Transport.Region", "--region",
	"URL.Host", "--upstream's host",
	"Config.UpstreamServerName", "--upstream-server-name",
	"Config.Upstream", "--upstream",
	"Config.SignHost", "--sign-host",
	"Config.Service", "--service",
	"Config.Region", "--region",
	"Config.AllowedHosts", "--allow-host",
	"Config.ServeHosts", "--serve-host",
	"Config.AllowOrigins", "--allow-origin",
	"Config.SignHeaders", "--header-allow",
	"Config.DropHeaders", "--header-deny",
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
)

// FlagWords is a message of the library in the words of the command's
// flags.
func FlagWords(msg string) string { return fieldFlags.Replace(msg) }

// ConfigError is an error of a configuration the flags made: a usage
// error in the flags' words when it is the library's ErrInvalidConfig.
func ConfigError(err error) error {
	var ke *kivuli.Error
	if errors.As(err, &ke) && errors.Is(err, kivuli.ErrInvalidConfig) {
		return UsageErrorf("%s", FlagWords(ke.Reason))
	}
	return err
}
