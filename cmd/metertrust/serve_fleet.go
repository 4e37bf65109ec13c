package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// fleetFlags are the flags of "metertrust serve fleet".
type fleetFlags struct {
	data, batchDir, firstEUI, kind, listen, tlsCert, tlsKey, clientCA, logLevel string
	generate                                                                    int
	root                                                                        string
	supplier, supplierTopUp, networkOperator, acb, tcos, wan                    []string
}

// newServeFleetCmd is "metertrust serve fleet": a fleet of reference meters
// (package device) behind a communications service provider's HTTP
// endpoint, the one "metertrust serve router --csp" forwards to.
func newServeFleetCmd() *cobra.Command {
	var f fleetFlags
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
against --data. Meter state lives as long as the process.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return f.run(ctx)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "directory relative paths are resolved against")
	fl.StringVar(&f.batchDir, "batch-dir", "", `directory of device keys and certificates written by "ca issue devices --out"`)
	fl.IntVar(&f.generate, "generate", 0, "generate N meters with fresh keys instead (load tests)")
	fl.StringVar(&f.firstEUI, "first-eui", "0012A3FFFE000001", "EUI-64 of the first generated meter")
	fl.StringVar(&f.kind, "kind", "electricity", "meter kind: electricity (ESME) or gas (GSME)")
	fl.StringVar(&f.root, "root-cert", "", "SMKI root CA certificate (PEM): the root trust anchor")
	fl.StringSliceVar(&f.supplier, "supplier-cert", nil, "supplier organisation certificate, DS or KA (PEM, repeatable)")
	fl.StringSliceVar(&f.supplierTopUp, "supplier-topup-cert", nil, "supplier prepayment top-up KA certificate (PEM)")
	fl.StringSliceVar(&f.networkOperator, "network-operator-cert", nil, "network operator organisation certificate (PEM, repeatable)")
	fl.StringSliceVar(&f.acb, "acb-cert", nil, "access control broker organisation certificate (PEM, repeatable; its KA key checks every MAC)")
	fl.StringSliceVar(&f.tcos, "tcos-cert", nil, "transitional change of supplier organisation certificate (PEM, repeatable)")
	fl.StringSliceVar(&f.wan, "wan-provider-cert", nil, "WAN provider organisation certificate (PEM, repeatable)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8480", "address to serve on")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "server certificate chain (PEM); plain HTTP without it")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the server certificate's private key (PEM)")
	fl.StringVar(&f.clientCA, "client-ca", "", "CA certificates (PEM) client certificates must chain to; given, a client certificate is required")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return c
}

func (f *fleetFlags) path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.data == "" {
		return p
	}
	return filepath.Join(f.data, p)
}

