package device

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// orgCerts issues the DS and KA organisation certificates of p in role r.
func orgCerts(t *testing.T, p *party, r smki.Role) (ds, ka []byte) {
	return issue(t, smki.ProfileOrgDS, r, p.eui, &p.ds.PublicKey), issue(t, smki.ProfileOrgKA, r, p.eui, &p.kaS.PublicKey)
}

// cs02b builds a CS02b command of mode with authorising sequence number
// seq, new floor floor (absent when nil) and the replacements.
func cs02b(t *testing.T, mode asn.CredentialsReplacementMode, seq int64, floor *int64, reps ...asn.TrustAnchorReplacement) []byte {
	t.Helper()
	return cs02bAt(t, mode, seq, floor, nil, reps...)
}

func cs02bAt(t *testing.T, mode asn.CredentialsReplacementMode, seq int64, floor *int64, at *asn.GeneralizedTime, reps ...asn.TrustAnchorReplacement) []byte {
	t.Helper()
	c := &asn.UpdateSecurityCredentialsCommand{
		AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{CredentialsReplacementMode: mode,
			AuthorisingRemotePartySeqNumber: asn.SeqNumber(seq)},
		Replacements:                  reps,
		CertificationPathCertificates: []asn.Certificate{},
		ExecutionDateTime:             at,
	}
	if floor != nil {
		f := asn.SeqNumber(*floor)
		c.AuthorisingRemotePartyControl.NewRemotePartyFloorSeqNumber = &f
	}
	return asnBytes(t, c)
}

// replaceSupplier returns the replacements of the supplier's DS and KA
// cells by p's keys, certified in the supplier role.
func replaceSupplier(t *testing.T, p *party) []asn.TrustAnchorReplacement {
	return replaceRole(t, p, smki.RoleSupplier, smki.RoleSupplier)
}

// replaceRole returns the replacements of target's DS and KA cells by p's
// keys, certified in role certified.
func replaceRole(t *testing.T, p *party, certified, target smki.Role) []asn.TrustAnchorReplacement {
	ds, ka := orgCerts(t, p, certified)
	r := asn.RemotePartyRole(target)
	return []asn.TrustAnchorReplacement{
		{ReplacementCertificate: asn.Certificate{Raw: ds}, TargetTrustAnchorCell: asn.Cell(r, asn.DigitalSignature, asn.CellManagement)},
		{ReplacementCertificate: asn.Certificate{Raw: ka}, TargetTrustAnchorCell: asn.Cell(r, asn.KeyAgreement, asn.CellManagement)},
	}
}

func cs02a(t testing.TB, cell asn.TrustAnchorCellIdentifier, roles ...asn.RemotePartyRole) []byte {
	return asnBytes(t, &asn.ProvideSecurityCredentialDetailsCommand{AuthorisingRemotePartyTACellIdentifier: cell,
		RemotePartyRolesCredentialsRequired: roles})
}

