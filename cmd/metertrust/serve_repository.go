package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/repository"
)

// operatorsEnv names the environment variable that may hold the operators
// document (the same JSON as --operators, token digests only).
const operatorsEnv = "METERTRUST_REPOSITORY_OPERATORS"

// newServeRepositoryCmd is "metertrust serve repository": the SMKI
// certificate repository (package repository) over HTTP.
func newServeRepositoryCmd() *cobra.Command {
	var f struct {
		data, dsn, listen, operators, config, kms, baseURL, logLevel string
		noOCSP, noRevoke                                             bool
	}
	c := &cobra.Command{
		Use:   "repository",
		Short: "Run the SMKI certificate repository: search, CA certificates, CRLs, OCSP",
		Long: `Run the repository service: open reads of certificates (by EUI-64, role, key
usage, kind, serial), CA certificates, the latest CRLs and OCSP; writes
(publishing a certificate issued elsewhere, revoking one) for operators with
a bearer token. The API is described in docs/api/repository.yaml.

Operators come from --operators FILE or the METERTRUST_REPOSITORY_OPERATORS
environment variable, both the credentials file every service reads
(metertrust operator token prints its entries):
  {"operators": [{"name": "alice", "token_sha256": "<hex>", "roles": ["publish", "revoke"]}]}
holding only the SHA-256 of each token (printf %s "$TOKEN" | sha256sum); the
roles publish and revoke allow the repository's writes, other roles are
ignored here. The repository's former spelling ("tokenSHA256",
"permissions") is still read until the next release, with a warning.
Without operators every write is refused.

--config FILE reads repository.Config from a strict JSON file
(deploy/examples/repository.json); --listen and --base-url given on the
command line override it.

OCSP is answered from the store, with the responses the CA signed ahead of
time (at issuance, at revocation, and on its refresh schedule; see
docs/operations.md): no key is loaded for OCSP. A certificate with no stored
response gets "unauthorized", an expired one "tryLater". With --no-ocsp the
OCSP routes answer 503.

Revocation (POST /v1/revocations) is done by the CA in --data, whose key
manager is read from DATA/config.json (or --kms): its online keys (the OCA
and open device CA batches) are loaded to sign the "revoked" OCSP response;
the root key is never loaded; holding them, the repository also re-signs the
OCSP responses before they expire (hourly). Without a CA there, or with
--no-revoke, no key is loaded at all and revocation is disabled: then run
"metertrust ca ocsp refresh" from a timer where the CA keys are, at least
every twelve hours, or OCSP answers turn to "tryLater" a day after issuance.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log, err := repositoryLogger(f.logLevel)
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
			deps := repository.Deps{Certs: db.SMKI(), CAs: db.SMKI(), CRLs: db.SMKI(), Audit: db, Publisher: db.SMKI(), Logger: log}
			if f.noOCSP {
				log.Warn("OCSP disabled (--no-ocsp): the OCSP routes answer 503")
			} else {
				deps.OCSP = repository.NewStoredOCSP(db.SMKI(), log, nil)
			}

			kms := f.kms
			if !f.noRevoke {
				if kms == "" && f.data != "" {
					recorded, found, err := readCAConfig(f.data)
					if err != nil {
						return err
					}
					if found {
						kms = recorded.KMS
						if kms == "" {
							kms = "softkms"
						}
					}
				}
				if kms != "" {
					keys, err := custody.Open(ctx, kms, f.data, rand.Reader)
					if err != nil {
						return err
					}
					defer keys.Close()
					auth, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: log, Actor: "repository"})
					if err != nil {
						return err
					}
					deps.Revoker = auth
					// Holding the online CA keys anyway, keep their OCSP
					// responses fresh (with --no-revoke, "ca ocsp refresh"
					// from a timer must).
					margin := auth.OCSPValidity() / 2
					go auth.RunOCSPRefresher(ctx, min(time.Hour, margin/2), margin) //nolint:errcheck // valid arguments; logs its own failures
				}
			}
			if deps.Revoker == nil {
				log.Warn("no CA key manager: revocation is disabled")
				logKeysLoaded(ctx, log, "repository")
			} else {
				logKeysLoaded(ctx, log, "repository", "the online CAs' keys, for revocation only ("+custody.Redacted(kms)+"; never the root's)")
			}
			if len(cfg.Operators) == 0 {
				log.Warn("no operators configured: every write is refused")
			}

			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repository listening on http://%s\n", ln.Addr())
			return repository.New(cfg, deps).Serve(ctx, ln)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "data directory (store, CA config.json and softkms keys)")
	fl.StringVar(&f.dsn, "store", "", "store DSN (default: from DATA/config.json, else DATA/metertrust.db)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8444", "address to listen on, host:port")
	fl.StringVar(&f.operators, "operators", "", "operators JSON file (default: $"+operatorsEnv+")")
	fl.StringVar(&f.config, "config", "", "repository JSON config file (strict; see repository.Config)")
	fl.StringVar(&f.kms, "kms", "", "key manager URI of the CA keys revocation signs with (default: from DATA/config.json)")
	fl.StringVar(&f.baseURL, "base-url", "", "absolute URL prefix for links in responses")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.noOCSP, "no-ocsp", false, "do not answer OCSP: the OCSP routes answer 503")
	fl.BoolVar(&f.noRevoke, "no-revoke", false, "do not load any CA key: revocation is disabled (OCSP needs no key)")
	return c
}

// repositoryLogger is the JSON service logger on stderr; each component
// (repository, ca) derives its own from it.
func repositoryLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
