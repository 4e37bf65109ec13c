package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := routerConfig(cmd, config, f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg)
		},
	}
	fl := c.Flags()
	fl.StringVar(&config, "config", "", "JSON config file (strict; see router.ServeConfig); flags given override it")
	fl.StringVar(&f.Data, "data", "", "data directory (SQLite store, key files)")
	fl.StringVar(&f.Store, "store", "", "store DSN (postgres://... or a SQLite path); default the store in --data")
	fl.StringVar(&f.Listen, "listen", router.DefaultListen, "address to serve HTTPS on")
	fl.StringVar(&f.ACBKey, "acb-key", "", "the access control broker's key-agreement key: PEM file or softkms:path=FILE")
	fl.StringVar(&f.ACBEUI, "acb-eui", "", "the access control broker's EUI-64")
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
	return c
}

// routerConfig returns the router's configuration: the --config file if
// given, the flags given on the command line over it, the flags' defaults
// for what neither sets; validated.
func routerConfig(cmd *cobra.Command, file string, flags router.ServeConfig) (router.ServeConfig, error) {
	return loadServeConfig(file, router.LoadServeConfig, func(cfg *router.ServeConfig) {
		overlay(cmd, map[string][2]*string{
			"data": {&flags.Data, &cfg.Data}, "store": {&flags.Store, &cfg.Store}, "listen": {&flags.Listen, &cfg.Listen},
			"acb-key": {&flags.ACBKey, &cfg.ACBKey}, "acb-eui": {&flags.ACBEUI, &cfg.ACBEUI},
			"tls-cert": {&flags.TLSCert, &cfg.TLSCert}, "tls-key": {&flags.TLSKey, &cfg.TLSKey}, "client-ca": {&flags.ClientCA, &cfg.ClientCA},
			"csp": {&flags.CSP, &cfg.CSP}, "csp-ca": {&flags.CSPCA, &cfg.CSPCA}, "csp-cert": {&flags.CSPCert, &cfg.CSPCert},
			"csp-key": {&flags.CSPKey, &cfg.CSPKey}, "log-level": {&flags.LogLevel, &cfg.LogLevel},
			"operator-listen": {&flags.OperatorListen, &cfg.OperatorListen}, "operators": {&flags.Operators, &cfg.Operators},
		})
	})
}

// serveRouter runs the router (and the operator API when configured) with
// a validated configuration until ctx ends.
func serveRouter(ctx context.Context, f router.ServeConfig) error {
	log, err := newServiceLogger(f.LogLevel)
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
	serverCert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	logKeysLoaded(ctx, log, "router", "acb-key-agreement "+custody.Redacted(f.ACBKey), "dccki-tls-server "+f.TLSKey)
	db, err := openStore(ctx, f.Data, f.Store)
	if err != nil {
		return err
	}
	defer db.Close()
	clientCAs, err := dcckiRoots(ctx, f.ClientCA, func(ctx context.Context, name string) ([]byte, error) {
		c, err := db.SMKI().CA(ctx, name)
		return c.CertDER, err
	})
	if err != nil {
		return err
	}
	if len(serverCert.Certificate) == 1 {
		// A certificate written by "ca issue tls-server" is the leaf
		// alone: send the issuing CA with it so clients holding the
		// DCCKI root can build the path.
		if c, err := db.SMKI().CA(ctx, ca.NameDCCKITLS); err == nil {
			serverCert.Certificate = append(serverCert.Certificate, c.CertDER)
		}
	}
	transport, err := cspTransport(f.CSP, f.CSPCA, f.CSPCert, f.CSPKey)
	if err != nil {
		return err
	}
	as := db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: log})
	if err != nil {
		return err
	}
	svc, err := router.NewService(router.ServiceConfig{DB: db, Detector: det, ACB: acb, ACBKey: acbKey, Transport: transport,
		ServerCertificate: serverCert, ClientCAs: clientCAs, Identify: ca.TLSUser, DCCKIIssuer: ca.NameDCCKITLS, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return err
	}
	if creds == nil {
		return svc.Run(ctx, ln)
	}
	// The operator API: bearer tokens over TLS with the router's server
	// certificate, on a listener of its own (operators hold no DCCKI
	// client certificate).
	opLn, err := net.Listen("tcp", f.OperatorListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--operator-listen: %w", err)
	}
	opLn = tls.NewListener(opLn, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}})
	op := operator.New(operator.Config{}, operator.Deps{Credentials: creds, Quarantine: det, Thresholds: det, Usage: det,
		Alerts: det, Releaser: operator.Forwarder(svc.Releases.Forward), Audit: db,
		Logger: log})
	return runBoth(ctx, func(ctx context.Context) error { return svc.Run(ctx, ln) },
		func(ctx context.Context) error { return op.Serve(ctx, opLn) })
}

// runBoth runs two services until ctx ends or either fails; the first
// failure stops the other.
func runBoth(ctx context.Context, a, b func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	for _, fn := range []func(context.Context) error{a, b} {
		go func() {
			err := fn(ctx)
			cancel()
			errs <- err
		}()
	}
	return errors.Join(<-errs, <-errs)
}

// newServiceLogger returns a JSON logger on stderr at the given level.
// logKeysLoaded says, once at start, every private key the service holds
// (each as "purpose URI-or-file", PINs redacted): the keys it loaded, and by
// their absence the ones it did not (DESIGN principle 2: each service
// loads only the keys it needs).
func logKeysLoaded(ctx context.Context, log *slog.Logger, service string, keys ...string) {
	log.InfoContext(ctx, "keys loaded", "service", service, "keys", keys)
}

func newServiceLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
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

// dcckiRoots returns the pool client certificates must chain to: the PEM
// file when given, else the store's DCCKI root and DCCKI TLS issuing CA (the
// latter so that clients may present their certificate without its chain).
func dcckiRoots(ctx context.Context, file string, fromStore func(ctx context.Context, name string) ([]byte, error)) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--client-ca: %s holds no PEM certificate", file)
		}
		return pool, nil
	}
	for _, name := range []string{ca.NameDCCKIRoot, ca.NameDCCKITLS} {
		der, err := fromStore(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("no --client-ca and no %s CA in the store (run metertrust ca init): %w", name, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("the store's %s certificate: %w", name, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// cspTransport builds the HTTP transport to a communications service
// provider, with its own CA pool and client certificate when given.
func cspTransport(endpoint, caFile, certFile, keyFile string) (*router.HTTPTransport, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--csp-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--csp-ca: %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--csp-cert and --csp-key go together")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--csp-cert/--csp-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 64}}
	return router.NewHTTPTransport(endpoint, client)
}

// newRouterCmd is "metertrust router": the router's registry of devices
// and consents, kept in the store the router serves from. Every change is
// audited.
func newRouterCmd() *cobra.Command {
	c := &cobra.Command{Use: "router", Short: "The router's device registry and consent records"}
	c.AddCommand(newRouterDeviceCmd(), newRouterConsentCmd())
	return c
}

// registrarFlags are the flags every registry command shares.
type registrarFlags struct{ data, dsn, actor string }

func (f *registrarFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.data, "data", "", "data directory")
	c.Flags().StringVar(&f.dsn, "store", "", "store DSN; default the store in --data")
	c.Flags().StringVar(&f.actor, "actor", os.Getenv("USER"), "who makes the change, for the audit log")
}

func (f *registrarFlags) open(ctx context.Context, run func(*router.Registrar) error) error {
	if f.actor == "" {
		return errors.New("--actor is required")
	}
	db, err := openStore(ctx, f.data, f.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return run(router.NewRegistrar(db.Router(), nil))
}

func newRouterDeviceCmd() *cobra.Command {
	var f registrarFlags
	var eui, supplier, no string
	c := &cobra.Command{
		Use:   "device-register",
		Short: "Register a device (keys from its SMKI device certificates) with its supplier and network operator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d, s, n smki.EUI
			var err error
			if d, err = smki.ParseEUI(eui); err != nil {
				return fmt.Errorf("--eui: %w", err)
			}
			if supplier != "" {
				if s, err = smki.ParseEUI(supplier); err != nil {
					return fmt.Errorf("--supplier: %w", err)
				}
			}
			if no != "" {
				if n, err = smki.ParseEUI(no); err != nil {
					return fmt.Errorf("--network-operator: %w", err)
				}
			}
			return f.open(cmd.Context(), func(g *router.Registrar) error { return g.RegisterDevice(cmd.Context(), f.actor, d, s, n) })
		},
	}
	f.register(c)
	c.Flags().StringVar(&eui, "eui", "", "device EUI-64 (required)")
	c.Flags().StringVar(&supplier, "supplier", "", "EUI-64 of the supplier holding the supplier trust anchor")
	c.Flags().StringVar(&no, "network-operator", "", "EUI-64 of the network operator")
	c.MarkFlagRequired("eui")
	return c
}

func newRouterConsentCmd() *cobra.Command {
	c := &cobra.Command{Use: "consent", Short: "Consent records for other users' reads (spec section 11)"}
	var gf registrarFlags
	var id, device, user, evidence string
	var scope []string
	var valid time.Duration
	grant := &cobra.Command{
		Use:   "grant",
		Short: "Record a consumer's consent for an other user to read their device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := smki.ParseEUI(device)
			if err != nil {
				return fmt.Errorf("--device: %w", err)
			}
			u, err := smki.ParseEUI(user)
			if err != nil {
				return fmt.Errorf("--user: %w", err)
			}
			now := time.Now()
			return gf.open(cmd.Context(), func(g *router.Registrar) error {
				return g.GrantConsent(cmd.Context(), gf.actor, store.Consent{ID: id, Device: d.String(), User: u.String(), Scope: scope,
					NotBefore: now, ExpiresAt: now.Add(valid), Evidence: evidence})
			})
		},
	}
	gf.register(grant)
	grant.Flags().StringVar(&id, "id", "", "consent identifier (required)")
	grant.Flags().StringVar(&device, "device", "", "the consumer's device EUI-64 (required)")
	grant.Flags().StringVar(&user, "user", "", "the other user's EUI-64 (required)")
	grant.Flags().StringSliceVar(&scope, "scope", nil, "service reference variants consented to, such as 4.8.1 (required)")
	grant.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "how long the consent lasts")
	grant.Flags().StringVar(&evidence, "evidence", "", "how consent was given, such as the CIN read back (required)")
	for _, n := range []string{"id", "device", "user", "scope", "evidence"} {
		grant.MarkFlagRequired(n)
	}
	var rf registrarFlags
	var rid, reason string
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "End a consent now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rf.open(cmd.Context(), func(g *router.Registrar) error { return g.RevokeConsent(cmd.Context(), rf.actor, rid, reason) })
		},
	}
	rf.register(revoke)
	revoke.Flags().StringVar(&rid, "id", "", "consent identifier (required)")
	revoke.Flags().StringVar(&reason, "reason", "", "why (required)")
	revoke.MarkFlagRequired("id")
	revoke.MarkFlagRequired("reason")
	c.AddCommand(grant, revoke)
	return c
}
