package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// orgCerts issues the DS and KA organisation certificates of p in role r.
func orgCerts(t *testing.T, p *party, r smki.Role) (ds, ka []byte) {
	return issue(t, smki.ProfileOrgDS, r, p.eui, &p.ds.PublicKey), issue(t, smki.ProfileOrgKA, r, p.eui, &p.kaS.PublicKey)
}

func cs02b(t *testing.T, mode commands.ReplacementMode, authSeq, floor uint64, reps ...commands.Replacement) []byte {
	t.Helper()
	u := &commands.UpdateCredentials{Control: commands.AuthorisingControl{Mode: mode, AuthorisingSequence: authSeq, FloorSequence: floor}, Replacements: reps}
	b, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func replaceSupplier(t *testing.T, p *party, r smki.Role) []commands.Replacement {
	ds, ka := orgCerts(t, p, r)
	return []commands.Replacement{
		{Certificate: ds, Target: commands.CellID{Role: r, KeyUsage: x509.KeyUsageDigitalSignature, Usage: commands.CellManagement}},
		{Certificate: ka, Target: commands.CellID{Role: r, KeyUsage: x509.KeyUsageKeyAgreement, Usage: commands.CellManagement}},
	}
}

func TestCS02aListsAnchors(t *testing.T) {
	w := newWorld(t, Electricity)
	for _, from := range []*party{w.acb, w.supplier} {
		b, cmd := w.command(CodeCS02a, must((&commands.ProvideCredentials{Roles: []smki.Role{smki.RoleSupplier, smki.RoleRoot}}).Marshal()), cmdOpts{from: from})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatalf("CS02a from %s: %v", from.eui, err)
		}
		d, err := commands.ParseCredentialsDetails(w.open(resp, cmd, from, from))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Roles) != 2 || d.Roles[0].Status != commands.StatusSuccess || d.Roles[0].Sequence != 1 || len(d.Roles[0].Cells) != 2 ||
			d.Roles[1].Status != commands.StatusTrustAnchorNotFound {
			t.Fatalf("details %+v", d)
		}
		sup := w.supplier.cells(t)
		if c := d.Roles[0].Cells[0]; c.Subject != w.supplier.eui || c.KeyUsage != x509.KeyUsageDigitalSignature || c.SubjectKeyID != sup[0].SubjectKeyID {
			t.Errorf("supplier DS cell %+v", c)
		}
	}
	b, _ := w.command(CodeCS02a, must((&commands.ProvideCredentials{}).Marshal()), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 1}})
	if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrRoleNotAllowed) {
		t.Errorf("CS02a from an unknown remote party: err = %v, want ErrRoleNotAllowed", err)
	}
}

func TestCS02bSequenceNumbers(t *testing.T) {
	w := newWorld(t, Electricity)
	next := newParty(t, "90B3D51F30000002") // the supplier's own new keys, same EUI
	reps := replaceSupplier(t, next, smki.RoleSupplier)
	tests := []struct {
		name    string
		authSeq uint64
		want    error
	}{
		{"stale: equal to the held sequence number", 1, ErrStaleSequence},
		{"stale: below it", 0, ErrStaleSequence},
		{"fresh", 2, nil},
		{"stale after the update", 2, ErrStaleSequence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.meter.Anchors()
			b, cmd := w.command(0x0102, cs02b(t, commands.SupplierBySupplier, tc.authSeq, 0, reps...), cmdOpts{signer: w.supplier})
			resp, err := w.meter.Handle(w.ctx, b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if w.meter.Anchors() != before {
					t.Fatalf("anchors changed on a refused CS02b")
				}
				return
			}
			r, err := commands.ParseUpdateCredentialsResponse(w.open(resp, cmd, w.supplier, w.supplier))
			if err != nil || r.Status != commands.StatusSuccess || len(r.Results) != 2 {
				t.Fatalf("response %+v, %v", r, err)
			}
			sup, _ := w.meter.Anchors().Role(smki.RoleSupplier)
			if sup.Sequence != 2 || len(sup.Cells) != 2 || !sup.Cells[0].SignatureKey().Equal(&next.ds.PublicKey) {
				t.Fatalf("supplier anchor after update: seq %d, %d cells", sup.Sequence, len(sup.Cells))
			}
			// The supplier now signs with its new DS key; the old one is refused.
			w.supplier.ds, w.supplier.ka, w.supplier.kaS = next.ds, next.ka, next.kaS
		})
	}
}

