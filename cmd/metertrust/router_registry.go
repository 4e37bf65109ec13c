package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/spf13/cobra"
)

// newRouterCmd is "metertrust router": the router's registry of devices
// and consents, kept in the store the router serves from. Every change is
// audited.
func newRouterCmd() *cobra.Command {
	c := &cobra.Command{Use: "router", Short: "The router's device registry, registration data and consent records"}
	c.AddCommand(newRouterDeviceCmd(), newRouterSupplyCmd(), newRouterConsentCmd())
	return c
}

// registrarFlags are the flags every registry command shares.
type registrarFlags struct{ data, dsn, actor string }

func (f *registrarFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.data, "data", "", "data directory")
	c.Flags().StringVar(&f.dsn, "store", "", "store DSN; default the store in --data")
	c.Flags().StringVar(&f.actor, "actor", os.Getenv("USER"), "who makes the change, for the audit log")
}

func (f *registrarFlags) open(ctx context.Context, run func(*router.Registrar) error) error {
	if f.actor == "" {
		return errors.New("--actor is required")
	}
	db, err := openStore(ctx, f.data, f.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return run(router.NewRegistrar(db.Router(), nil))
}

func newRouterDeviceCmd() *cobra.Command {
	var f registrarFlags
	var eui, supplier, no string
	c := &cobra.Command{
		Use:   "device-register",
		Short: "Register a device (keys from its SMKI device certificates) with its supplier and network operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d, s, n smki.EUI
			var err error
			if d, err = smki.ParseEUI(eui); err != nil {
				return fmt.Errorf("--eui: %w", err)
			}
			if supplier != "" {
				if s, err = smki.ParseEUI(supplier); err != nil {
					return fmt.Errorf("--supplier: %w", err)
				}
			}
			if no != "" {
				if n, err = smki.ParseEUI(no); err != nil {
					return fmt.Errorf("--network-operator: %w", err)
				}
			}
			return f.open(cmd.Context(), func(g *router.Registrar) error { return g.RegisterDevice(cmd.Context(), f.actor, d, s, n) })
		},
	}
	f.register(c)
	c.Flags().StringVar(&eui, "eui", "", "device EUI-64 (required)")
	c.Flags().StringVar(&supplier, "supplier", "", "EUI-64 of the supplier holding the supplier trust anchor")
	c.Flags().StringVar(&no, "network-operator", "", "EUI-64 of the network operator")
	c.MarkFlagRequired("eui")
	return c
}

// newRouterSupplyCmd is "metertrust router supply-register": the
// registration data naming the incoming supplier of a device from a date,
// the only supplier whose change of supplier the router then accepts.
func newRouterSupplyCmd() *cobra.Command {
	var f registrarFlags
	var device, supplier, from string
	c := &cobra.Command{
		Use:   "supply-register",
		Short: "Record the registration data of a change of supplier: the incoming supplier of a device from a date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := smki.ParseEUI(device)
			if err != nil {
				return fmt.Errorf("--device: %w", err)
			}
			s, err := smki.ParseEUI(supplier)
			if err != nil {
				return fmt.Errorf("--supplier: %w", err)
			}
			at := time.Now()
			if from != "" {
				if at, err = time.Parse(time.RFC3339, from); err != nil {
					return fmt.Errorf("--from: want an RFC 3339 time: %w", err)
				}
			}
			return f.open(cmd.Context(), func(g *router.Registrar) error { return g.RegisterSupply(cmd.Context(), f.actor, d, s, at) })
		},
	}
	f.register(c)
	c.Flags().StringVar(&device, "device", "", "device EUI-64 (required)")
	c.Flags().StringVar(&supplier, "supplier", "", "EUI-64 of the incoming supplier (required)")
	c.Flags().StringVar(&from, "from", "", "when the registration takes effect, RFC 3339; default now")
	c.MarkFlagRequired("device")
	c.MarkFlagRequired("supplier")
	return c
}

