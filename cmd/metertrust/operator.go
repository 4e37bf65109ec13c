package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/operator"
)

// newOperatorCmd is "metertrust operator": operator credentials shared by
// every service (package operator).
func newOperatorCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "operator",
		Short: "Manage DCC operator credentials",
	}
	c.AddCommand(newOperatorTokenCmd())
	return c
}

// newOperatorTokenCmd is "metertrust operator token": mint a bearer token.
func newOperatorTokenCmd() *cobra.Command {
	var f struct {
		name  string
		roles []string
		json  bool
	}
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint an operator bearer token and print the credentials-file entry for it",
		Long: `Mint a random operator bearer token. The token is printed once, for the
operator alone; the services keep only its SHA-256, in the credentials file
every service reads (serve router --operators, serve repository --operators,
and the "operators" of the repository's --config):
  {"operators": [{"name": "alice", "token_sha256": "<hex>", "roles": ["quarantine-officer"]}]}
Add the printed entry to its "operators" list (deploy/examples/operators.json).

Roles: viewer, quarantine-officer and threshold-admin (the operator API),
publish and revoke (the certificate repository's writes). Give --role once
per role, or a comma-separated list.`,
		Example: `  metertrust operator token --name alice --role quarantine-officer
  metertrust operator token --name bob --role viewer,revoke --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var roles []operator.Role
			for _, r := range f.roles {
				role, err := operator.ParseRole(strings.TrimSpace(r))
				if err != nil {
					return err
				}
				roles = append(roles, role)
			}
			token, cred, err := operator.Mint(nil, f.name, roles)
			if err != nil {
				return err
			}
			entry, err := json.Marshal(cred)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				b, err := json.Marshal(struct {
					Token      string              `json:"token"`
					Credential operator.Credential `json:"credential"`
				}{token, cred})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			}
			_, err = fmt.Fprintf(out, "token for %s (shown once; give it to the operator alone):\n%s\n\nadd to the operators list of the credentials file:\n%s\n", cred.Name, token, entry)
			return err
		},
	}
	c.Flags().StringVar(&f.name, "name", "", "operator name, the actor in the audit log (required)")
	c.Flags().StringSliceVar(&f.roles, "role", nil, "role: viewer, quarantine-officer, threshold-admin, publish, revoke (repeatable; required)")
	c.Flags().BoolVar(&f.json, "json", false, `print {"token": ..., "credential": {...}} as one JSON object`)
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("role")
	return c
}
