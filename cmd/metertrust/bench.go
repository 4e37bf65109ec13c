package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/bench"
)

// newBenchCmd is "metertrust bench": measurements of this machine, recorded
// in docs/performance.md.
func newBenchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Measure the router on this machine"}
	c.AddCommand(newBenchRouterCmd(), newBenchRouterClientCmd(), newBenchRouterInstanceCmd())
	return c
}

// newBenchRouterCmd is "metertrust bench router" (package bench).
func newBenchRouterCmd() *cobra.Command {
	var f struct {
		store, data, cpuprofile   string
		meters, commands, conc    int
		preload, pDevices, pUsers int
		routers                   int
		duration                  time.Duration
		json, inProcess, compare  bool
		compareRouters            bool
	}
	c := &cobra.Command{
		Use:   "router",
		Short: "The router's peak rate and CPU efficiency E, latency at half and 90% load, end to end with meters",
		Long: `Set up the whole system in a temporary directory (SMKI and DCCKI ceremonies,
a supplier, --meters reference meters, the router on a loopback mutual-TLS
listener) and measure, using every core: raw ECDSA P-256 verifications and
raw ECDH P-256 key agreements per second, before and after the peak, and
the CPU time one of each costs (the floor: what a critical command to a
meter whose Z is not cached cannot do without); the
router's peak rate for signed critical commands put through the whole
pipeline to a recording transport, the router's and PostgreSQL's CPU per
command, and the CPU efficiency E = (verification + ECDH CPU) / (router +
PostgreSQL CPU per command), with the old ratio to verification beside it;
the machine's CPU use at the peak; p50/p99 latency open loop at half and at
90% of the peak rate; and the end-to-end rate with the meters executing and
answering, with the CPU split between router, meters and client. After the
run the system stops and the whole audit chain is verified. Each figure with
a target (E at least 0.5 on SQLite, 0.3 on PostgreSQL; CPU use at least
0.9; p99 under 20 ms at half load and 50 ms at 90%; the audit chain
verifies) is marked pass or FAIL, in the table and in --json.

--preload N fills the fresh store before the first measurement with N
accepted-and-responded commands (with their deliveries and counters), N
hash-chained audit entries, --preload-devices registered devices and
--preload-users DCC users with their certificates, and reports how long that
took; every phase then runs on the pre-loaded store. Alone, it records the
pre-loaded run. With --compare, the bench runs twice on systems of their own,
first on a fresh store, then pre-loaded, prints both reports and the two
side by side, and checks the pre-loaded peak rate against the fresh one
(target: at least 0.9 of it); --json then prints {fresh, preloaded,
rateRatio, check}.

--routers N (PostgreSQL only) runs N router instances on the one store: the
bench process's and N-1 processes of their own (this binary, "bench
router-instance"), each with its own store handle and pool, group admitter,
forwarder, anomaly detector and recording transport, on a loopback
mutual-TLS listener of its own, as N "serve router" processes would run; the
client spreads its connections evenly over them. Rates are then the
aggregate, the server CPU that of every router process, and every command
must still be accepted once and forwarded once across all of them. With
--compare-routers the bench runs twice, each on a fresh schema: one router,
then N; it prints both reports and the two side by side, and checks the
aggregate peak rate against one router's (target: at least 0.9 of it);
--json then prints {one, many, routers, rateRatio, check}.

The client runs as a child process (this binary, "bench router-client") so
that its CPU time is measured apart. --store postgres://... runs on a fresh
schema of that database, dropped at the end; the default is SQLite. The
command fails when a phase is incomplete or the audit chain does not verify
(the report is printed first in the latter case).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case f.meters < 1:
				return fmt.Errorf("--meters %d: want at least 1", f.meters)
			case f.commands < 1:
				return fmt.Errorf("--commands %d: want at least 1", f.commands)
			case f.conc < 1:
				return fmt.Errorf("--concurrency %d: want at least 1", f.conc)
			case f.preload < 0 || f.pDevices < 1 || f.pUsers < 1:
				return fmt.Errorf("--preload %d, --preload-devices %d, --preload-users %d: want a preload of at least 0 and at least 1 device and user", f.preload, f.pDevices, f.pUsers)
			case f.compare && f.preload == 0:
				return fmt.Errorf("--compare needs --preload")
			case f.routers < 1:
				return fmt.Errorf("--routers %d: want at least 1", f.routers)
			case f.routers > 1 && !strings.HasPrefix(f.store, "postgres://") && !strings.HasPrefix(f.store, "postgresql://"):
				return fmt.Errorf("--routers %d needs a PostgreSQL --store (postgres://...): the embedded SQLite store serves one router process", f.routers)
			case f.compareRouters && f.routers < 2:
				return fmt.Errorf("--compare-routers needs --routers 2 or more")
			case f.compareRouters && f.compare:
				return fmt.Errorf("--compare and --compare-routers each run the bench twice: give one of them")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg := bench.Config{Store: f.store, DataDir: f.data, Meters: f.meters, Commands: f.commands, Duration: f.duration,
				Concurrency: f.conc, Preload: f.preload, PreloadDevices: f.pDevices, PreloadUsers: f.pUsers, Routers: f.routers}
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
			if f.routers > 1 {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("finding this binary to run the router instances: %w", err)
				}
				cfg.Instance = bench.Exec{Path: self, Args: []string{"bench", "router-instance"}}
			}
			if f.cpuprofile != "" {
				pf, err := os.OpenFile(f.cpuprofile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pf.Close()
				cfg.CPUProfile = pf
			}
			type report interface{ WriteTable(io.Writer) error }
			var rep report
			var err error
			switch {
			case f.compare:
				c, cerr := bench.Compare(ctx, cfg)
				err = cerr
				if c != nil && c.Fresh != nil && c.Preloaded != nil {
					rep = c
				}
			case f.compareRouters:
				c, cerr := bench.CompareRouters(ctx, cfg)
				err = cerr
				if c != nil && c.One != nil && c.Many != nil {
					rep = c
				}
			default:
				r, rerr := bench.Run(ctx, cfg)
				err = rerr
				if r != nil {
					rep = r
				}
			}
			// A run whose audit chain did not verify still has its
			// figures: print them, then fail.
			if rep == nil {
				return err
			}
			if f.json {
				if perr := printJSON(cmd.OutOrStdout(), rep); perr != nil {
					return perr
				}
			} else if werr := rep.WriteTable(cmd.OutOrStdout()); werr != nil {
				return werr
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.store, "store", "", "store DSN: postgres://... (a fresh schema is made and dropped); default SQLite in the data directory")
	fl.StringVar(&f.data, "data", "", "data directory to use (must be empty); default a temporary directory, removed at the end")
	fl.IntVar(&f.meters, "meters", bench.DefaultMeters, "number of reference meters")
	fl.IntVar(&f.commands, "commands", bench.DefaultCommands, "commands in the peak phase and in the end-to-end phase")
	fl.DurationVar(&f.duration, "duration", bench.DefaultDuration, "length of each raw measurement (verification, ECDH; before and after the peak) and of the half- and 90%-load phases")
	fl.IntVar(&f.conc, "concurrency", bench.DefaultConcurrency, "client connections (requests in flight)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.StringVar(&f.cpuprofile, "cpuprofile", "", "write the bench process's CPU profile of the peak phase to this file (with --routers, of its router instance alone)")
	fl.BoolVar(&f.inProcess, "in-process-client", false, "run the client in this process (its CPU time then cannot be measured apart)")
	fl.IntVar(&f.preload, "preload", 0, "pre-load the store with this many commands and audit entries before measuring (e.g. 1000000)")
	fl.IntVar(&f.pDevices, "preload-devices", bench.DefaultPreloadDevices, "devices registered by --preload")
	fl.IntVar(&f.pUsers, "preload-users", bench.DefaultPreloadUsers, "DCC users, with their certificates, loaded by --preload")
	fl.BoolVar(&f.compare, "compare", false, "with --preload: run on a fresh store first, then pre-loaded, and compare the peak rates")
	fl.IntVar(&f.routers, "routers", 1, "router instances on the one store, each but the first in a process of its own (more than 1: PostgreSQL --store only)")
	fl.BoolVar(&f.compareRouters, "compare-routers", false, "with --routers N: run with one router first, then N, each on a fresh schema, and compare the peak rates")
	return c
}

// newBenchRouterInstanceCmd is a router instance "bench router --routers N"
// starts: its spec as JSON on standard input, then requests and answers.
func newBenchRouterInstanceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "router-instance",
		Short:  "A router instance of bench router --routers (a spec and requests on stdin, answers on stdout)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.ServeInstance(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
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