func newRouterConsentCmd() *cobra.Command {
	c := &cobra.Command{Use: "consent", Short: "Consent records for other users' reads (spec section 11)"}
	var gf registrarFlags
	var id, device, user, evidence string
	var scope []string
	var valid time.Duration
	grant := &cobra.Command{
		Use:   "grant",
		Short: "Record a consumer's consent for an other user to read their device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := smki.ParseEUI(device)
			if err != nil {
				return fmt.Errorf("--device: %w", err)
			}
			u, err := smki.ParseEUI(user)
			if err != nil {
				return fmt.Errorf("--user: %w", err)
			}
			now := time.Now()
			return gf.open(cmd.Context(), func(g *router.Registrar) error {
				return g.GrantConsent(cmd.Context(), gf.actor, store.Consent{ID: id, Device: d.String(), User: u.String(), Scope: scope,
					NotBefore: now, ExpiresAt: now.Add(valid), Evidence: evidence})
			})
		},
	}
	gf.register(grant)
	grant.Flags().StringVar(&id, "id", "", "consent identifier (required)")
	grant.Flags().StringVar(&device, "device", "", "the consumer's device EUI-64 (required)")
	grant.Flags().StringVar(&user, "user", "", "the other user's EUI-64 (required)")
	grant.Flags().StringSliceVar(&scope, "scope", nil, "service reference variants consented to, such as 4.8.1 (required)")
	grant.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "how long the consent lasts")
	grant.Flags().StringVar(&evidence, "evidence", "", "how consent was given, such as the CIN read back (required)")
	for _, n := range []string{"id", "device", "user", "scope", "evidence"} {
		grant.MarkFlagRequired(n)
	}
	var rf registrarFlags
	var rid, reason string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "End a consent now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rf.open(cmd.Context(), func(g *router.Registrar) error { return g.RevokeConsent(cmd.Context(), rf.actor, rid, reason) })
		},
	}
	revoke.Long = `End a consent now, for an operator acting on the consumer's request: --actor
and --reason are recorded in the consent record and in the audit log. An
other user ends its own through the router's API (metertrust thirdparty
consent-revoke).`
	rf.register(revoke)
	revoke.Flags().StringVar(&rid, "id", "", "consent identifier (required)")
	revoke.Flags().StringVar(&reason, "reason", "", "why, such as the consumer's request and its reference (required)")
	revoke.MarkFlagRequired("id")
	revoke.MarkFlagRequired("reason")

	var lf registrarFlags
	var ldevice, luser string
	var live, asJSON bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List consent records, any user's (the reading is audited)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := store.ConsentFilter{Limit: limit}
			var err error
			if ldevice != "" {
				if f.Device, err = smki.ParseEUI(ldevice); err != nil {
					return fmt.Errorf("--device: %w", err)
				}
			}
			if luser != "" {
				if f.User, err = smki.ParseEUI(luser); err != nil {
					return fmt.Errorf("--user: %w", err)
				}
			}
			if live {
				f.LiveAt = time.Now()
			}
			return lf.open(cmd.Context(), func(g *router.Registrar) error {
				cs, err := g.Consents(cmd.Context(), lf.actor, f)
				if err != nil {
					return err
				}
				return printStoreConsents(cmd.OutOrStdout(), asJSON, cs)
			})
		},
	}
	lf.register(list)
	list.Flags().StringVar(&ldevice, "device", "", "only this device's")
	list.Flags().StringVar(&luser, "user", "", "only this other user's")
	list.Flags().BoolVar(&live, "live", false, "only those live now")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many (default 1000)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var sf registrarFlags
	var sid string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show one consent record (the reading is audited)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.open(cmd.Context(), func(g *router.Registrar) error {
				c, err := g.Consent(cmd.Context(), sf.actor, sid)
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), consentJSON(c))
			})
		},
	}
	sf.register(show)
	show.Flags().StringVar(&sid, "id", "", "consent identifier (required)")
	show.MarkFlagRequired("id")
	c.AddCommand(grant, revoke, list, show)
	return c
}

// consentJSON is a consent record as the CLI prints it.
func consentJSON(c store.Consent) map[string]any {
	out := map[string]any{"id": c.ID, "device": c.Device, "user": c.User, "scope": c.Scope, "notBefore": c.NotBefore,
		"expires": c.ExpiresAt, "evidence": c.Evidence, "createdBy": c.CreatedBy, "created": c.CreatedAt, "live": c.Live(time.Now())}
	if !c.DataFrom.IsZero() {
		out["dataFrom"] = c.DataFrom
	}
	if !c.RevokedAt.IsZero() {
		out["revokedAt"], out["revokedBy"], out["revokeReason"] = c.RevokedAt, c.RevokedBy, c.RevokeReason
	}
	return out
}

// printStoreConsents prints consent records: JSON, or a table.
func printStoreConsents(w io.Writer, asJSON bool, cs []store.Consent) error {
	if asJSON {
		out := []map[string]any{}
		for _, c := range cs {
			out = append(out, consentJSON(c))
		}
		return printJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tUSER\tSCOPE\tEXPIRES\tREVOKED")
	for _, c := range cs {
		revoked := ""
		if !c.RevokedAt.IsZero() {
			revoked = c.RevokedAt.Format(time.RFC3339) + " by " + c.RevokedBy + ": " + c.RevokeReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Device, c.User, strings.Join(c.Scope, ","), c.ExpiresAt.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}
