package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newGBCSCmd is a placeholder until its package lands.
func newGBCSCmd() *cobra.Command {
	return &cobra.Command{Use: "gbcs", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
