package main

import "github.com/spf13/cobra"

func (a *app) imdsCommand() *cobra.Command { return &cobra.Command{Use: "imds"} }