func TestCS02aListsAnchors(t *testing.T) {
	w := newWorld(t, Electricity)
	acbCell := asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement)
	tcosCell := asn.Cell(asn.RoleTransitionalCoS, asn.DigitalSignature, asn.CellManagement)
	tests := []struct {
		name string
		from *party
		cell asn.TrustAnchorCellIdentifier
		opts cmdOpts
	}{
		{"ACB-authorised, MAC'd", w.acb, acbCell, cmdOpts{}},
		{"TCoS-authorised, signed without MAC header", w.tcos, tcosCell, cmdOpts{sign: true, noMAC: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.from = tc.from
			b, cmd := w.command(CodeCS02a, cs02a(t, tc.cell, asn.RoleSupplier, asn.RoleRoot, asn.RoleLoadController), tc.opts)
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("CS02a: %v", err)
			}
			r := w.open(resp, cmd, tc.from)
			d, err := asn.Parse[asn.ProvideSecurityCredentialDetailsResponse](r.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got := d.RemotePartyDetails
			if len(got) != 3 || got[0].StatusCode != asn.StatusSuccess || got[0].CurrentSeqNumber == nil || *got[0].CurrentSeqNumber != 1 ||
				len(got[0].TrustAnchorCellDetails) != 2 || got[1].StatusCode != asn.StatusTrustAnchorNotFound || got[1].CurrentSeqNumber != nil ||
				got[2].StatusCode != asn.StatusOther {
				t.Fatalf("details %+v", got)
			}
			sup := w.supplier.cells(t)
			c := got[0].TrustAnchorCellDetails[0]
			if c.SubjectUniqueID.EUI() != w.supplier.eui || !c.KeyUsage.Only(asn.DigitalSignature) || [8]byte(c.SubjectKeyIdentifier) != sup[0].SubjectKeyID {
				t.Errorf("supplier DS cell %+v", c)
			}
		})
	}
	refusals := []struct {
		name string
		from *party
		cell asn.TrustAnchorCellIdentifier
		opts cmdOpts
		want error
	}{
		{"DS cell but MAC'd without signature", w.tcos, tcosCell, cmdOpts{}, ErrBadSignature},
		{"ACB cell from the supplier", w.supplier, acbCell, cmdOpts{}, ErrRoleNotAllowed},
		{"TCoS cell signed by the supplier", w.supplier, tcosCell, cmdOpts{sign: true, noMAC: true}, ErrRoleNotAllowed},
		{"TCoS cell signed by a key not in the anchors", w.tcos, tcosCell, cmdOpts{sign: true, noMAC: true, signer: w.attacker}, ErrBadSignature},
		{"signed and MAC'd", w.tcos, tcosCell, cmdOpts{sign: true}, ErrMalformed},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.from = tc.from
			b, _ := w.command(CodeCS02a, cs02a(t, tc.cell, asn.RoleSupplier), tc.opts)
			if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func int64p(v int64) *int64 { return &v }

func TestCS02bSequenceNumbers(t *testing.T) {
	w := newWorld(t, Electricity)
	next := newParty(t, "90B3D51F30000002") // the supplier's own new keys, same EUI
	reps := replaceSupplier(t, next)
	tests := []struct {
		name string
		seq  int64
		want error
	}{
		{"stale: equal to the held sequence number", 1, ErrStaleSequence},
		{"stale: below it", 0, ErrStaleSequence},
		{"stale: negative", -5, ErrStaleSequence},
		{"fresh", 2, nil},
		{"stale after the update", 2, ErrStaleSequence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.meter.Anchors()
			b, cmd := w.command(0x0102, cs02b(t, asn.SupplierBySupplier, tc.seq, nil, reps...), cmdOpts{signer: w.supplier})
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
			r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](w.open(resp, cmd, w.supplier).Payload)
			if err != nil || r.ExecutionOutcome == nil {
				t.Fatalf("response %+v, %v", r, err)
			}
			o := r.ExecutionOutcome
			if o.AuthorisingRemotePartySeqNumber != 2 || o.CredentialsReplacementMode != asn.SupplierBySupplier || len(o.ReplacementOutcomes) != 2 {
				t.Fatalf("outcome %+v", o)
			}
			for i, ro := range o.ReplacementOutcomes {
				if ro.StatusCode != asn.StatusSuccess || !ro.Replaced() || ro.ExistingSubjectUniqueID.EUI() != w.supplier.eui ||
					[8]byte(ro.ReplacingSubjectKeyID) != next.cells(t)[i].SubjectKeyID {
					t.Errorf("outcome %d: %+v", i, ro)
				}
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
	tests := []struct {
		name string
		code uint16
		by   *party
		opts cmdOpts
		body []byte
		want error
	}{
		{"supplierBySupplier targeting network operator cells", 0x0102, w.supplier, cmdOpts{},
			cs02b(t, asn.SupplierBySupplier, 5, nil, replaceRole(t, w.netop, smki.RoleNetworkOperator, smki.RoleNetworkOperator)...), ErrRoleNotAllowed},
		{"supplierByTransCoS signed by the supplier", 0x0107, w.supplier, cmdOpts{},
			cs02b(t, asn.SupplierByTransCoS, 5, nil, replaceSupplier(t, w.newSup)...), ErrRoleNotAllowed},
		{"payload mode differs from the message code", 0x0102, w.supplier, cmdOpts{},
			cs02b(t, asn.SupplierByTransCoS, 5, nil, replaceSupplier(t, w.newSup)...), ErrMalformed},
		{"not DER", 0x0102, w.supplier, cmdOpts{}, []byte{0x30, 0x03, 0x01}, ErrMalformed},
		{"0x0107 unsigned", 0x0107, w.tcos, cmdOpts{noSign: true},
			cs02b(t, asn.SupplierByTransCoS, 5, nil, replaceSupplier(t, w.newSup)...), ErrBadSignature},
		{"0x0107 without MAC header", 0x0107, w.tcos, cmdOpts{noMAC: true},
			cs02b(t, asn.SupplierByTransCoS, 5, nil, replaceSupplier(t, w.newSup)...), ErrNotCommand},
		{"0x0104 from the supplier", 0x0104, w.supplier, cmdOpts{},
			cs02b(t, asn.AccessControlBrokerByACB, 5, nil), ErrRoleNotAllowed},
		{"0x0108 MAC'd", 0x0108, w.supplier, cmdOpts{},
			cs02b(t, asn.AnyExceptAbnormalRootByRecovery, 5, nil), ErrMalformed},
		{"authorising cell of another role", 0x0107, w.tcos, cmdOpts{}, func() []byte {
			c := asn.Cell(asn.RoleSupplier, asn.DigitalSignature, asn.CellManagement)
			return asnBytes(t, &asn.UpdateSecurityCredentialsCommand{AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{
				CredentialsReplacementMode: asn.SupplierByTransCoS, AuthorisingRemotePartyTACellIdentifier: &c, AuthorisingRemotePartySeqNumber: 5},
				Replacements: replaceSupplier(t, w.newSup), CertificationPathCertificates: []asn.Certificate{}})
		}(), ErrRoleNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.from = tc.by
			b, _ := w.command(tc.code, tc.body, tc.opts)
			before := w.meter.Anchors()
			if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if w.meter.Anchors() != before {
				t.Fatal("anchors changed")
			}
		})
	}

	badCert := func(t *testing.T, seq int64, reps []asn.TrustAnchorReplacement) {
		t.Helper()
		b, cmd := w.command(0x0107, cs02b(t, asn.SupplierByTransCoS, seq, nil, reps...), cmdOpts{from: w.tcos})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](w.open(resp, cmd, w.tcos).Payload)
		if err != nil || r.ExecutionOutcome == nil {
			t.Fatalf("response %+v, %v", r, err)
		}
		bad := 0
		for _, ro := range r.ExecutionOutcome.ReplacementOutcomes {
			if ro.StatusCode == asn.StatusBadCertificate {
				bad++
			} else if ro.StatusCode != asn.StatusOther {
				t.Errorf("outcome %+v: want badCertificate or other", ro)
			}
			if ro.Replaced() || ro.ExistingSubjectUniqueID.EUI() != w.supplier.eui {
				t.Errorf("outcome %+v: replaced, or the existing subject is not the supplier", ro)
			}
		}
		if bad == 0 {
			t.Error("no replacement outcome says badCertificate")
		}
		if sup, _ := w.meter.Anchors().Role(smki.RoleSupplier); !sup.Cells[0].SignatureKey().Equal(&w.supplier.ds.PublicKey) {
			t.Fatal("supplier cells changed")
		}
		if tcos, _ := w.meter.Anchors().Role(smki.RoleTransitionalCoS); tcos.Sequence != uint64(seq) {
			t.Errorf("TCoS sequence number %d, want %d: the authorising number is spent", tcos.Sequence, seq)
		}
	}
	t.Run("certificate of the wrong role gets badCertificate", func(t *testing.T) {
		badCert(t, 7, replaceRole(t, w.newSup, smki.RoleNetworkOperator, smki.RoleSupplier))
	})
	t.Run("certificate not chaining to the root anchor gets badCertificate", func(t *testing.T) {
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rootCell, _ := NewCell(UsageDigitalSignature, asn.CellManagement, smki.MustParseEUI("90B3D51F30000000"), &stranger.PublicKey)
		an, _ := w.meter.Anchors().With(smki.RoleRoot, 1, rootCell)
		w.meter.anchors = an
		defer func() { w.meter.anchors = w.anchors }()
		badCert(t, 8, replaceSupplier(t, w.newSup))
	})
}

func TestChangeOfSupplier(t *testing.T) {
	w := newWorld(t, Electricity)
	// The root anchor is the CA that issued the organisation certificates,
	// so the chain check runs.
	_, caKey := testCA()
	rootCell, err := NewCell(UsageDigitalSignature, asn.CellManagement, smki.MustParseEUI("90B3D51F30000000"), &caKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if w.meter.anchors, err = w.anchors.With(smki.RoleRoot, 1, rootCell); err != nil {
		t.Fatal(err)
	}
	disable, enable := loadSwitch(t, CodeECS43), loadSwitch(t, CodeECS42)

	b, cmd := w.command(0x0107, cs02b(t, asn.SupplierByTransCoS, 2, int64p(0), replaceSupplier(t, w.newSup)...), cmdOpts{from: w.tcos})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatalf("CS02b supplierByTransCoS: %v", err)
	}
	if r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](w.open(resp, cmd, w.tcos).Payload); err != nil || r.ExecutionOutcome == nil ||
		r.ExecutionOutcome.ReplacementOutcomes[0].ReplacingSubjectUniqueID.EUI() != w.newSup.eui {
		t.Fatalf("response %+v, %v", r, err)
	}
	tcos, _ := w.meter.Anchors().Role(smki.RoleTransitionalCoS)
	sup, _ := w.meter.Anchors().Role(smki.RoleSupplier)
	if tcos.Sequence != 2 || sup.Sequence != 0 || sup.Cells[0].Subject != w.newSup.eui {
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
	// ...and the new supplier's is accepted, its response addressed to the
	// new supplier.
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
		res, err := actionResults(accessResponse(t, w.open(resp, cmd, w.newSup).Payload))
		if err != nil || res[0] != 0 || w.meter.Supply() != step.want {
			t.Fatalf("new supplier's %04X: %v, %v, supply %v", step.code, res, err, w.meter.Supply())
		}
	}
	// A sensitive read is now encrypted to the new supplier.
	b, cmd = w.command(CodeECS17b, apdu(t, importEnergyRequest(w, w.newSup)), cmdOpts{from: w.newSup})
	resp, err = w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	w.plaintexts(w.open(resp, cmd, w.newSup), w.newSup)
}

