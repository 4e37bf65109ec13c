package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newServeRepositoryCmd is a placeholder until its package lands.
func newServeRepositoryCmd() *cobra.Command {
	return &cobra.Command{Use: "repository", RunE: func(*cobra.Command, []string) error { return errors.New("not yet implemented") }}
}
