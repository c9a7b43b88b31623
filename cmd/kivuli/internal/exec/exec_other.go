//go:build !unix

package main

func replaceProcess(string, []string, []string) error { return errNoExecve }