// TestCS02bFutureDated schedules a supplierBySupplier update, cancels
// another, and sees the first execute at its time with the 0x00CB alert.
func TestCS02bFutureDated(t *testing.T) {
	var alerts []Alert
	w := newWorld(t, Electricity)
	w.meter.env.alerts = func(_ context.Context, a Alert) { alerts = append(alerts, a) }
	next := newParty(t, "90B3D51F30000002")
	at := asn.NewGeneralizedTime(testNow.Add(time.Hour))

	b, cmd := w.command(0x0102, cs02bAt(t, asn.SupplierBySupplier, 2, nil, &at, replaceSupplier(t, next)...), cmdOpts{})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](w.open(resp, cmd, w.supplier).Payload)
	if err != nil || r.ExecutionOutcome != nil {
		t.Fatalf("future-dated response %+v, %v: want commandAccepted alone", r, err)
	}
	if sup, _ := w.meter.Anchors().Role(smki.RoleSupplier); sup.Sequence != 2 || !sup.Cells[0].SignatureKey().Equal(&w.supplier.ds.PublicKey) {
		t.Fatalf("after a future-dated CS02b: seq %d (want 2, spent), cells replaced early", sup.Sequence)
	}
	// A network operator update, scheduled then cancelled, never runs.
	netNext := newParty(t, "90B3D51F30000003")
	b, _ = w.command(0x0103, cs02bAt(t, asn.NetworkOperatorByNetworkOperator, 2, nil, &at, replaceRole(t, netNext, smki.RoleNetworkOperator, smki.RoleNetworkOperator)...), cmdOpts{from: w.netop})
	if _, err := w.meter.Handle(w.ctx, b); err != nil {
		t.Fatal(err)
	}
	cancel := asn.CancelTime()
	b, cmd = w.command(0x0103, cs02bAt(t, asn.NetworkOperatorByNetworkOperator, 3, nil, &cancel), cmdOpts{from: w.netop})
	resp, err = w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](w.open(resp, cmd, w.netop).Payload); err != nil || r.ExecutionOutcome != nil {
		t.Fatalf("cancel response %+v, %v", r, err)
	}

	w.now = testNow.Add(time.Hour)
	w.meter.Tick(w.ctx)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want one 0x00CB", len(alerts))
	}
	m, err := commands.Parse(alerts[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	if m.CRA != commands.Alert || m.Code != commands.MessageCode(CodeCS02bAlert) || m.Recipient != w.supplier.eui || m.Form() != commands.FormSigned {
		t.Fatalf("alert %s %s to %s in form %s", m.CRA, m.Code, m.Recipient, m.Form())
	}
	if err := commands.VerifySignature(w.meter.SignaturePublicKey(), m); err != nil {
		t.Fatal(err)
	}
	a, err := asn.Parse[asn.UpdateSecurityCredentialsAlert](m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if a.AlertCode != asn.AlertFutureDatedSuccess || a.ExecutionDateTime != at || a.ExecutionOutcome.AuthorisingRemotePartySeqNumber != 2 ||
		len(a.ExecutionOutcome.ReplacementOutcomes) != 2 || !a.ExecutionOutcome.ReplacementOutcomes[0].Replaced() {
		t.Fatalf("alert %+v", a)
	}
	if sup, _ := w.meter.Anchors().Role(smki.RoleSupplier); !sup.Cells[0].SignatureKey().Equal(&next.ds.PublicKey) {
		t.Fatal("supplier cells not replaced at the execution time")
	}
	if no, _ := w.meter.Anchors().Role(smki.RoleNetworkOperator); !no.Cells[0].SignatureKey().Equal(&w.netop.ds.PublicKey) {
		t.Fatal("the cancelled network operator update ran")
	}
}

func TestRekey(t *testing.T) {
	tests := []struct {
		name  string
		usage x509.KeyUsage
		bit   asn.KeyUsageBit
		prof  smki.ProfileID
	}{
		{"digital signature", x509.KeyUsageDigitalSignature, asn.DigitalSignature, smki.ProfileDeviceDS},
		{"key agreement", x509.KeyUsageKeyAgreement, asn.KeyAgreement, smki.ProfileDeviceKA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Electricity)
			oldDS, oldKA := w.meter.SignaturePublicKey(), w.meter.AgreementPublicKey()

			b, cmd := w.command(CodeCS02c, asnBytes(t, &asn.IssueSecurityCredentialsCommand{KeyUsage: asn.NewKeyUsage(tc.bit)}), cmdOpts{})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("CS02c: %v", err)
			}
			r, err := asn.Parse[asn.IssueSecurityCredentialsResponse](w.open(resp, cmd, w.supplier).Payload)
			if err != nil || r.CertificationRequest == nil {
				t.Fatalf("CS02c response %+v, %v", r, err)
			}
			csr, err := r.CertificationRequest.Parse()
			if err != nil {
				t.Fatalf("CSR: %v", err)
			}
			if csr.Kind != smki.KindDevice || csr.EUI != w.meter.EUI() || csr.KeyUsage != tc.usage {
				t.Fatalf("CSR kind %v EUI %s usage %v", csr.Kind, csr.EUI, csr.KeyUsage)
			}
			if !w.meter.SignaturePublicKey().Equal(oldDS) || !w.meter.AgreementPublicKey().Equal(oldKA) {
				t.Fatal("keys changed before CS02d")
			}

			install := func(cert []byte) asn.UpdateDeviceCertificateResponse {
				t.Helper()
				b, cmd := w.command(CodeCS02d, asnBytes(t, &asn.UpdateDeviceCertificateCommand{Certificate: asn.Certificate{Raw: cert}}), cmdOpts{})
				ds := w.meter.SignaturePublicKey()
				resp, err := w.meter.Handle(w.ctx, b)
				if err != nil {
					t.Fatalf("CS02d: %v", err)
				}
				// The response is signed with the key the meter held when the
				// command came (constructed vector 20).
				r := openResponse(t, w.ctx, resp, cmd, w.meter, nil, ds)
				v, err := asn.Parse[asn.UpdateDeviceCertificateResponse](r.Payload)
				if err != nil {
					t.Fatal(err)
				}
				return *v
			}
			stray, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			other := smki.MustParseEUI("0012A3FFFE00FFFF")
			for _, bad := range []struct {
				name string
				cert []byte
				want asn.UpdateDeviceCertificateResponse
			}{
				{"not a certificate", []byte{0x30, 0x03, 0x02, 0x01, 0x00}, 1},
				{"an organisation certificate", issue(t, smki.ProfileOrgDS, smki.RoleSupplier, w.supplier.eui, &w.supplier.ds.PublicKey), 1},
				{"another device's certificate", issue(t, tc.prof, 0, other, csr.PublicKey), 2},
				{"a certificate of some other key", issue(t, tc.prof, 0, w.meter.EUI(), &stray.PublicKey), 5},
			} {
				if got := install(bad.cert); got != bad.want {
					t.Errorf("CS02d with %s: %v, want %v", bad.name, got, bad.want)
				}
			}

			cert := issue(t, tc.prof, 0, w.meter.EUI(), csr.PublicKey)
			if got := install(cert); got != 0 {
				t.Fatalf("CS02d: %v", got)
			}
			if got := install(cert); got != 4 {
				t.Errorf("CS02d again, no key pending: %v, want noCorrespondingKeyPairGenerated", got)
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
			b, cmd = w.command(CodeECS43, loadSwitch(t, CodeECS43), cmdOpts{})
			resp, err = w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			w.open(resp, cmd, w.supplier)
			// A command MAC'd to the old KA key is refused after a KA re-key.
			if tc.usage == x509.KeyUsageKeyAgreement {
				m := &commands.Message{CRA: commands.Command, Counter: w.counter + 10, Originator: w.supplier.eui, Recipient: w.meter.EUI(),
					Code: commands.MessageCode(CodeECS45), Payload: apdu(t, dlms.LoadSwitchStatusRequest(testInvoke))}
				if err := commands.AddMAC(w.ctx, w.acb.ka, oldKA, m); err != nil {
					t.Fatal(err)
				}
				if _, err := w.meter.Handle(w.ctx, must(m.Marshal())); !errors.Is(err, ErrBadMAC) {
					t.Fatalf("command MAC'd to the old KA key: err = %v, want ErrBadMAC", err)
				}
			}
		})
	}
	t.Run("invalid key usage", func(t *testing.T) {
		w := newWorld(t, Electricity)
		b, cmd := w.command(CodeCS02c, asnBytes(t, &asn.IssueSecurityCredentialsCommand{KeyUsage: asn.NewKeyUsage(asn.KeyCertSign)}), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := asn.Parse[asn.IssueSecurityCredentialsResponse](w.open(resp, cmd, w.supplier).Payload)
		if err != nil || r.ResponseCode == nil || *r.ResponseCode != 1 {
			t.Fatalf("response %+v, %v: want invalidKeyUsage", r, err)
		}
	})
}
