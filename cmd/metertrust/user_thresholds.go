package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/anomaly"
)

// newUserThresholdsCmd is "metertrust user thresholds": the user's own
// anomaly detection thresholds (GBCS section 10), stricter than the DCC's.
func newUserThresholdsCmd() *cobra.Command {
	c := &cobra.Command{Use: "thresholds", Short: "The user's own anomaly thresholds, stricter than the DCC's"}
	var lf userFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the thresholds that apply to the user: its own and the DCC's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := lf.client()
			if err != nil {
				return err
			}
			defer done()
			own, dcc, err := c.Thresholds(cmd.Context())
			if err != nil {
				return err
			}
			if lf.json {
				return printJSON(cmd.OutOrStdout(), map[string][]anomaly.Threshold{"own": nonNil(own), "dcc": nonNil(dcc)})
			}
			return printThresholds(cmd.OutOrStdout(), own, dcc)
		},
	}
	lf.register(list, false)

	var sf userFlags
	var t anomaly.Threshold
	var scope string
	set := &cobra.Command{
		Use:   "set ID --scope user-srv --service-ref 4.1.1 --limit N --window 1h [--fixed]",
		Short: "Create or replace one of the user's own thresholds (refused unless stricter than the DCC's)",
		Long: `Set the user's own threshold ID: scope user-srv (one service request, --service-ref),
user-total (all its commands) or attribute (--attribute, --min, --max). Over
--limit commands in --window, the router quarantines the user's commands as
it does over the DCC's thresholds. It must be stricter than the DCC's for the
same scope: a limit no higher over a window no longer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := anomaly.ParseScope(scope)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			t.ID, t.Scope = args[0], sc
			c, done, err := sf.client()
			if err != nil {
				return err
			}
			defer done()
			out, err := c.SetThreshold(cmd.Context(), t)
			if err != nil {
				return err
			}
			if sf.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printThresholds(cmd.OutOrStdout(), []anomaly.Threshold{out}, nil)
		},
	}
	sf.register(set, false)
	set.Flags().StringVar(&scope, "scope", string(anomaly.ScopeUserService), "user-srv, user-total or attribute")
	set.Flags().StringVar(&t.ServiceRef, "service-ref", "", "service reference variant, such as 4.1.1")
	set.Flags().Int64Var(&t.Limit, "limit", 0, "commands allowed per window")
	set.Flags().DurationVar(&t.Window, "window", 0, "the window, such as 1h or 24h")
	set.Flags().BoolVar(&t.Fixed, "fixed", false, "fixed UTC-aligned windows rather than a sliding one")
	set.Flags().StringVar(&t.Attribute, "attribute", "", "the attribute an attribute limit bounds, such as price")
	set.Flags().Int64Var(&t.Min, "min", 0, "an attribute limit's minimum")
	set.Flags().Int64Var(&t.Max, "max", 0, "an attribute limit's maximum")

	var df userFlags
	var reason string
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete one of the user's own thresholds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, done, err := df.client()
			if err != nil {
				return err
			}
			defer done()
			return c.DeleteThreshold(cmd.Context(), args[0], reason)
		},
	}
	df.register(del, false)
	del.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	c.AddCommand(list, set, del)
	return c
}

func nonNil(ts []anomaly.Threshold) []anomaly.Threshold {
	if ts == nil {
		return []anomaly.Threshold{}
	}
	return ts
}

// printThresholds prints thresholds as a table, the user's own first.
func printThresholds(w io.Writer, own, dcc []anomaly.Threshold) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tID\tTHRESHOLD")
	for _, t := range own {
		fmt.Fprintf(tw, "own\t%s\t%s\n", t.ID, t)
	}
	for _, t := range dcc {
		fmt.Fprintf(tw, "DCC\t%s\t%s\n", t.ID, t)
	}
	return tw.Flush()
}
