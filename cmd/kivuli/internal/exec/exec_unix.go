//go:build unix

package exec

import (
	"syscall"
)

// replaceProcess makes the process become path (execve): signals and the
// exit status are then the command's own.
func replaceProcess(path string, args []string, env []string) error {
	return syscall.Exec(path, args, env)
}
