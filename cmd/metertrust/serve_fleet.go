package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/device"
)

// newServeFleetCmd is "metertrust serve fleet": a fleet of reference meters
// (package device) behind a communications service provider's HTTP
// endpoint, the one "metertrust serve router --csp" forwards to.
func newServeFleetCmd() *cobra.Command {
	return newServeFleetCmdWith(func(ctx context.Context, cfg device.ServeConfig) error { return cfg.Serve(ctx) })
}

// newServeFleetCmdWith is "serve fleet" running run with the validated
// configuration (tests give a run that only keeps it).
func newServeFleetCmdWith(run func(context.Context, device.ServeConfig) error) *cobra.Command {
	var f device.ServeConfig
	var config string
	c := &cobra.Command{
		Use:   "fleet",
		Short: "Run reference meters behind a communications service provider endpoint",
		Long: `Run a fleet of reference meters behind an HTTP endpoint:
POST /v1/devices/{EUI}/commands executes a MAC'd GBCS command on meter EUI and
answers its response; GET /v1/stats reports per-meter executed counts, discard
reasons and recent executions.

The meters come from --batch-dir, the directory "metertrust ca issue devices
--out" writes (<EUI>-ds.pem and <EUI>-ka.pem, each a PKCS#8 key and its
device certificate), or are generated with fresh keys (--generate N, for
load tests only: they have no certificates). Their trust anchors are the
organisation certificates given by --acb-cert, --supplier-cert and the other
role flags, and the SMKI root by --root-cert; relative paths are resolved
against --data. Meter state lives as long as the process.

--config FILE reads every setting from a strict JSON file (device.ServeConfig;
deploy/examples/fleet.json); flags given on the command line override it, and
relative paths in the file are resolved against the file's directory.`,
		Args: cobra.NoArgs,
		RunE: serveRunE(&f, &config, device.LoadServeConfig, oneMeterSource, run),
	}
	fl := c.Flags()
	fl.StringVar(&config, "config", "", "JSON config file (strict; see device.ServeConfig); flags given override it")
	fl.StringVar(&f.Data, "data", "", "directory relative paths are resolved against")
	fl.StringVar(&f.BatchDir, "batch-dir", "", `directory of device keys and certificates written by "ca issue devices --out"`)
	fl.IntVar(&f.Generate, "generate", 0, "generate N meters with fresh keys instead (load tests)")
	fl.StringVar(&f.FirstEUI, "first-eui", device.DefaultFirstEUI, "EUI-64 of the first generated meter")
	fl.StringVar(&f.Kind, "kind", device.DefaultKind, "meter kind: electricity (ESME) or gas (GSME)")
	fl.StringVar(&f.RootCert, "root-cert", "", "SMKI root CA certificate (PEM): the root trust anchor")
	fl.StringSliceVar(&f.SupplierCert, "supplier-cert", nil, "supplier organisation certificate, DS or KA (PEM, repeatable)")
	fl.StringSliceVar(&f.SupplierTopUpCert, "supplier-topup-cert", nil, "supplier prepayment top-up KA certificate (PEM)")
	fl.StringSliceVar(&f.NetworkOperatorCert, "network-operator-cert", nil, "network operator organisation certificate (PEM, repeatable)")
	fl.StringSliceVar(&f.ACBCert, "acb-cert", nil, "access control broker organisation certificate (PEM, repeatable; its KA key checks every MAC)")
	fl.StringSliceVar(&f.TCoSCert, "tcos-cert", nil, "transitional change of supplier organisation certificate (PEM, repeatable)")
	fl.StringSliceVar(&f.WANProviderCert, "wan-provider-cert", nil, "WAN provider organisation certificate (PEM, repeatable)")
	fl.StringVar(&f.Listen, "listen", device.DefaultServeListen, "address to serve on")
	fl.StringVar(&f.GFIListen, "gfi-listen", "", "also serve the GFI text framing (gbcs-security.md section 12) over TCP on this address")
	fl.StringVar(&f.TLSCert, "tls-cert", "", "server certificate chain (PEM); plain HTTP without it")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.ClientCA, "client-ca", "", "CA certificates (PEM) client certificates must chain to; given, a client certificate is required")
	fl.StringVar(&f.LogLevel, "log-level", device.DefaultLogLevel, "debug, info, warn or error")
	fl.StringVar(&f.MetricsListen, "metrics-listen", device.DefaultMetricsListen, `address of the plain-HTTP Prometheus listener (GET /metrics); "off" for none`)
	return c
}

// oneMeterSource keeps exactly one source of meters: a source given by
// flag replaces the file's other source.
func oneMeterSource(cmd *cobra.Command, cfg *device.ServeConfig) {
	if cmd.Flags().Changed("batch-dir") && !cmd.Flags().Changed("generate") {
		cfg.Generate = 0
	}
	if cmd.Flags().Changed("generate") && !cmd.Flags().Changed("batch-dir") {
		cfg.BatchDir = ""
	}
}
