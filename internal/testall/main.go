// Command testall runs the whole test suite of this repository: go test
// -race ./... in every Go module of it that has tests (the library, the
// kivuli command, the examples, the interoperability checks and the
// benchmarks' own tests), one module after the other, and exits 1 if any
// failed. It is the README's test command:
//
//	go run ./internal/testall            # every module, with -race
//	go run ./internal/testall -run Proxy # extra flags go to every go test
//
// A module is a directory holding a go.mod; one whose tree has no _test.go
// file (the endpoint table's generator) has nothing to run and is left
// out, as are testdata directories.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	modules, err := findModules(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testall:", err)
		os.Exit(2)
	}
	var failed []string
	for _, dir := range modules {
		args := append([]string{"test", "-race"}, os.Args[1:]...)
		args = append(args, "./...")
		fmt.Printf("== go %s  (in %s)\n", strings.Join(args, " "), dir)
		start := time.Now()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			failed = append(failed, dir)
		}
		fmt.Printf("   %s: %s\n", dir, time.Since(start).Round(time.Second))
	}
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "testall: tests failed in %s\n", strings.Join(failed, ", "))
		os.Exit(1)
	}
	fmt.Printf("testall: %d modules passed\n", len(modules))
}

// findModules returns the directories under root that hold a go.mod and
// a _test.go file of their own module, root first, then in lexical order.
func findModules(root string) ([]string, error) {
	var mods []string
	tests := map[string]bool{} // module directory: it has a test file
	current := func(path string) string {
		best := ""
		for _, m := range mods {
			if (path == m || m == "." || strings.HasPrefix(path, m+string(filepath.Separator))) && len(m) >= len(best) {
				best = m
			}
		}
		return best
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				mods = append(mods, path)
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.go") {
			tests[current(filepath.Dir(path))] = true
		}
		return nil
	})
	mods = slices.DeleteFunc(mods, func(m string) bool { return !tests[m] })
	slices.SortFunc(mods, func(a, b string) int {
		switch {
		case a == root:
			return -1
		case b == root:
			return 1
		}
		return strings.Compare(a, b)
	})
	return mods, err
}
