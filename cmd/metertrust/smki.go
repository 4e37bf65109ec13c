package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/smki"
)

// newSMKICmd groups the commands that read and validate SMKI certificates.
func newSMKICmd() *cobra.Command {
	c := &cobra.Command{Use: "smki", Short: "Read and validate SMKI certificates"}
	c.AddCommand(newSMKIShowCmd())
	c.AddCommand(newSMKIVerifyCmd())
	return c
}

// shownObject is one line of `smki show --json`: the file it came from and
// the summary's fields.
type shownObject struct {
	File string `json:"file"`
	smki.Summary
}

func newSMKIShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show [--json] FILE...",
		Short: "Describe SMKI certificates and certificate requests (PEM or DER)",
		Long: "show reads each FILE (PEM or DER; certificates of any SMKI profile, from any issuer, " +
			"or PKCS#10 requests) and prints its profile, role, EUI, key usage, key identifiers, " +
			"policies and validity, then each deviation from the SMKI profile as a line " +
			"\"warning: <code>: <message>\" (with --json, a \"warnings\" list of {code, message}). " +
			"A file that is malformed or refused (not P-256, not ecdsa-with-SHA256) is reported " +
			"and makes the command fail after the other files are shown.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSMKIShow(cmd.OutOrStdout(), args, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print a JSON array with stable field names")
	return c
}

func runSMKIShow(out io.Writer, files []string, asJSON bool) error {
	var shown []shownObject
	var failed []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			failed = append(failed, fmt.Errorf("reading %s: %w", f, err))
			continue
		}
		sums, err := smki.Describe(data)
		for _, s := range sums {
			shown = append(shown, shownObject{File: f, Summary: s})
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", f, err))
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if shown == nil {
			shown = []shownObject{}
		}
		if err := enc.Encode(shown); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
	} else {
		for i := range shown {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "%s:\n", shown[i].File)
			if err := shown[i].Summary.WriteText(out); err != nil {
				return fmt.Errorf("writing %s: %w", shown[i].File, err)
			}
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	return nil
}
