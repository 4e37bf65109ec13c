package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/repository"
)

// operatorsEnv names the environment variable that may hold the operators
// document (the same JSON as --operators, token digests only).
const operatorsEnv = "METERTRUST_REPOSITORY_OPERATORS"

// newServeRepositoryCmd is "metertrust serve repository": the SMKI
// certificate repository (package repository) over HTTP. It is
// internet-facing and loads no key: revocation is "serve ca"'s.
func newServeRepositoryCmd() *cobra.Command {
	var f struct {
		data, dsn, listen, operators, config, baseURL, logLevel, metricsListen string
		noOCSP, noRevoke                                                       bool
	}
	c := &cobra.Command{
		Use:   "repository",
		Short: "Run the SMKI certificate repository: search, CA certificates, CRLs, OCSP",
		Long: `Run the repository service: open reads of certificates (by EUI-64, role, key
usage, kind, serial), CA certificates, the latest CRLs and OCSP; one write,
publishing a certificate issued elsewhere, for operators with a bearer token.
The API is described in docs/api/repository.yaml. The repository is meant to
face the internet and loads no private key at all.

Operators come from --operators FILE or the METERTRUST_REPOSITORY_OPERATORS
environment variable, both the credentials file every service reads
(metertrust operator token prints its entries):
  {"operators": [{"name": "alice", "token_sha256": "<hex>", "roles": ["publish"]}]}
holding only the SHA-256 of each token (printf %s "$TOKEN" | sha256sum); the
role publish allows the repository's write. The role revoke is still read,
so existing files stay valid, but grants nothing here; other roles are
ignored. The repository's former spelling ("tokenSHA256", "permissions") is
still read until the next release, with a warning. Without operators every
write is refused.

--config FILE reads repository.Config from a strict JSON file
(deploy/examples/repository.json); --listen, --metrics-listen and --base-url given on the
command line override it.

OCSP is answered from the store, with the responses the CA signed ahead of
time (at issuance, at revocation, and on its refresh schedule; see
docs/operations.md). A certificate with no stored response gets
"unauthorized", an expired one "tryLater". With --no-ocsp the OCSP routes
answer 503.

Revocation is not done here: it is done by the CA service, "metertrust
serve ca" (POST /v1/revocations there, over mutual TLS with an operator
token holding the revoke role), which signs the "revoked" OCSP response into
the store this service reads at once. OCSP responses and CRLs are re-signed
before they expire by serve ca's refresher, or else by "metertrust ca ocsp
refresh" (and "metertrust ca crl") run from a timer where the CA keys are;
without either, OCSP answers turn to "tryLater" a day after issuance.
--no-revoke is deprecated and does nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log, err := serving.Logger(f.logLevel)
			if err != nil {
				return err
			}

			cfg := repository.Config{}
			if f.config != "" {
				if cfg, err = repository.LoadConfig(f.config); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("listen") || cfg.Listen == "" {
				cfg.Listen = f.listen
			}
			if cmd.Flags().Changed("metrics-listen") || cfg.MetricsListen == "" {
				cfg.MetricsListen = f.metricsListen
			}
			if f.baseURL != "" {
				cfg.BaseURL = f.baseURL
			}
			switch {
			case f.operators != "":
				if cfg.Operators, err = repository.LoadOperators(f.operators); err != nil {
					return err
				}
			case os.Getenv(operatorsEnv) != "":
				if cfg.Operators, err = repository.ParseOperators([]byte(os.Getenv(operatorsEnv))); err != nil {
					return fmt.Errorf("%s: %w", operatorsEnv, err)
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if f.data == "" && f.dsn == "" {
				return errors.New("--data DIR or --store DSN is required")
			}

			db, err := openStore(ctx, f.data, f.dsn)
			if err != nil {
				return err
			}
			defer db.Close()
			reg, mln, err := openMetrics(cfg.MetricsListen, db)
			if err != nil {
				return err
			}
			defer closeListener(mln)
			rm, err := repository.NewMetrics(reg)
			if err != nil {
				return err
			}
			deps := repository.Deps{Metrics: rm, Certs: db.SMKI(), CAs: db.SMKI(), CRLs: db.SMKI(), Audit: db, Publisher: db.SMKI(), Logger: log}
			if f.noOCSP {
				log.Warn("OCSP disabled (--no-ocsp): the OCSP routes answer 503")
			} else {
				deps.OCSP = repository.NewStoredOCSP(db.SMKI(), log, nil)
			}
			serving.KeysLoaded(ctx, log, "repository")
			if len(cfg.Operators) == 0 {
				log.Warn("no operators configured: every write is refused")
			}

			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository listening on http://%s\n", ln.Addr())
			srv := repository.New(cfg, deps)
			return serving.RunAll(ctx, func(ctx context.Context) error { return srv.Serve(ctx, ln) },
				func(ctx context.Context) error { return serving.ServeMetrics(ctx, mln, reg, log) })
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "data directory holding the store (no key is read from it)")
	fl.StringVar(&f.dsn, "store", "", "store DSN (default: from DATA/config.json, else DATA/metertrust.db)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8444", "address to listen on, host:port")
	fl.StringVar(&f.operators, "operators", "", "operators JSON file (default: $"+operatorsEnv+")")
	fl.StringVar(&f.config, "config", "", "repository JSON config file (strict; see repository.Config)")
	fl.StringVar(&f.metricsListen, "metrics-listen", serving.DefaultRepositoryMetrics, `address of the plain-HTTP Prometheus listener (GET /metrics); "off" for none`)
	fl.StringVar(&f.baseURL, "base-url", "", "absolute URL prefix for links in responses")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.noOCSP, "no-ocsp", false, "do not answer OCSP: the OCSP routes answer 503")
	fl.BoolVar(&f.noRevoke, "no-revoke", false, "deprecated, does nothing: the repository never loads a key")
	_ = fl.MarkDeprecated("no-revoke", "revocation moved to metertrust serve ca; the repository never loads a key")
	return c
}
