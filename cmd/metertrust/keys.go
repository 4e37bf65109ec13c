package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newKeysCmd is a placeholder until its package lands.
func newKeysCmd() *cobra.Command {
	return &cobra.Command{Use: "keys", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
