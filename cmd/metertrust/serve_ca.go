package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/dccki"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/ra"
)

// newServeCACmd is "metertrust serve ca": the CA service (package ra), the
// one process holding the online issuing keys.
func newServeCACmd() *cobra.Command { return newServeCACmdWith(serveCA) }

// newServeCACmdWith is "serve ca" running run with the validated
// configuration (tests give a run that only keeps it).
func newServeCACmdWith(run func(context.Context, ra.ServeConfig) error) *cobra.Command {
	var f ra.ServeConfig
	var config string
	c := &cobra.Command{
		Use:   "ca",
		Short: "Run the CA service: revocation, CRLs and issuance over mutual TLS, with the online CA keys",
		Long: `Run the CA service, internal and the only process that signs with the SMKI's
online keys: the organisation CA, the open device CA batches and the DCCKI
TLS CA. A root key is never loaded: roots sign only in ceremonies
("metertrust ca ..." on the offline machine).

Callers present a DCCKI client certificate (chaining to --client-ca, by
default the store's DCCKI root and TLS CA, and not revoked) and an operator's
bearer token (--operators; metertrust operator token): the role revoke allows
POST /v1/revocations and POST /v1/crls/{ca}, the role issue POST
/v1/certificates/device and /v1/certificates/organisation, and proposing,
approving (another operator) or rejecting the opening of a device CA batch
(POST /v1/proposals; the offline ceremony "ca batch open --proposal ID" then
opens it, decision 023). Every request,
refusal and outcome is audited. The API is described in docs/api/ca.yaml.

A revocation signs the certificate's "revoked" OCSP response before it is
stored, then its issuer's CRL at once. Every --refresh (an hour by default)
the service re-signs the OCSP responses and CRLs within half their validity
of expiring, which the repository (holding no key) serves from the store.

The key manager comes from --kms or DATA/config.json (written by ca init),
the store from --store or DATA/config.json. --config FILE reads every
setting from a strict JSON file (ra.ServeConfig; deploy/examples/ca.json);
flags given on the command line override it, and relative paths in the file
are resolved against the file's directory.`,
		Args: cobra.NoArgs,
		RunE: serveRunE(&f, &config, ra.LoadServeConfig, nil, run),
	}
	fl := c.Flags()
	fl.StringVar(&config, "config", "", "JSON config file (strict; see ra.ServeConfig); flags given override it")
	fl.StringVar(&f.Data, "data", "", "the CA's data directory (config.json from ca init, store, softkms keys)")
	fl.StringVar(&f.Store, "store", "", "store DSN (postgres://... or a SQLite path); default from DATA/config.json, else the store in --data")
	fl.StringVar(&f.KMS, "kms", "", "key manager URI of the CA keys; default from DATA/config.json")
	fl.StringVar(&f.Listen, "listen", ra.DefaultListen, "address to serve HTTPS (mutual TLS) on")
	fl.StringVar(&f.TLSCert, "tls-cert", "", "server certificate chain (PEM), e.g. from ca issue tls-server")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.ClientCA, "client-ca", "", "CA certificates (PEM) client certificates must chain to; default the store's DCCKI root and TLS CA")
	fl.StringVar(&f.Operators, "operators", "", "operator credentials file (metertrust operator token); roles revoke and issue")
	fl.StringVar(&f.Refresh, "refresh", ra.DefaultRefreshInterval.String(), "how often to re-sign OCSP responses and CRLs close to expiry")
	fl.StringVar(&f.LogLevel, "log-level", ra.DefaultLogLevel, "debug, info, warn or error")
	fl.StringVar(&f.ProposalTTL, "proposal-ttl", "", "how long a batch-open proposal waits for a second operator's approval (default 24h)")
	fl.StringVar(&f.MetricsListen, "metrics-listen", ra.DefaultMetricsListen, `address of the plain-HTTP Prometheus listener (GET /metrics); "off" for none`)
	return c
}

// serveCA runs the CA service with a validated configuration until ctx
// ends. It loads the online CAs' keys (never a root's) and its TLS server
// key, and says so.
func serveCA(ctx context.Context, cfg ra.ServeConfig) error {
	log, err := serving.Logger(cfg.LogLevel)
	if err != nil {
		return err
	}
	creds, err := operator.Load(cfg.Operators)
	if err != nil {
		return fmt.Errorf("--operators: %w", err)
	}
	recorded, _, err := readCAConfig(cfg.Data)
	if err != nil {
		return err
	}
	kms := cmp.Or(cfg.KMS, recorded.KMS, "softkms")
	db, err := openExistingStore(ctx, cfg.Data, cfg.Store)
	if err != nil {
		return err
	}
	defer db.Close()
	serverCert, err := dccki.ServerCertificate(ctx, cfg.TLSCert, cfg.TLSKey, db.SMKI())
	if err != nil {
		return err
	}
	clientCAs, err := dccki.ClientCAs(ctx, cfg.ClientCA, db.SMKI())
	if err != nil {
		return err
	}
	reg, mln, err := openMetrics(cfg.MetricsListen, db)
	if err != nil {
		return err
	}
	defer closeListener(mln)
	cam, err := ca.NewMetrics(reg)
	if err != nil {
		return err
	}
	hm, err := apiserver.NewHTTPMetrics(reg, "ca")
	if err != nil {
		return err
	}
	keys, err := custody.Open(ctx, kms, cfg.Data, rand.Reader)
	if err != nil {
		return err
	}
	defer keys.Close()
	auth, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: log, Actor: "ca", Metrics: cam})
	if err != nil {
		return err
	}
	loaded, err := auth.LoadOnlineKeys(ctx)
	if err != nil {
		log.WarnContext(ctx, "some online CA keys could not be loaded: their requests are answered 503 (no key)", "err", err)
	}
	held := []string{"ca-tls-server " + cfg.TLSKey}
	for _, k := range loaded {
		held = append(held, k.Purpose+" "+k.CA+" "+custody.Redacted(k.KeyURI))
	}
	serving.KeysLoaded(ctx, log, "ca", held...)
	srv, err := ra.New(ra.Deps{Authority: auth, Store: db.SMKI(), Registry: db.SMKI(), Audit: db, Credentials: creds, ClientIssuer: ca.NameDCCKITLS,
		Proposals: db.Proposals(), ProposalTTL: cfg.ProposalTTLDuration(), Metrics: hm, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	tc := ra.TLSConfig(serverCert, clientCAs)
	return serving.RunAll(ctx,
		func(ctx context.Context) error { return srv.Serve(ctx, ln, tc) },
		func(ctx context.Context) error { return auth.RunRefresher(ctx, cfg.RefreshInterval()) },
		func(ctx context.Context) error { return serving.ServeMetrics(ctx, mln, reg, log) })
}
