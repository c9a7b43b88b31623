package root

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// The release script (release.sh) stamps these with -ldflags -X, so that
// a release binary says what it was built from. A build without it (go
// install, go build) keeps the defaults, and kivuli --version falls back
// to what the Go toolchain recorded in the binary.
var (
	version = "(devel)" // the release's tag, e.g. v0.1.0
	commit  = ""        // the commit's hash, 12 digits, +dirty if the tree differed
	date    = ""        // the commit's time, UTC, RFC 3339
)

// buildVersion is what kivuli --version says about the binary.
type buildVersion struct {
	version, commit, date, goVersion, platform string
}

// String is the one line kivuli --version prints:
//
//	kivuli v0.1.0 (commit 860f037a1b2c, 2026-12-07T17:00:00Z, go1.26.8 linux/amd64)
//
// with the commit and its time left out where unknown (go install).
func (v buildVersion) String() string {
	parts := make([]string, 0, 3)
	if v.commit != "" {
		parts = append(parts, "commit "+v.commit)
	}
	if v.date != "" {
		parts = append(parts, v.date)
	}
	parts = append(parts, v.goVersion+" "+v.platform)
	return fmt.Sprintf("kivuli %s (%s)", v.version, strings.Join(parts, ", "))
}

// currentVersion is this binary's version.
func currentVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(version, commit, date, bi)
}

// resolveVersion fills what -ldflags left at its default from bi: the
// module version that go install ...@v0.1.0 records, and the commit and
// its time that go build records in a clone (vcs.revision, shortened to
// 12 digits as in Go's pseudo-versions, and vcs.time).
func resolveVersion(ver, rev, when string, bi *debug.BuildInfo) buildVersion {
	v := buildVersion{version: ver, commit: rev, date: when,
		goVersion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v.version == "(devel)" && bi.Main.Version != "" {
			v.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && v.commit == "":
				v.commit = s.Value[:min(len(s.Value), 12)]
			case s.Key == "vcs.time" && v.date == "":
				v.date = s.Value
			}
		}
	}
	return v
}

// addVersionFlag gives root its --version flag. It has no shorthand:
// -v is --verbose in curl and proxy.
func addVersionFlag(root *cobra.Command) {
	root.Flags().Bool("version", false, `print one line, "kivuli VERSION (commit HASH, TIME, GO OS/ARCH)", and exit; the commit's HASH and TIME (UTC) are left out where unknown`)
}

// printVersion prints the version if cmd's --version is set, and reports
// whether it did.
func printVersion(cmd *cobra.Command) bool {
	if on, _ := cmd.Flags().GetBool("version"); !on {
		return false
	}
	fmt.Fprintln(cmd.OutOrStdout(), currentVersion())
	return true
}
