//go:build !unix

package exec

func replaceProcess(string, []string, []string) error { return errNoExecve }
