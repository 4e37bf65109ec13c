package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCACmd is a placeholder until its package lands.
func newCACmd() *cobra.Command {
	return &cobra.Command{Use: "ca", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
