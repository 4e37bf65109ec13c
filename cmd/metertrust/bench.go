package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/bench"
)

// newBenchCmd is "metertrust bench": measurements of this machine, recorded
// in docs/performance.md.
func newBenchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Measure the router on this machine"}
	c.AddCommand(newBenchRouterCmd(), newBenchRouterClientCmd())
	return c
}

// newBenchRouterCmd is "metertrust bench router" (package bench).
func newBenchRouterCmd() *cobra.Command {
	var f struct {
		store, data, cpuprofile string
		meters, commands, conc  int
		duration                time.Duration
		json, inProcess         bool
	}
	c := &cobra.Command{
		Use:   "router",
		Short: "Raw ECDSA verification rate, the router's peak rate, latency at half load, end to end with meters",
		Long: `Set up the whole system in a temporary directory (SMKI and DCCKI ceremonies,
a supplier, --meters reference meters, the router on a loopback mutual-TLS
listener) and measure, using every core: raw ECDSA P-256 verifications per
second; the router's rate for signed critical commands put through the whole
pipeline to a recording transport; their ratio; p50/p99 latency open loop at
half that rate; and the end-to-end rate with the meters executing and
answering, with the CPU split between router, meters and client.

The client runs as a child process (this binary, "bench router-client") so
that its CPU time is measured apart. --store postgres://... runs on a fresh
schema of that database, dropped at the end; the default is SQLite.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case f.meters < 1:
				return fmt.Errorf("--meters %d: want at least 1", f.meters)
			case f.commands < 1:
				return fmt.Errorf("--commands %d: want at least 1", f.commands)
			case f.conc < 1:
				return fmt.Errorf("--concurrency %d: want at least 1", f.conc)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := bench.Config{Store: f.store, DataDir: f.data, Meters: f.meters, Commands: f.commands, Duration: f.duration,
				Concurrency: f.conc}
			if !f.json {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if !f.inProcess {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding this binary to run the client: %w", err)
				}
				cfg.Client = bench.Exec{Path: self, Args: []string{"bench", "router-client"}}
			}
			if f.cpuprofile != "" {
				pf, err := os.OpenFile(f.cpuprofile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pf.Close()
				cfg.CPUProfile = pf
			}
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return rep.WriteTable(cmd.OutOrStdout())
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.store, "store", "", "store DSN: postgres://... (a fresh schema is made and dropped); default SQLite in the data directory")
	fl.StringVar(&f.data, "data", "", "data directory to use (must be empty); default a temporary directory, removed at the end")
	fl.IntVar(&f.meters, "meters", bench.DefaultMeters, "number of reference meters")
	fl.IntVar(&f.commands, "commands", bench.DefaultCommands, "commands in the peak phase and in the end-to-end phase")
	fl.DurationVar(&f.duration, "duration", bench.DefaultDuration, "length of the raw verification phase and of the half-load phase")
	fl.IntVar(&f.conc, "concurrency", bench.DefaultConcurrency, "client connections (requests in flight)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.StringVar(&f.cpuprofile, "cpuprofile", "", "write the server's CPU profile of the peak phase to this file")
	fl.BoolVar(&f.inProcess, "in-process-client", false, "run the client in this process (its CPU time then cannot be measured apart)")
	return c
}

// newBenchRouterClientCmd is the load client "bench router" starts: a job as
// JSON on standard input, the result as JSON on standard output.
func newBenchRouterClientCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "router-client",
		Short:  "The load client of bench router (a job on stdin, the result on stdout)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.ServeClient(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}
