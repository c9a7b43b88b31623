package root

import (
	"strings"
	"testing"

	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/base"
	"github.com/kivuli-go/kivuli/cmd/kivuli/internal/testkit"
)

// Every command's manual, as --help and help COMMAND print it.
func TestManualGolden(t *testing.T) {
	for _, cmd := range []string{"", "curl", "creds", "exec", "imds", "proxy"} {
		name := cmd
		if name == "" {
			name = "kivuli"
		}
		t.Run(name, func(t *testing.T) {
			r := runCmd(t, "", strings.Fields(cmd+" --help")...)
			if r.Code != 0 || r.Stderr != "" {
				t.Fatalf("exit %d: %s", r.Code, r.Stderr)
			}
			testkit.Golden(t, "help/"+name+".golden", r.Stdout)
			h := runCmd(t, "", strings.Fields("help "+cmd)...)
			if h.Stdout != r.Stdout {
				t.Errorf("help %s differs from %s --help", cmd, cmd)
			}
			for _, section := range []string{"NAME\n", "SYNOPSIS\n", "DESCRIPTION\n", "EXAMPLES\n", "EXIT STATUS\n"} {
				if !strings.Contains(r.Stdout, section) {
					t.Errorf("no %s section", strings.TrimSpace(section))
				}
			}
			for i, line := range strings.Split(r.Stdout, "\n") {
				if len([]rune(line)) > base.ManualWidth+12 {
					t.Errorf("line %d is %d wide: %q", i+1, len(line), line)
				}
			}
		})
	}
	if r := runCmd(t, "", "help", "nope"); r.Code != base.ExitUsage {
		t.Errorf("help nope: exit %d", r.Code)
	}
}
