package root

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
)

// kivuli --version prints one line on standard output: what the release
// script stamped with -ldflags -X.
func TestVersionFlag(t *testing.T) {
	saved := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = saved[0], saved[1], saved[2] })
	version, commit, date = "v0.1.0", "860f037a1b2c", "2026-12-07T17:00:00Z"

	r := runCmd(t, "", "--version")
	want := "kivuli v0.1.0 (commit 860f037a1b2c, 2026-12-07T17:00:00Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if r.Code != 0 || r.Stderr != "" || r.Stdout != want {
		t.Errorf("kivuli --version: exit %d, stdout %q, stderr %q; want %q", r.Code, r.Stdout, r.Stderr, want)
	}
	for _, args := range [][]string{{"--version", "curl"}, {"curl", "--version"}, {"-v"}} {
		if r := runCmd(t, "", args...); r.Code != base.ExitUsage || r.Stdout != "" {
			t.Errorf("kivuli %s: exit %d, stdout %q; want exit %d and nothing printed",
				strings.Join(args, " "), r.Code, r.Stdout, base.ExitUsage)
		}
	}
}

// Without -ldflags, the version comes from what the Go toolchain records:
// the module version of go install ...@v0.1.0, the commit of go build in
// a clone. What -ldflags set always wins.
func TestResolveVersion(t *testing.T) {
	goPart := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T08:15:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	for _, c := range []struct {
		name                string
		version, commit, at string
		bi                  *debug.BuildInfo
		want                string
	}{
		{"no build info", "(devel)", "", "", nil, "kivuli (devel) (" + goPart + ")"},
		{"go build in a workspace", "(devel)", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"kivuli (devel) (" + goPart + ")"},
		{"go install @v0.1.0", "(devel)", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}},
			"kivuli v0.1.0 (" + goPart + ")"},
		{"go build in a clone", "(devel)", "", "",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261130081500-0123456789ab+dirty"}, Settings: vcs},
			"kivuli v0.1.1-0.20261130081500-0123456789ab+dirty (commit 0123456789ab, 2026-11-30T08:15:00Z, " + goPart + ")"},
		{"ldflags win", "v0.2.0", "fedcba987654+dirty", "2026-12-07T17:00:00Z",
			&debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}, Settings: vcs},
			"kivuli v0.2.0 (commit fedcba987654+dirty, 2026-12-07T17:00:00Z, " + goPart + ")"},
	} {
		if got := resolveVersion(c.version, c.commit, c.at, c.bi).String(); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