func (f *fleetFlags) run(ctx context.Context) error {
	log, err := newServiceLogger(f.logLevel)
	if err != nil {
		return err
	}
	switch {
	case (f.batchDir == "") == (f.generate == 0):
		return errors.New("give exactly one of --batch-dir and --generate")
	case f.generate < 0:
		return fmt.Errorf("--generate %d: want a positive number of meters", f.generate)
	case len(f.acb) == 0:
		return errors.New("--acb-cert is required: without the ACB's key-agreement anchor no MAC verifies")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case f.clientCA != "" && f.tlsCert == "":
		return errors.New("--client-ca needs --tls-cert and --tls-key")
	}
	var kind device.Kind
	switch strings.ToLower(f.kind) {
	case "electricity", "esme":
		kind = device.Electricity
	case "gas", "gsme":
		kind = device.Gas
	default:
		return fmt.Errorf("--kind %q: want electricity or gas", f.kind)
	}
	anchors, err := f.anchors()
	if err != nil {
		return err
	}
	fleet := device.NewFleet(device.Config{Logger: log})
	if f.batchDir != "" {
		ps, err := loadBatchDir(f.path(f.batchDir), kind)
		if err != nil {
			return err
		}
		if err := fleet.AddBatch(ps, anchors); err != nil {
			return fmt.Errorf("--batch-dir %s: %w", f.batchDir, err)
		}
	} else {
		first, err := smki.ParseEUI(f.firstEUI)
		if err != nil {
			return fmt.Errorf("--first-eui: %w", err)
		}
		if _, err := fleet.Generate(ctx, f.generate, first, kind, anchors); err != nil {
			return fmt.Errorf("generating meters: %w", err)
		}
	}
	h, err := device.NewHTTPHandler(fleet, device.HTTPConfig{Logger: log})
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if f.tlsCert != "" {
		kp, err := tls.LoadX509KeyPair(f.path(f.tlsCert), f.path(f.tlsKey))
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}
		if f.clientCA != "" {
			pool, err := readCertPool(f.path(f.clientCA))
			if err != nil {
				return fmt.Errorf("--client-ca: %w", err)
			}
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	ln, err := net.Listen("tcp", f.listen)
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
	if f.root != "" {
		certs, err := readSMKICerts(f.path(f.root))
		if err != nil {
			return nil, fmt.Errorf("--root-cert: %w", err)
		}
		var cells []*device.Cell
		for _, c := range certs {
			if c.Kind != smki.KindRoot {
				return nil, fmt.Errorf("--root-cert: %s holds a %s certificate, want the SMKI root", f.root, c.Kind)
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
		{"--supplier-cert", smki.RoleSupplier, f.supplier, f.supplierTopUp},
		{"--network-operator-cert", smki.RoleNetworkOperator, f.networkOperator, nil},
		{"--acb-cert", smki.RoleAccessControlBroker, f.acb, nil},
		{"--tcos-cert", smki.RoleTransitionalCoS, f.tcos, nil},
		{"--wan-provider-cert", smki.RoleWANProvider, f.wan, nil},
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

// loadBatchDir reads the meters of a directory written by "ca issue devices
// --out": for each EUI, <EUI>-ds.pem and <EUI>-ka.pem, each holding the
// PKCS#8 private key and the device certificate. The fleet checks that each
// certificate names the EUI and certifies the key.
func loadBatchDir(dir string, kind device.Kind) ([]device.Provision, error) {
	ds, err := filepath.Glob(filepath.Join(dir, "*-ds.pem"))
	if err != nil {
		return nil, fmt.Errorf("--batch-dir: %w", err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("--batch-dir: %s holds no <EUI>-ds.pem files", dir)
	}
	slices.Sort(ds)
	ps := make([]device.Provision, 0, len(ds))
	for _, dsPath := range ds {
		name := strings.TrimSuffix(filepath.Base(dsPath), "-ds.pem")
		eui, err := smki.ParseEUI(name)
		if err != nil {
			return nil, fmt.Errorf("--batch-dir: %s: file name is not <EUI>-ds.pem: %w", dsPath, err)
		}
		dsKey, dsCert, err := readKeyAndCert(dsPath)
		if err != nil {
			return nil, fmt.Errorf("--batch-dir: %w", err)
		}
		kaPath := filepath.Join(dir, name+"-ka.pem")
		kaKey, kaCert, err := readKeyAndCert(kaPath)
		if err != nil {
			return nil, fmt.Errorf("--batch-dir: %w", err)
		}
		ps = append(ps, device.Provision{Identity: device.Identity{EUI: eui, Kind: kind, Signer: dsKey, KeyAgreement: kaKey},
			DSCertificate: dsCert, KACertificate: kaCert})
	}
	return ps, nil
}

// readKeyAndCert reads a PEM file holding one P-256 private key and one
// certificate, as "ca issue devices --out" writes them. Errors never quote
// the key.
func readKeyAndCert(path string) (*custody.Software, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer clear(b)
	key, err := custody.ParsePEM(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, nil, fmt.Errorf("%s holds no CERTIFICATE block", path)
		}
		if blk.Type == "CERTIFICATE" {
			return key, blk.Bytes, nil
		}
	}
}
