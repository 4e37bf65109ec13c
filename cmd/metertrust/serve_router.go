package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/dccki"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// newServeRouterCmd is "metertrust serve router": the DCC-like router
// service (package router) on mutual TLS, forwarding to a communications
// service provider's HTTP endpoint.
func newServeRouterCmd() *cobra.Command { return newServeRouterCmdWith(serveRouter) }

// newServeRouterCmdWith is "serve router" running run with the validated
// configuration (tests give a run that only keeps it).
func newServeRouterCmdWith(run func(context.Context, router.ServeConfig) error) *cobra.Command {
	var f router.ServeConfig
	var config string
	c := &cobra.Command{
		Use:   "router",
		Short: "Run the router: signed GBCS commands in, checked, counted, MAC'd, forwarded",
		Long: `Run the router service. Callers authenticate with DCCKI client certificates
(metertrust ca tls-client); the server presents --tls-cert, a DCCKI server
certificate chain. Commands are forwarded to the communications service
provider endpoint --csp (POST {csp}/v1/devices/{EUI}/commands).

--operator-listen with --operators also serves the operator API in this
process, beside the key: the single-process option, where a release is
forwarded at once and answered with the router's receipt. metertrust serve
operator runs it in a process of its own without the key; this router's
release sweeper then forwards what it releases.

--config FILE reads every setting from a strict JSON file (router.ServeConfig;
deploy/examples/router.json); flags given on the command line override it, and
relative paths in the file are resolved against the file's directory.

The access control broker's key-agreement key (--acb-key) is a PEM EC
private key file (PKCS#8 or SEC 1), softkms:path=FILE (relative paths are
resolved against --data), or a P-256 key with CKA_DERIVE in a PKCS#11 token:
pkcs11:module-path=LIB;token=LABEL;object=NAME?pin-value=PIN (or id=...,
pin-source=FILE); the key then never leaves the token, and the router derives
each device's Z there (CKM_ECDH1_DERIVE). "metertrust keys new --usage ka
--key pkcs11:..." makes such a key in the token, with its certificate request.`,
		Args: cobra.NoArgs,
		RunE: serveRunE(&f, &config, router.LoadServeConfig, nil, run),
	}
	fl := c.Flags()
	fl.StringVar(&config, "config", "", "JSON config file (strict; see router.ServeConfig); flags given override it")
	fl.StringVar(&f.Data, "data", "", "data directory (SQLite store, key files)")
	fl.StringVar(&f.Store, "store", "", "store DSN (postgres://... or a SQLite path); default the store in --data")
	fl.StringVar(&f.Listen, "listen", router.DefaultListen, "address to serve HTTPS on")
	fl.StringVar(&f.ACBKey, "acb-key", "", "the access control broker's key-agreement key: PEM file or softkms:path=FILE")
	fl.StringVar(&f.ACBEUI, "acb-eui", "", "the access control broker's EUI-64")
	fl.StringVar(&f.TCoSKey, "tcos-key", "", "the transitional change-of-supplier party's digital-signing key: PEM file, softkms:path=FILE or PKCS#11 URI; optional")
	fl.StringVar(&f.TCoSEUI, "tcos-eui", "", "the transitional change-of-supplier party's EUI-64; goes with --tcos-key")
	fl.StringVar(&f.TLSCert, "tls-cert", "", "DCCKI server certificate chain (PEM)")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.ClientCA, "client-ca", "", "DCCKI root certificate (PEM); default the store's dccki-root")
	fl.StringVar(&f.CSP, "csp", "", "communications service provider endpoint (https://...)")
	fl.StringVar(&f.CSPCA, "csp-ca", "", "CA certificates (PEM) for the --csp endpoint; default the system pool")
	fl.StringVar(&f.CSPCert, "csp-cert", "", "client certificate chain (PEM) for the --csp endpoint")
	fl.StringVar(&f.CSPKey, "csp-key", "", "its private key (PEM)")
	fl.StringVar(&f.LogLevel, "log-level", router.DefaultLogLevel, "debug, info, warn or error")
	fl.StringVar(&f.OperatorListen, "operator-listen", "", "address to serve the operator API on (HTTPS, bearer tokens); off when empty")
	fl.StringVar(&f.Operators, "operators", "", "operator credentials file (metertrust operator token)")
	fl.StringVar(&f.MetricsListen, "metrics-listen", router.DefaultMetricsListen, `address of the plain-HTTP Prometheus listener (GET /metrics); "off" for none`)
	return c
}