func TestCS02bRefusals(t *testing.T) {
	w := newWorld(t, Electricity)
	noCells := replaceSupplier(t, w.netop, smki.RoleNetworkOperator)
	tests := []struct {
		name string
		code uint16
		by   *party
		body []byte
		want error
	}{
		{"supplierBySupplier targeting network operator cells", 0x0102, w.supplier, cs02b(t, commands.SupplierBySupplier, 5, 0, noCells...), ErrRoleNotAllowed},
		{"supplierByTransCoS signed by the supplier", 0x0107, w.supplier, cs02b(t, commands.SupplierByTransCoS, 5, 0, replaceSupplier(t, w.newSup, smki.RoleSupplier)...), ErrRoleNotAllowed},
		{"payload mode differs from the message code", 0x0102, w.supplier, cs02b(t, commands.SupplierByTransCoS, 5, 0, replaceSupplier(t, w.newSup, smki.RoleSupplier)...), ErrMalformed},
		{"not DER", 0x0102, w.supplier, []byte{0x30, 0x03, 0x01}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := w.command(tc.code, tc.body, cmdOpts{from: tc.by})
			if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("certificate of the wrong role gets badCertificate", func(t *testing.T) {
		reps := replaceSupplier(t, w.newSup, smki.RoleNetworkOperator)
		for i := range reps {
			reps[i].Target.Role = smki.RoleSupplier
		}
		b, cmd := w.command(0x0107, cs02b(t, commands.SupplierByTransCoS, 7, 0, reps...), cmdOpts{from: w.tcos})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := commands.ParseUpdateCredentialsResponse(w.open(resp, cmd, w.tcos, w.tcos))
		if err != nil || r.Status != commands.StatusBadCertificate {
			t.Fatalf("response %+v, %v", r, err)
		}
		if sup, _ := w.meter.Anchors().Role(smki.RoleSupplier); !sup.Cells[0].SignatureKey().Equal(&w.supplier.ds.PublicKey) {
			t.Fatal("supplier cells changed")
		}
	})
	t.Run("certificate not chaining to the root anchor gets badCertificate", func(t *testing.T) {
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rootCell, _ := NewCell(UsageDigitalSignature, Management, smki.MustParseEUI("90B3D51F30000000"), &stranger.PublicKey)
		an, _ := w.meter.Anchors().With(smki.RoleRoot, 1, rootCell)
		w.meter.anchors = an
		defer func() { w.meter.anchors = w.anchors }()
		b, cmd := w.command(0x0107, cs02b(t, commands.SupplierByTransCoS, 8, 0, replaceSupplier(t, w.newSup, smki.RoleSupplier)...), cmdOpts{from: w.tcos})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := commands.ParseUpdateCredentialsResponse(w.open(resp, cmd, w.tcos, w.tcos)); err != nil || r.Status != commands.StatusBadCertificate {
			t.Fatalf("response %+v, %v", r, err)
		}
	})
}

func TestChangeOfSupplier(t *testing.T) {
	w := newWorld(t, Electricity)
	// The root anchor is the CA that issued the organisation certificates,
	// so the chain check runs.
	_, caKey := testCA()
	rootCell, err := NewCell(UsageDigitalSignature, Management, smki.MustParseEUI("90B3D51F30000000"), &caKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if w.meter.anchors, err = w.anchors.With(smki.RoleRoot, 1, rootCell); err != nil {
		t.Fatal(err)
	}
	disable := must(EncodeSupplyCommand(CodeECS43))
	enable := must(EncodeSupplyCommand(CodeECS42))

	b, cmd := w.command(0x0107, cs02b(t, commands.SupplierByTransCoS, 2, 1, replaceSupplier(t, w.newSup, smki.RoleSupplier)...), cmdOpts{from: w.tcos})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatalf("CS02b supplierByTransCoS: %v", err)
	}
	if r, err := commands.ParseUpdateCredentialsResponse(w.open(resp, cmd, w.tcos, w.tcos)); err != nil || r.Status != commands.StatusSuccess {
		t.Fatalf("response %+v, %v", r, err)
	}
	tcos, _ := w.meter.Anchors().Role(smki.RoleTransitionalCoS)
	sup, _ := w.meter.Anchors().Role(smki.RoleSupplier)
	if tcos.Sequence != 2 || sup.Sequence != 1 || sup.Cells[0].Subject != w.newSup.eui {
		t.Fatalf("after CoS: TCoS seq %d, supplier seq %d, subject %s", tcos.Sequence, sup.Sequence, sup.Cells[0].Subject)
	}

	// The old supplier's signed command is refused...
	b, _ = w.command(CodeECS43, disable, cmdOpts{from: w.supplier})
	if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("old supplier after change of supplier: err = %v, want ErrUnknownSigner", err)
	}
	// ...as is its key under the new supplier's name...
	b, _ = w.command(CodeECS43, disable, cmdOpts{from: w.newSup, signer: w.supplier})
	if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("old supplier's key as the new supplier: err = %v, want ErrBadSignature", err)
	}
	if w.meter.Supply() != SupplyEnabled {
		t.Fatal("supply changed")
	}
	// ...and the new supplier's is accepted, its response MAC'd to the new supplier.
	for _, step := range []struct {
		code    uint16
		payload []byte
		want    SupplyState
	}{{CodeECS43, disable, SupplyDisabled}, {CodeECS42, enable, SupplyEnabled}} {
		b, cmd = w.command(step.code, step.payload, cmdOpts{from: w.newSup})
		resp, err = w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatalf("new supplier: %v", err)
		}
		if r, err := DecodeSupplyResponse(w.open(resp, cmd, w.newSup, w.newSup)); err != nil || !r.OK || w.meter.Supply() != step.want {
			t.Fatalf("new supplier's %04X: %+v, %v, supply %v", step.code, r, err, w.meter.Supply())
		}
	}
}

