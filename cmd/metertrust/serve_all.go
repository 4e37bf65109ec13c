package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/internal/serving"
)

// newServeAllCmd is "metertrust serve all": every service in one process
// (package inproc), for trying the APIs by hand.
func newServeAllCmd() *cobra.Command {
	var f struct {
		data, dsn, kms, router, operator, repository, caAddr, logLevel string
		meters                                                         int
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
			sys, err := inproc.Start(ctx, inproc.Config{DataDir: f.data, StoreDSN: f.dsn, KMS: f.kms, Meters: f.meters,
				RouterAddr: f.router, OperatorAddr: f.operator, RepositoryAddr: f.repository, CAAddr: f.caAddr, Logger: log})
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
			fmt.Fprintln(out, "\nServing; interrupt to stop.")
			<-ctx.Done()
			return sys.Close()
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
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level of the services (JSON on stderr): debug, info, warn or error")
	return c
}
