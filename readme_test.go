package kivuli_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCheckout follows the README's way to use a checkout before
// the module is published: in a fresh module, its go mod edit (with the
// checkout's path for ../kivuli) and go mod tidy, then a build of a
// program that uses the library. Offline: GOPROXY=off, so the module
// cache must hold the library's requirements, as any test run leaves it.
func TestReadmeCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module: not in -short")
	}
	steps := readmeCheckoutSteps(t)
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	prog := "package main\n\nimport (\n\t\"context\"\n\t\"net/http\"\n\n\t\"github.com/kivuli-go/kivuli\"\n)\n\n" +
		"func main() {\n\tcreds, err := kivuli.New(context.Background())\n\tif err != nil {\n\t\treturn\n\t}\n" +
		"\tdefer creds.Close()\n\t_ = &http.Client{Transport: &kivuli.Transport{Credentials: creds}}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "init", "example.com/first-hour")
	for _, step := range steps {
		args := strings.Fields(strings.ReplaceAll(step, "../kivuli", root))
		run(args[1:]...)
	}
	run("build", "-o", os.DevNull, ".")
}

// readmeCheckoutSteps returns the go commands of the README's block that
// uses a checkout (the git clone before them is this checkout).
func readmeCheckoutSteps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []string
	inBlock, found := false, false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "git clone") && strings.Contains(line, "../kivuli"):
			inBlock, found = true, true
		case inBlock && line == "```":
			inBlock = false
		case inBlock && strings.HasPrefix(line, "go "):
			steps = append(steps, line)
		}
	}
	if !found || len(steps) < 2 {
		t.Fatalf("the README has no block that clones ../kivuli and points a module at it (steps %q)", steps)
	}
	return steps
}