func TestRekey(t *testing.T) {
	tests := []struct {
		name  string
		usage x509.KeyUsage
		prof  smki.ProfileID
	}{
		{"digital signature", x509.KeyUsageDigitalSignature, smki.ProfileDeviceDS},
		{"key agreement", x509.KeyUsageKeyAgreement, smki.ProfileDeviceKA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Electricity)
			oldDS, oldKA := w.meter.SignaturePublicKey(), w.meter.AgreementPublicKey()

			b, cmd := w.command(CodeCS02c, must((&commands.IssueCredentials{KeyUsage: tc.usage}).Marshal()), cmdOpts{})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("CS02c: %v", err)
			}
			r, err := commands.ParseIssueCredentialsResponse(w.open(resp, cmd, w.supplier, w.supplier))
			if err != nil || r.Status != commands.StatusSuccess {
				t.Fatalf("CS02c response %+v, %v", r, err)
			}
			csr, err := smki.ParseCSR(r.CSR)
			if err != nil {
				t.Fatalf("CSR: %v", err)
			}
			if csr.Kind != smki.KindDevice || csr.EUI != w.meter.EUI() || csr.KeyUsage != tc.usage {
				t.Fatalf("CSR kind %v EUI %s usage %v", csr.Kind, csr.EUI, csr.KeyUsage)
			}
			if !w.meter.SignaturePublicKey().Equal(oldDS) || !w.meter.AgreementPublicKey().Equal(oldKA) {
				t.Fatal("keys changed before CS02d")
			}

			// A certificate for some other key is refused.
			stray, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			b, cmd = w.command(CodeCS02d, must((&commands.UpdateDeviceCertificate{Certificate: issue(t, tc.prof, 0, w.meter.EUI(), &stray.PublicKey)}).Marshal()), cmdOpts{})
			resp, err = w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := commands.ParseUpdateDeviceCertificateResponse(w.open(resp, cmd, w.supplier, w.supplier)); err != nil || r.Status != commands.StatusBadCertificate {
				t.Fatalf("CS02d with a stray key: %+v, %v", r, err)
			}

			cert := issue(t, tc.prof, 0, w.meter.EUI(), csr.PublicKey)
			b, cmd = w.command(CodeCS02d, must((&commands.UpdateDeviceCertificate{Certificate: cert}).Marshal()), cmdOpts{})
			resp, err = w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("CS02d: %v", err)
			}
			if r, err := commands.ParseUpdateDeviceCertificateResponse(w.open(resp, cmd, w.supplier, w.supplier)); err != nil || r.Status != commands.StatusSuccess {
				t.Fatalf("CS02d response %+v, %v", r, err)
			}
			newPub := csr.PublicKey
			if tc.usage == x509.KeyUsageDigitalSignature {
				if !w.meter.SignaturePublicKey().Equal(newPub) || !w.meter.AgreementPublicKey().Equal(oldKA) {
					t.Fatal("DS key not replaced, or KA key changed")
				}
				ds, _, _ := w.meter.Certificates()
				if string(ds) != string(cert) {
					t.Fatal("Certificates() does not return the installed DS certificate")
				}
			} else {
				kaPub, _ := newPub.ECDH()
				if !w.meter.AgreementPublicKey().Equal(kaPub) || !w.meter.SignaturePublicKey().Equal(oldDS) {
					t.Fatal("KA key not replaced, or DS key changed")
				}
			}
			// The meter works with its new key: a critical command (MAC'd to
			// the current KA key) is answered and the answer verifies with the
			// current DS key.
			b, cmd = w.command(CodeECS43, must(EncodeSupplyCommand(CodeECS43)), cmdOpts{})
			resp, err = w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			w.open(resp, cmd, w.supplier, w.supplier)
			// A command MAC'd to the old KA key is refused after a KA re-key.
			if tc.usage == x509.KeyUsageKeyAgreement {
				m := &commands.Message{CRA: commands.Command, Counter: w.counter + 10, Originator: w.supplier.eui, Recipient: w.meter.EUI(),
					Code: commands.MessageCode(CodeECS45), Payload: must(EncodeSupplyCommand(CodeECS45))}
				if err := commands.AddMAC(w.ctx, w.acb.ka, oldKA, m); err != nil {
					t.Fatal(err)
				}
				if _, err := w.meter.Handle(w.ctx, must(m.Marshal())); !errors.Is(err, ErrBadMAC) {
					t.Fatalf("command MAC'd to the old KA key: err = %v, want ErrBadMAC", err)
				}
			}
		})
	}
}
