package main

import (
	"slices"
	"testing"
)

// TestFindModules: the README's test command runs every module that has
// tests, the command's, the examples' and the interoperability checks'
// among them (its go test -race ./... in the library's module alone left
// them out), and leaves out a module without tests.
func TestFindModules(t *testing.T) {
	mods, err := findModules("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) == 0 || mods[0] != "../.." {
		t.Fatalf("modules %q: want the library's first", mods)
	}
	for _, want := range []string{"../../cmd/kivuli", "../../interop", "../../examples/elasticsearch", "../../benchmarks"} {
		if !slices.Contains(mods, want) {
			t.Errorf("modules %q: %s missing", mods, want)
		}
	}
	if slices.Contains(mods, "../../internal/endpointgen") {
		t.Errorf("modules %q: internal/endpointgen has no tests", mods)
	}
}
