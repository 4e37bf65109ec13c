package inproc

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// devicesDir is where the batch's meters' keys and certificates live.
func (s *System) devicesDir() string { return filepath.Join(s.Dir, "devices", s.Batch) }

// issueMeters opens the batch Device CA and issues n meters in bulk (two
// key pairs and two device certificates each, linted), written to
// devicesDir.
func (s *System) issueMeters(ctx context.Context, n int, first smki.EUI) error {
	if _, err := s.CA.OpenBatch(ctx, s.Batch, int64(2*n+2)); err != nil {
		return fmt.Errorf("opening batch %s: %w", s.Batch, err)
	}
	sum, err := s.CA.IssueDevices(ctx, ca.BulkRequest{Batch: s.Batch, Count: n, OutDir: s.devicesDir(), FirstEUI: first})
	if err != nil {
		return fmt.Errorf("issuing %d meters from batch %s: %w", n, s.Batch, err)
	}
	s.Bulk = sum
	return nil
}

// loadMeters reads the batch's meters back and puts them in the fleet, each
// with the trust anchors of the anchored parties.
func (s *System) loadMeters(kind device.Kind) ([]device.Provision, error) {
	ps, err := device.ReadBatchDir(s.devicesDir(), kind)
	if err != nil {
		return nil, err
	}
	anchors, err := s.anchors()
	if err != nil {
		return nil, err
	}
	if err := s.Fleet.AddBatch(ps, anchors); err != nil {
		return nil, fmt.Errorf("adding the meters of %s to the fleet: %w", s.devicesDir(), err)
	}
	for _, p := range ps {
		s.Meters = append(s.Meters, p.EUI)
	}
	return ps, nil
}

// anchors builds the meters' trust anchors: for every anchored party, a
// cell per organisation certificate under the party's role (the prepayment
// top-up KA in a top-up cell).
func (s *System) anchors() (*device.Anchors, error) {
	an := device.NewAnchors()
	byRole := map[smki.Role][]*device.Cell{}
	var roles []smki.Role
	for _, p := range s.PartyList {
		if !p.Anchor {
			continue
		}
		for _, u := range p.Usages {
			c, err := p.Certificate(u)
			if err != nil {
				return nil, err
			}
			use := asn.CellManagement
			if u == ca.UsagePPKA {
				use = asn.CellPrePaymentTopUp
			}
			cell, err := device.NewCellFromCertificate(c, use)
			if err != nil {
				return nil, fmt.Errorf("trust anchor for the %s certificate of %s: %w", u, p.Name, err)
			}
			if _, ok := byRole[p.Role]; !ok {
				roles = append(roles, p.Role)
			}
			byRole[p.Role] = append(byRole[p.Role], cell)
		}
	}
	for _, r := range roles {
		var err error
		if an, err = an.With(r, 1, byRole[r]...); err != nil {
			return nil, fmt.Errorf("trust anchors of role %s: %w", r, err)
		}
	}
	return an, nil
}

// generateMeters makes n meters with fresh keys and no certificates, for
// load tests, and registers them.
func (s *System) generateMeters(ctx context.Context, n int, first smki.EUI, kind device.Kind) error {
	anchors, err := s.anchors()
	if err != nil {
		return err
	}
	if first.IsZero() {
		first = smki.MustParseEUI("F000000000000001")
	}
	if s.Meters, err = s.Fleet.Generate(ctx, n, first, kind, anchors); err != nil {
		return fmt.Errorf("generating %d meters: %w", n, err)
	}
	devs := make([]store.RouterDevice, 0, n)
	for _, eui := range s.Meters {
		m, _ := s.Fleet.Meter(eui)
		ds, err := m.SignaturePublicKey().Bytes()
		if err != nil {
			return fmt.Errorf("meter %s signing key: %w", eui, err)
		}
		devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: m.AgreementPublicKey().Bytes(), DSPublic: ds})
	}
	return s.registerDevices(ctx, devs)
}

// registerMeters registers issued meters with the keys of their device
// certificates.
func (s *System) registerMeters(ctx context.Context, ps []device.Provision) error {
	devs := make([]store.RouterDevice, 0, len(ps))
	for _, p := range ps {
		ka, err := smki.ParseCertificate(p.KACertificate)
		if err != nil {
			return fmt.Errorf("KA certificate of meter %s: %w", p.EUI, err)
		}
		ds, err := smki.ParseCertificate(p.DSCertificate)
		if err != nil {
			return fmt.Errorf("DS certificate of meter %s: %w", p.EUI, err)
		}
		devs = append(devs, store.RouterDevice{EUI: p.EUI.String(), KAPublic: ka.RawPublicKey, DSPublic: ds.RawPublicKey})
	}
	return s.registerDevices(ctx, devs)
}

// registerDevices puts devices in the router's registry, owned by the
// anchored supplier and network operator, in chunks, with one audit entry
// per chunk naming the devices.
func (s *System) registerDevices(ctx context.Context, devs []store.RouterDevice) error {
	var supplier, no, supplierKey, noKey string
	// The anchors the meters are made with hold the parties' DS keys: the
	// registry records their key ids (decision 016).
	keyID := func(p *Party) string {
		c, err := smki.ParseCertificate(p.Certificates[ca.UsageDS])
		if err != nil {
			return ""
		}
		return fmt.Sprintf("%X", c.SubjectKeyID)
	}
	for _, p := range s.PartyList {
		switch {
		case !p.Anchor:
		case p.Role == smki.RoleSupplier && supplier == "":
			supplier, supplierKey = p.EUI.String(), keyID(p)
		case p.Role == smki.RoleNetworkOperator && no == "":
			no, noKey = p.EUI.String(), keyID(p)
		}
	}
	if supplier == "" && no == "" {
		return fmt.Errorf("%w: no anchored supplier or network operator to own the meters", ErrConfig)
	}
	now := s.now()
	for chunk := range slices.Chunk(devs, 500) {
		euis := make([]string, 0, len(chunk))
		for i := range chunk {
			chunk[i].Supplier, chunk[i].NetworkOperator, chunk[i].UpdatedAt = supplier, no, now
			chunk[i].SupplierDSKeyID, chunk[i].NetworkOperatorDSKeyID = supplierKey, noKey
			euis = append(euis, chunk[i].EUI)
		}
		if err := s.DB.Router().PutRouterDevices(ctx, chunk...); err != nil {
			return fmt.Errorf("registering meters: %w", err)
		}
		if _, err := s.DB.AppendAudit(ctx, store.AuditEvent{Time: now, Actor: "inproc", Action: "router.device.register",
			Object: s.Batch, Outcome: "success", Details: map[string]any{"devices": euis, "supplier": supplier,
				"networkOperator": no}}); err != nil {
			return fmt.Errorf("auditing the registration of meters: %w", err)
		}
	}
	return nil
}

// MeterKeyFile is the file holding an issued meter's private key and
// certificate of usage "ds" or "ka" (PKCS#8 PEM and the certificate, as
// "ca issue devices --out" writes them): what a thief of that meter would
// extract from it. Generated meters have none.
func (s *System) MeterKeyFile(eui smki.EUI, usage string) string {
	return filepath.Join(s.devicesDir(), eui.String()+"-"+usage+".pem")
}
