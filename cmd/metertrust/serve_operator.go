package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/internal/dccki"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/web"
)

// newServeOperatorCmd is "metertrust serve operator": the operator API in a
// process of its own, holding no key but its TLS server key.
func newServeOperatorCmd() *cobra.Command { return newServeOperatorCmdWith(serveOperator) }

// newServeOperatorCmdWith is "serve operator" running run with the
// validated configuration (tests give a run that only keeps it).
func newServeOperatorCmdWith(run func(context.Context, operator.ServeConfig) error) *cobra.Command {
	var f operator.ServeConfig
	var config string
	c := &cobra.Command{
		Use:   "operator",
		Short: "Run the operator dashboard and API (quarantine, thresholds, usage, audit) in its own process, with no key",
		Long: `Run the DCC operators' dashboard and API on their own, over HTTPS with the
server certificate --tls-cert: the dashboard at / for operators who log in
with their name and password (metertrust operator passwd), the API under /v1/
for bearer tokens (metertrust operator token); both from --operators. It serves from the router's store (--data or
--store) and loads no key but --tls-key: not the access control broker's.

A release is recorded in the store and answered 202 Accepted; the router's
release sweeper (every serve router sharing the store) forwards the command
within a second or two and records the outcome, which GET
/v1/quarantine/{ref} shows. serve router --operator-listen remains the
single-process option, answering releases with the router's receipt.

--config FILE reads every setting from a strict JSON file
(operator.ServeConfig; deploy/examples/operator.json); flags given on the
command line override it, and relative paths in the file are resolved
against the file's directory.`,
		Args: cobra.NoArgs,
		RunE: serveRunE(&f, &config, operator.LoadServeConfig, nil, run),
	}
	fl := c.Flags()
	fl.StringVar(&config, "config", "", "JSON config file (strict; see operator.ServeConfig); flags given override it")
	fl.StringVar(&f.Data, "data", "", "data directory (SQLite store)")
	fl.StringVar(&f.Store, "store", "", "store DSN (postgres://... or a SQLite path); default the store in --data")
	fl.StringVar(&f.Listen, "listen", operator.DefaultListen, "address to serve HTTPS on")
	fl.StringVar(&f.TLSCert, "tls-cert", "", "server certificate chain (PEM)")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.Operators, "operators", "", "operator credentials file (metertrust operator token)")
	fl.StringVar(&f.LogLevel, "log-level", operator.DefaultLogLevel, "debug, info, warn or error")
	fl.StringVar(&f.SessionIdle, "session-idle", "", "end a dashboard session unused for this long (default 30m)")
	fl.StringVar(&f.MetricsListen, "metrics-listen", operator.DefaultMetricsListen, `address of the plain-HTTP Prometheus listener (GET /metrics); "off" for none`)
	fl.StringVar(&f.SessionMax, "session-max", "", "end any dashboard session this long after login (default 12h)")
	fl.StringVar(&f.ProposalTTL, "proposal-ttl", "", "how long a two-person proposal waits for a second operator's approval (default 24h)")
	return c
}

// uiHandler is the dashboard, set once built: the dashboard needs the
// operator API (its releases) and the API serves the dashboard.
type uiHandler struct{ http.Handler }

// serveOperator runs the operator API with a validated configuration until
// ctx ends. It opens the store, the anomaly detector, the credentials and
// the TLS server key, and no other key: releases are left to the router's
// release sweeper (operator.Deferred).
func serveOperator(ctx context.Context, f operator.ServeConfig) error {
	log, err := serving.Logger(f.LogLevel)
	if err != nil {
		return err
	}
	creds, err := operator.Load(f.Operators)
	if err != nil {
		return fmt.Errorf("--operators: %w", err)
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
	reg, mln, err := openMetrics(f.MetricsListen, db)
	if err != nil {
		return err
	}
	defer closeListener(mln)
	hm, err := apiserver.NewHTTPMetrics(reg, "operator")
	if err != nil {
		return err
	}
	serving.KeysLoaded(ctx, log, "operator", "operator-tls-server "+f.TLSKey)
	as := db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverCert}})
	ui := &uiHandler{}
	op := operator.New(operator.Config{ProposalTTL: operator.Duration(f.TTL())}, operator.Deps{Credentials: creds, Quarantine: det,
		Thresholds: det, Usage: det, Alerts: det, Releaser: operator.Deferred, Audit: db, Proposals: db.Proposals(), Logger: log, UI: ui, Metrics: hm})
	idle, max := f.Sessions()
	dash, err := web.New(web.Config{SessionIdle: idle, SessionMax: max},
		web.Deps{Credentials: creds, Sessions: db.Operator(), Quarantine: det, Thresholds: det, Usage: det, Decider: op, Audit: db,
			PKI: db.SMKI(), Rates: db.Operator(), Logger: log, Metrics: hm})
	if err != nil {
		return err
	}
	ui.Handler = dash.Handler()
	// The detector's background work: alerts from other processes (LISTEN
	// on PostgreSQL) for the event stream, and threshold reloads; the
	// dashboard's sampling of live counts for its charts.
	return serving.RunAll(ctx, det.Run, dash.Run, func(ctx context.Context) error { return op.Serve(ctx, ln) },
		func(ctx context.Context) error { return serving.ServeMetrics(ctx, mln, reg, log) })
}
