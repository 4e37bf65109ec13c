package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/demo"
	"github.com/metertrust/metertrust/internal/serving"
)

// demoSummary is what "metertrust demo --json" prints.
type demoSummary = demo.Summary

// newDemoCmd is "metertrust demo": the whole system in one process, and its
// story told step by step (package demo).
func newDemoCmd() *cobra.Command {
	var f struct {
		data, logLevel            string
		json                      bool
		meters, attack, threshold int
	}
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story in one process: SMKI ceremony, meters, supplier, third party, attack, quarantine, audit",
		Long: `Run metertrust in one process on the embedded store (in a temporary directory
unless --data is given) and tell its story: the SMKI ceremony and the parties'
certificates; a batch of meters (--meters) with a revoked certificate, its
CRL and OCSP; the supplier's reads, disconnections and reconnections over the
router's mutual-TLS API; one refusal of each common kind; a third party's
consented read encrypted to its own key, then the 13 months of half-hourly
data its consent's data period allows, in as few reads as one-message
responses allow; a compromised supplier's flood of
signed disconnections (--attack) stopped by the DCC threshold (--threshold)
and deleted by an operator through the operator API; a consumer switching
supplier (the transitional change-of-supplier party's CS02b, ownership moved
on the meter's confirmation, the old supplier's next disconnection refused by
the router and, sent directly, by the meter); a stolen meter's key opening
that meter and no other; the batch CA key destroyed; the audit chain
verified. --json prints only the summary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.DiscardHandler)
			if f.logLevel != "" {
				var err error
				if log, err = serving.Logger(f.logLevel); err != nil {
					return err
				}
			}
			var story io.Writer = cmd.OutOrStdout()
			if f.json {
				story = nil
			}
			// Interrupted, the demo still stops its services and removes
			// its temporary directory.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := demo.Run(ctx, demo.Options{DataDir: f.data, Meters: f.meters, Attack: f.attack,
				Threshold: f.threshold, Out: story, Logger: log})
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if f.data != "" {
				// So that the CA and audit commands can look at what the
				// demo left in DATA.
				if err := writeCAConfig(f.data, caConfig{KMS: "softkms"}); err != nil {
					return err
				}
			}
			if f.json {
				return demo.WriteJSON(cmd.OutOrStdout(), sum)
			}
			return demo.WriteTable(cmd.OutOrStdout(), sum)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "keep the data (store, keys, certificates) in this new directory; default a temporary one")
	fl.BoolVar(&f.json, "json", false, "print only the summary, as JSON")
	fl.IntVar(&f.meters, "meters", demo.DefaultMeters, "meters in the batch")
	fl.IntVar(&f.attack, "attack", demo.DefaultAttack, "signed disconnections the compromised supplier sends")
	fl.IntVar(&f.threshold, "threshold", demo.DefaultThreshold, "DCC threshold: disconnections per supplier per 24 h")
	fl.StringVar(&f.logLevel, "log-level", "", "log the services (JSON on stderr) at debug, info, warn or error; default none")
	return c
}
