package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newSMKIVerifyCmd is a placeholder until the CA side lands.
func newSMKIVerifyCmd() *cobra.Command {
	return &cobra.Command{Use: "verify", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
