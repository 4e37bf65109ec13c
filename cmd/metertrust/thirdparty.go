package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/smki"
)

// newThirdPartyCmd is "metertrust thirdparty": an other user's (OU, a
// third party) consent and reads under it (spec section 11), built on
// package client. The flags are those of metertrust user.
func newThirdPartyCmd() *cobra.Command {
	c := &cobra.Command{Use: "thirdparty", Short: "An other user's consents (the CIN flow) and reads under consent (package client)"}
	c.AddCommand(newThirdPartyReadCmd(), newThirdPartyCINCmd(), newThirdPartyClaimCmd(), newThirdPartyConsentsCmd(),
		newThirdPartyConsentCmd(), newThirdPartyRevokeCmd())
	return c
}

// parseDate reads a date as RFC 3339 or YYYY-MM-DD (midnight UTC).
func parseDate(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)", flag, s)
}

func newThirdPartyReadCmd() *cobra.Command {
	var f userFlags
	var from, to, fuel string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "read SRV TARGET --from DATE --to DATE [--fuel gas]",
		Short: "Read a consumer's data under consent, wait for the response and print it decrypted",
		Long: `Send the read SRV (4.8.1, the half-hour profile, or 4.17, the daily
consumption log) for the device TARGET (EUI-64), an electricity meter or with
--fuel gas a gas meter, for the period --from to --to (RFC 3339 times or
dates, UTC; the intervals starting in it), wait for the meter's response and
print it checked (MAC) and decrypted with --decrypt, the other user's
key-agreement key, with its intervals; --repository gives the devices'
certificates. A profile period longer than one response carries (255 half
hours from a gas meter, 168 days from an electricity meter) is read in as
many requests, one response printed for each. The router refuses a read
without live consent (not-owner) and one reaching back more than 13 months
(consent-period).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tf, err := parseDate("from", from)
			if err != nil {
				return err
			}
			tt, err := parseDate("to", to)
			if err != nil {
				return err
			}
			if !tf.Before(tt) {
				return fmt.Errorf("--from %s is not before --to %s", from, to)
			}
			if fuel != "" && fuel != client.Electricity && fuel != client.Gas {
				return fmt.Errorf("--fuel %q: want %s or %s", fuel, client.Electricity, client.Gas)
			}
			ref := args[0]
			reads := []map[string]any{{"from": tf.UTC().Format(time.RFC3339), "to": tt.UTC().Format(time.RFC3339)}}
			if ref == "4.8.1" {
				reads = reads[:0]
				for _, s := range client.ProfileSpans(fuel, tf, tt) {
					reads = append(reads, s.ProfileParams(fuel))
				}
			}
			return f.withDevice("TARGET", args[1], func(c *client.Client, target smki.EUI) error {
				ctx := cmd.Context()
				for _, params := range reads {
					rc, err := c.Do(ctx, client.Request{Ref: ref, Target: target, Fuel: fuel, Params: params})
					if err != nil {
						return err
					}
					wctx, cancel := context.WithTimeout(ctx, wait)
					d, err := c.Wait(wctx, rc.ID, 0)
					cancel()
					if err != nil {
						return fmt.Errorf("waiting for the response to %s: %w", rc.ID, err)
					}
					if err := printDelivery(cmd.OutOrStdout(), ctx, c, d, f.json); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&from, "from", "", "start of the period (required)")
	c.Flags().StringVar(&to, "to", "", "end of the period (required)")
	c.Flags().StringVar(&fuel, "fuel", "", "electricity (default) or gas: the meter's fuel, which selects the use case")
	c.Flags().DurationVar(&wait, "wait", time.Minute, "how long to wait for each response")
	c.MarkFlagRequired("from")
	c.MarkFlagRequired("to")
	return c
}

func newThirdPartyCINCmd() *cobra.Command {
	var f userFlags
	var fuel string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "cin TARGET",
		Short: "Have the consumer's meter display a customer identification number (CIN) for consent",
		Long: `Have the device TARGET display a fresh CIN (SR 9.1, sent by the router's access
control broker for the other user). The consumer reads it back to the other
user, which claims consent with "metertrust thirdparty consent-claim".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withDevice("TARGET", args[0], func(c *client.Client, target smki.EUI) error {
				ctx := cmd.Context()
				rc, err := c.RequestCIN(ctx, target, fuel)
				if err != nil {
					return err
				}
				if wait > 0 {
					wctx, cancel := context.WithTimeout(ctx, wait)
					defer cancel()
					d, err := c.Wait(wctx, rc.ID, 0)
					if err != nil {
						return fmt.Errorf("waiting for the meter: %w", err)
					}
					if d.Kind != client.KindResponse {
						return fmt.Errorf("the meter did not display the CIN: %s %s", d.Kind, d.Detail)
					}
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), rc)
				}
				fmt.Fprintln(cmd.OutOrStdout(), rc.ID)
				return nil
			})
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&fuel, "fuel", "", "electricity (default) or gas")
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "wait this long for the meter to display it; 0 not to wait")
	return c
}

