package main

// childMain is the test binary run as a child of kivuli exec.
func childMain(args []string) int { return 0 }
