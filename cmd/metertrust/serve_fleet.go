package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/smki"
)

// fleetFlags are the settings of "metertrust serve fleet": its
// configuration, from --config and the flags.
type fleetFlags struct{ device.ServeConfig }

// newServeFleetCmd is "metertrust serve fleet": a fleet of reference meters
// (package device) behind a communications service provider's HTTP
// endpoint, the one "metertrust serve router --csp" forwards to.
func newServeFleetCmd() *cobra.Command {
	return newServeFleetCmdWith(func(ctx context.Context, cfg device.ServeConfig) error { return (&fleetFlags{cfg}).run(ctx) })
}

// newServeFleetCmdWith is "serve fleet" running run with the validated
// configuration (tests give a run that only keeps it).
func newServeFleetCmdWith(run func(context.Context, device.ServeConfig) error) *cobra.Command {
	var f fleetFlags
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := fleetConfig(cmd, config, f.ServeConfig)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg)
		},
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
	fl.StringVar(&f.TLSCert, "tls-cert", "", "server certificate chain (PEM); plain HTTP without it")
	fl.StringVar(&f.TLSKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.ClientCA, "client-ca", "", "CA certificates (PEM) client certificates must chain to; given, a client certificate is required")
	fl.StringVar(&f.LogLevel, "log-level", device.DefaultLogLevel, "debug, info, warn or error")
	return c
}

// fleetConfig returns the fleet's configuration: the --config file if
// given, the flags given on the command line over it, the flags' defaults
// for what neither sets; validated.
func fleetConfig(cmd *cobra.Command, file string, flags device.ServeConfig) (device.ServeConfig, error) {
	return loadServeConfig(file, device.LoadServeConfig, func(cfg *device.ServeConfig) {
		overlay(cmd, &flags, cfg)
		// Exactly one source of meters: a source given by flag replaces the
		// file's other source.
		if cmd.Flags().Changed("batch-dir") && !cmd.Flags().Changed("generate") {
			cfg.Generate = 0
		}
		if cmd.Flags().Changed("generate") && !cmd.Flags().Changed("batch-dir") {
			cfg.BatchDir = ""
		}
	})
}

func (f *fleetFlags) path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.Data == "" {
		return p
	}
	return filepath.Join(f.Data, p)
}

func (f *fleetFlags) run(ctx context.Context) error {
	log, err := serving.Logger(f.LogLevel)
	if err != nil {
		return err
	}
	kind, err := device.ParseKind(f.Kind)
	if err != nil {
		return fmt.Errorf("--kind %w", err)
	}
	anchors, err := f.anchors()
	if err != nil {
		return err
	}
	fleet := device.NewFleet(device.Config{Logger: log})
	if f.BatchDir != "" {
		ps, err := device.ReadBatchDir(f.path(f.BatchDir), kind)
		if err != nil {
			return fmt.Errorf("--batch-dir: %w", err)
		}
		if len(ps) == 0 {
			return fmt.Errorf("--batch-dir: %s holds no <EUI>-ds.pem files", f.BatchDir)
		}
		if err := fleet.AddBatch(ps, anchors); err != nil {
			return fmt.Errorf("--batch-dir %s: %w", f.BatchDir, err)
		}
	} else {
		first, err := smki.ParseEUI(f.FirstEUI)
		if err != nil {
			return fmt.Errorf("--first-eui: %w", err)
		}
		if _, err := fleet.Generate(ctx, f.Generate, first, kind, anchors); err != nil {
			return fmt.Errorf("generating meters: %w", err)
		}
	}
	h, err := device.NewHTTPHandler(fleet, device.HTTPConfig{Logger: log})
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if f.TLSCert != "" {
		kp, err := tls.LoadX509KeyPair(f.path(f.TLSCert), f.path(f.TLSKey))
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}
		if f.ClientCA != "" {
			pool, err := readCertPool(f.path(f.ClientCA))
			if err != nil {
				return fmt.Errorf("--client-ca: %w", err)
			}
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	keys := []string{fmt.Sprintf("meters %d (their own digital-signing and key-agreement keys)", fleet.Len())}
	if tlsConfig != nil {
		keys = append(keys, "tls-server "+f.path(f.TLSKey))
	}
	serving.KeysLoaded(ctx, log, "fleet", keys...)
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "fleet listening", "component", "serve.fleet", "addr", ln.Addr().String(), "meters", fleet.Len(),
		"tls", tlsConfig != nil)
	return h.Serve(ctx, ln, tlsConfig)
}

// anchors builds the meters' trust anchors from the certificate flags.
func (f *fleetFlags) anchors() (*device.Anchors, error) {
	an := device.NewAnchors()
	if f.RootCert != "" {
		certs, err := readSMKICerts(f.path(f.RootCert))
		if err != nil {
			return nil, fmt.Errorf("--root-cert: %w", err)
		}
		var cells []*device.Cell
		for _, c := range certs {
			if c.Kind != smki.KindRoot {
				return nil, fmt.Errorf("--root-cert: %s holds a %s certificate, want the SMKI root", f.RootCert, c.Kind)
			}
			cell, err := device.NewCell(device.UsageDigitalSignature, asn.CellManagement, c.EUI, c.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("--root-cert: %w", err)
			}
			cells = append(cells, cell)
		}
		if an, err = an.With(smki.RoleRoot, 1, cells...); err != nil {
			return nil, err
		}
	}
	for _, r := range []struct {
		flag  string
		role  smki.Role
		files []string
		top   []string
	}{
		{"--supplier-cert", smki.RoleSupplier, f.SupplierCert, f.SupplierTopUpCert},
		{"--network-operator-cert", smki.RoleNetworkOperator, f.NetworkOperatorCert, nil},
		{"--acb-cert", smki.RoleAccessControlBroker, f.ACBCert, nil},
		{"--tcos-cert", smki.RoleTransitionalCoS, f.TCoSCert, nil},
		{"--wan-provider-cert", smki.RoleWANProvider, f.WANProviderCert, nil},
	} {
		var cells []*device.Cell
		add := func(file string, usage asn.CellUsage) error {
			certs, err := readSMKICerts(f.path(file))
			if err != nil {
				return fmt.Errorf("%s: %w", r.flag, err)
			}
			for _, c := range certs {
				if c.Kind != smki.KindOrganisation || c.Role != r.role {
					return fmt.Errorf("%s: %s holds a %s certificate of role %s, want an organisation certificate of role %s",
						r.flag, file, c.Kind, c.Role, r.role)
				}
				cell, err := device.NewCellFromCertificate(c, usage)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", r.flag, file, err)
				}
				cells = append(cells, cell)
			}
			return nil
		}
		for _, file := range r.files {
			if err := add(file, asn.CellManagement); err != nil {
				return nil, err
			}
		}
		for _, file := range r.top {
			if err := add(file, asn.CellPrePaymentTopUp); err != nil {
				return nil, err
			}
		}
		if len(cells) == 0 {
			continue
		}
		var err error
		if an, err = an.With(r.role, 1, cells...); err != nil {
			return nil, err
		}
	}
	return an, nil
}

// readSMKICerts reads every CERTIFICATE block of a PEM file with the SMKI
// reader (crypto/x509 refuses organisation certificates).
func readSMKICerts(path string) ([]*smki.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*smki.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := smki.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// readCertPool reads a PEM file of CA certificates.
func readCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
