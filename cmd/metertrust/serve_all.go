package main

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/store"
)

// newServeAllCmd is "metertrust serve all": every service in one process
// (package inproc), for trying the APIs by hand.
func newServeAllCmd() *cobra.Command {
	var f struct {
		data, dsn, kms, router, operator, repository, caAddr, logLevel, metricsListen string
		meters                                                                        int
	}
	c := &cobra.Command{
		Use:   "all",
		Short: "Run every service in one process: router, operator API, certificate repository, CA service, meters",
		Long: `Run every metertrust service in one process, for trying the APIs by hand.
An empty (or new) --data directory gets the SMKI ceremony, the parties'
certificates and keys, --meters meters and an operator credential; a directory
set up before is reused as it is. It prints the URLs, the DCCKI client
certificate and key files, the operator token file and curl commands that
work, then serves until interrupted.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.data == "" {
				return errors.New("--data DIR is required")
			}
			log, err := serving.Logger(f.logLevel)
			if err != nil {
				return err
			}
			// DATA/config.json, as "ca init" writes it, names the key
			// manager and the store when the flags do not.
			recorded, found, err := readCAConfig(f.data)
			if err != nil {
				return err
			}
			if f.kms == "" {
				f.kms = recorded.KMS
			}
			if f.dsn == "" {
				f.dsn = recorded.Store
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// One registry for every service of the process.
			reg, mln, err := openMetrics(f.metricsListen, nil)
			if err != nil {
				return err
			}
			defer closeListener(mln)
			sys, err := inproc.Start(ctx, inproc.Config{DataDir: f.data, StoreDSN: f.dsn, KMS: f.kms, Meters: f.meters,
				RouterAddr: f.router, OperatorAddr: f.operator, RepositoryAddr: f.repository, CAAddr: f.caAddr, Logger: log, Registry: reg})
			if err != nil {
				return err
			}
			if !found {
				// So that the CA, audit and router commands find the same
				// key manager and store in DATA.
				if err := writeCAConfig(f.data, caConfig{KMS: cmp.Or(f.kms, "softkms"), Store: f.dsn}); err != nil {
					sys.Close()
					return err
				}
			}
			serving.KeysLoaded(ctx, log, "all", "the CAs' keys ("+custody.Redacted(cmp.Or(f.kms, "softkms"))+")",
				"the access control broker's key-agreement key", "the DCCKI TLS server key",
				"the parties' and meters' own keys (one process for trying the APIs: never a deployment)")
			out := cmd.OutOrStdout()
			if sys.Reused {
				fmt.Fprintf(out, "metertrust: reusing %s\n\n", sys.Dir)
			} else {
				fmt.Fprintf(out, "metertrust: created %s (SMKI ceremony, parties, %d meters, operator credential)\n\n", sys.Dir, len(sys.Meters))
			}
			if err := sys.WriteGuide(out); err != nil {
				sys.Close()
				return err
			}
			if mln != nil {
				fmt.Fprintf(out, "\nMetrics: http://%s/metrics\n", mln.Addr())
			}
			fmt.Fprintln(out, "\nServing; interrupt to stop.")
			merr := serving.ServeMetrics(ctx, mln, reg, log)
			return errors.Join(merr, sys.Close())
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "data directory: created and set up when empty, reused otherwise (required)")
	fl.StringVar(&f.dsn, "store", "", "store DSN (postgres://...); default the embedded store in --data")
	fl.StringVar(&f.kms, "kms", "", "CA key manager URI; default key files in --data/keys")
	fl.IntVar(&f.meters, "meters", 10, "meters to issue when setting up a new data directory")
	fl.StringVar(&f.router, "router", "127.0.0.1:8443", "router HTTPS (mutual TLS) listen address")
	fl.StringVar(&f.operator, "operator", "127.0.0.1:8081", "operator API listen address")
	fl.StringVar(&f.repository, "repository", "127.0.0.1:8082", "certificate repository listen address")
	fl.StringVar(&f.caAddr, "ca", "127.0.0.1:8446", "CA service HTTPS (mutual TLS) listen address: revocation, CRLs, issuance")
	fl.StringVar(&f.metricsListen, "metrics-listen", serving.DefaultAllMetrics, `address of the plain-HTTP Prometheus listener (GET /metrics) of every service; "off" for none`)
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level of the services (JSON on stderr): debug, info, warn or error")
	return c
}

// openMetrics makes a service's metrics registry (Go runtime and process
// collectors included), instruments db with it when db is not nil, and
// opens the metrics listener on addr (nil when addr turns it off). The
// caller closes the listener when it does not get to serve it.
func openMetrics(addr string, db *store.DB) (*prometheus.Registry, net.Listener, error) {
	reg := serving.NewRegistry()
	if db != nil {
		if err := db.Instrument(reg); err != nil {
			return nil, nil, fmt.Errorf("store metrics: %w", err)
		}
	}
	ln, err := serving.ListenMetrics(addr)
	if err != nil {
		return nil, nil, err
	}
	return reg, ln, nil
}

// closeListener closes ln if it is not nil.
func closeListener(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
}