// serveRouter runs the router (and the operator API when configured) with
// a validated configuration until ctx ends.
func serveRouter(ctx context.Context, f router.ServeConfig) error {
	log, err := serving.Logger(f.LogLevel)
	if err != nil {
		return err
	}
	var creds *operator.Credentials
	if f.Operators != "" {
		if creds, err = operator.Load(f.Operators); err != nil {
			return fmt.Errorf("--operators: %w", err)
		}
	}
	acb, err := smki.ParseEUI(f.ACBEUI)
	if err != nil {
		return fmt.Errorf("--acb-eui: %w", err)
	}
	acbKey, closeKey, err := loadACBKey(f.Data, f.ACBKey)
	if err != nil {
		return err
	}
	defer closeKey()
	var tcos smki.EUI
	var tcosKey crypto.Signer
	if f.TCoSKey != "" {
		if tcos, err = smki.ParseEUI(f.TCoSEUI); err != nil {
			return fmt.Errorf("--tcos-eui: %w", err)
		}
		k, closeTCoS, err := custody.OpenKey(f.TCoSKey, f.Data)
		if err != nil {
			return fmt.Errorf("--tcos-key: %w", err)
		}
		defer closeTCoS()
		tcosKey = k
	}
	db, err := openStore(ctx, f.Data, f.Store)
	if err != nil {
		return err
	}
	defer db.Close()
	serverCert, err := dccki.ServerCertificate(ctx, f.TLSCert, f.TLSKey, db.SMKI())
	if err != nil {
		return err
	}
	loaded := []string{"acb-key-agreement " + custody.Redacted(f.ACBKey), "dccki-tls-server " + f.TLSKey}
	if f.TCoSKey != "" {
		loaded = append(loaded, "tcos-digital-signing "+custody.Redacted(f.TCoSKey))
	}
	reg, mln, err := openMetrics(f.MetricsListen, db)
	if err != nil {
		return err
	}
	defer closeListener(mln)
	serving.KeysLoaded(ctx, log, "router", loaded...)
	clientCAs, err := dccki.ClientCAs(ctx, f.ClientCA, db.SMKI())
	if err != nil {
		return err
	}
	transport, err := router.NewCSPTransport(f.CSP, f.CSPCA, f.CSPCert, f.CSPKey)
	if err != nil {
		return err
	}
	as := db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: log})
	if err != nil {
		return err
	}
	desk, err := f.CredentialChange.Desk()
	if err != nil {
		return err
	}
	svc, err := router.NewService(router.ServiceConfig{ChangeDesk: desk, DB: db, Detector: det, ACB: acb, ACBKey: acbKey, TCoS: tcos, TCoSKey: tcosKey, Transport: transport,
		AlertSource: "csp " + f.CSP, Registry: reg, ServerCertificate: serverCert, ClientCAs: clientCAs, Identify: ca.TLSUser, DCCKIIssuer: ca.NameDCCKITLS, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return err
	}
	metrics := func(ctx context.Context) error { return serving.ServeMetrics(ctx, mln, reg, log) }
	if creds == nil {
		return serving.RunAll(ctx, func(ctx context.Context) error { return svc.Run(ctx, ln) }, metrics)
	}
	// The operator API: bearer tokens over TLS with the router's server
	// certificate, on a listener of its own (operators hold no DCCKI
	// client certificate).
	opLn, err := net.Listen("tcp", f.OperatorListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--operator-listen: %w", err)
	}
	opm, err := apiserver.NewHTTPMetrics(reg, "operator")
	if err != nil {
		ln.Close()
		opLn.Close()
		return err
	}
	opLn = tls.NewListener(opLn, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}})
	op := operator.New(operator.Config{}, operator.Deps{Credentials: creds, Quarantine: det, Thresholds: det, Usage: det,
		Alerts: det, Releaser: operator.Forwarder(svc.Releases.Forward), Audit: db, Proposals: db.Proposals(),
		Logger: log, Metrics: opm})
	return serving.RunAll(ctx, func(ctx context.Context) error { return svc.Run(ctx, ln) },
		func(ctx context.Context) error { return op.Serve(ctx, opLn) }, metrics)
}

// loadACBKey opens the ACB key-agreement key named by uri (a key file or
// a PKCS#11 URI, see custody.OpenAgreement); the caller calls closeKey when
// done with it.
func loadACBKey(dataDir, uri string) (key router.KeyAgreement, closeKey func(), err error) {
	k, closeKey, err := custody.OpenAgreement(uri, dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--acb-key: %w", err)
	}
	return k, closeKey, nil
}
