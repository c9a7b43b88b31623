//go:build race

package testkit

// RaceEnabled says that the race detector is on, and that a process's
// memory counts its shadow memory.
const RaceEnabled = true
