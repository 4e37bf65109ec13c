package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/smki"
	"github.com/prometheus/client_golang/prometheus"
)

// Path resolves a path given by flag against Data, as "serve fleet" reads
// its files: relative paths (from the command line) are relative to Data;
// a config file's were made absolute when it was read.
func (f ServeConfig) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.Data == "" {
		return p
	}
	return filepath.Join(f.Data, p)
}

// Serve runs the fleet the configuration describes (validated) until ctx
// ends: its meters from BatchDir or generated, their trust anchors from the
// certificate files, the HTTP endpoint on Listen (TLS with TLSCert, client
// certificates required with ClientCA). It logs the keys it holds.
func (f ServeConfig) Serve(ctx context.Context) error {
	log, err := serving.Logger(f.LogLevel)
	if err != nil {
		return err
	}
	kind, err := ParseKind(f.Kind)
	if err != nil {
		return fmt.Errorf("--kind %w", err)
	}
	anchors, err := f.Anchors()
	if err != nil {
		return err
	}
	fleet := NewFleet(Config{Logger: log})
	if f.BatchDir != "" {
		ps, err := ReadBatchDir(f.Path(f.BatchDir), kind)
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
	reg := serving.NewRegistry()
	hm, err := apiserver.NewHTTPMetrics(reg, "fleet")
	if err != nil {
		return err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metertrust", Subsystem: "fleet", Name: "meters",
		Help: "Meters the fleet serves.",
	}, func() float64 { return float64(fleet.Len()) }))
	mln, err := serving.ListenMetrics(f.MetricsListen)
	if err != nil {
		return err
	}
	if mln != nil {
		defer mln.Close()
	}
	h, err := NewHTTPHandler(fleet, HTTPConfig{Logger: log, Metrics: hm})
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if f.TLSCert != "" {
		kp, err := tls.LoadX509KeyPair(f.Path(f.TLSCert), f.Path(f.TLSKey))
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kp}}
		if f.ClientCA != "" {
			pool, err := readCertPool(f.Path(f.ClientCA))
			if err != nil {
				return fmt.Errorf("--client-ca: %w", err)
			}
			tlsConfig.ClientCAs, tlsConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	keys := []string{fmt.Sprintf("meters %d (their own digital-signing and key-agreement keys)", fleet.Len())}
	if tlsConfig != nil {
		keys = append(keys, "tls-server "+f.Path(f.TLSKey))
	}
	serving.KeysLoaded(ctx, log, "fleet", keys...)
	ln, err := net.Listen("tcp", f.Listen)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "fleet listening", "component", "serve.fleet", "addr", ln.Addr().String(), "meters", fleet.Len(),
		"tls", tlsConfig != nil)
	go fleet.Run(ctx, time.Second)
	if f.GFIListen != "" {
		gln, err := net.Listen("tcp", f.GFIListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--gfi-listen: %w", err)
		}
		log.InfoContext(ctx, "fleet GFI listening", "component", "serve.fleet", "addr", gln.Addr().String())
		gfi := &GFIServer{Fleet: fleet, Logger: log}
		go func() {
			if err := gfi.Serve(ctx, gln); err != nil {
				log.ErrorContext(ctx, "GFI server stopped", "component", "serve.fleet", "err", err)
			}
		}()
	}
	return serving.RunAll(ctx, func(ctx context.Context) error { return h.Serve(ctx, ln, tlsConfig) },
		func(ctx context.Context) error { return serving.ServeMetrics(ctx, mln, reg, log) })
}

// anchors builds the meters' trust anchors from the certificate flags.
// Anchors builds the meters' trust anchors from the configuration's
// certificate files.
func (f ServeConfig) Anchors() (*Anchors, error) {
	an := NewAnchors()
	if f.RootCert != "" {
		certs, err := readSMKICerts(f.Path(f.RootCert))
		if err != nil {
			return nil, fmt.Errorf("--root-cert: %w", err)
		}
		var cells []*Cell
		for _, c := range certs {
			if c.Kind != smki.KindRoot {
				return nil, fmt.Errorf("--root-cert: %s holds a %s certificate, want the SMKI root", f.RootCert, c.Kind)
			}
			cell, err := NewCell(UsageDigitalSignature, asn.CellManagement, c.EUI, c.PublicKey)
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
		var cells []*Cell
		add := func(file string, usage asn.CellUsage) error {
			certs, err := readSMKICerts(f.Path(file))
			if err != nil {
				return fmt.Errorf("%s: %w", r.flag, err)
			}
			for _, c := range certs {
				if c.Kind != smki.KindOrganisation || c.Role != r.role {
					return fmt.Errorf("%s: %s holds a %s certificate of role %s, want an organisation certificate of role %s",
						r.flag, file, c.Kind, c.Role, r.role)
				}
				cell, err := NewCellFromCertificate(c, usage)
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