func newThirdPartyClaimCmd() *cobra.Command {
	var f userFlags
	var scope []string
	var days int
	c := &cobra.Command{
		Use:   "consent-claim DEVICE CIN --scope 4.8.1[,4.17] --days N",
		Short: "Claim the consumer's consent with the CIN they read back",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withDevice("DEVICE", args[0], func(c *client.Client, device smki.EUI) error {
				cs, err := c.ClaimConsent(cmd.Context(), device, args[1], scope, days)
				if err != nil {
					return err
				}
				return printConsents(cmd.OutOrStdout(), f.json, cs)
			})
		},
	}
	f.register(c, false)
	c.Flags().StringSliceVar(&scope, "scope", nil, "service reference variants consented to, such as 4.8.1 (required)")
	c.Flags().IntVar(&days, "days", 365, "how many days the consent lasts (1 to 395)")
	c.MarkFlagRequired("scope")
	return c
}

func newThirdPartyConsentsCmd() *cobra.Command {
	var f userFlags
	var device string
	var live bool
	var limit int
	c := &cobra.Command{
		Use:   "consents",
		Short: "List the consents the other user holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := client.ConsentQuery{Live: live, Limit: limit}
			if device != "" {
				d, err := smki.ParseEUI(device)
				if err != nil {
					return fmt.Errorf("--device: %w", err)
				}
				q.Device = d
			}
			c, done, err := f.client()
			if err != nil {
				return err
			}
			defer done()
			cs, err := c.Consents(cmd.Context(), q)
			if err != nil {
				return err
			}
			return printConsents(cmd.OutOrStdout(), f.json, cs...)
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&device, "device", "", "only this device's consents")
	c.Flags().BoolVar(&live, "live", false, "only the consents live now")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many (1 to 1000; default 100)")
	return c
}

func newThirdPartyConsentCmd() *cobra.Command {
	var f userFlags
	c := &cobra.Command{
		Use:   "consent ID",
		Short: "Show one of the other user's consents",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := f.client()
			if err != nil {
				return err
			}
			defer done()
			cs, err := c.Consent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), cs)
		},
	}
	f.register(c, false)
	return c
}

func newThirdPartyRevokeCmd() *cobra.Command {
	var f userFlags
	var reason string
	c := &cobra.Command{
		Use:   "consent-revoke ID --reason TEXT",
		Short: "End one of the other user's consents now (recorded and audited with the reason)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := f.client()
			if err != nil {
				return err
			}
			defer done()
			cs, err := c.RevokeConsent(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return printConsents(cmd.OutOrStdout(), f.json, cs)
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&reason, "reason", "", "why: the consumer withdrew, the service ended, ... (required)")
	c.MarkFlagRequired("reason")
	return c
}

// printConsents prints consent records: JSON, or a table.
func printConsents(w io.Writer, asJSON bool, cs ...client.Consent) error {
	if asJSON {
		if cs == nil {
			cs = []client.Consent{}
		}
		return printJSON(w, cs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tSCOPE\tSTATE\tEXPIRES\tREVOKED")
	for _, c := range cs {
		revoked := ""
		if !c.RevokedAt.IsZero() {
			revoked = c.RevokedAt.Format(time.RFC3339) + " by " + c.RevokedBy + ": " + c.RevokeReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Device, strings.Join(c.Scope, ","), c.State, c.Expires.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}
