//go:build race

package main

// raceEnabled: the race detector is on, and a process's memory counts its
// shadow memory.
const raceEnabled = true
