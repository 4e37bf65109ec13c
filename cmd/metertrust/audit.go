package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newAuditCmd is a placeholder until its package lands.
func newAuditCmd() *cobra.Command {
	return &cobra.Command{Use: "audit", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
