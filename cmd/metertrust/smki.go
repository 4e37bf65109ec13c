package main

import (
	"github.com/spf13/cobra"
)

// newSMKICmd is a placeholder until the smki reader lands.
func newSMKICmd() *cobra.Command {
	c := &cobra.Command{Use: "smki", Short: "Read and validate SMKI certificates"}
	c.AddCommand(newSMKIVerifyCmd())
	return c
}
