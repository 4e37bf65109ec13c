package device

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// The conformance test builds meters holding the keys and trust anchors of
// the constructed vectors (testdata/constructed/README.md) and feeds them
// the vectors' commands: each must execute and be answered in the form and
// layout of the vector's response, byte for byte where the response does
// not depend on a fresh signature, the meter's model or its own counter.

// vectorFile is the part of a constructed vector the test reads.
type vectorFile struct {
	Name         string `json:"name"`
	MessageHex   string `json:"message_hex"`
	Certificates []struct {
		Name   string `json:"name"`
		DERHex string `json:"der_hex"`
	} `json:"certificates"`
	Expected struct {
		Encryption []struct {
			Plaintext string `json:"plaintext"`
		} `json:"encryption"`
	} `json:"expected"`
}

func loadVector(t *testing.T, prefix string) *vectorFile {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "constructed", prefix+"-*.json"))
	if err != nil || len(names) != 1 {
		t.Fatalf("vector %s: %v, %d files", prefix, err, len(names))
	}
	raw, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", names[0], err)
	}
	return &v
}

func (v *vectorFile) message(t *testing.T) []byte {
	t.Helper()
	b, err := hex.DecodeString(v.MessageHex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (v *vectorFile) parsed(t *testing.T) *commands.Message {
	t.Helper()
	m, err := commands.Parse(v.message(t))
	if err != nil {
		t.Fatalf("vector %s: %v", v.Name, err)
	}
	return m
}

func (v *vectorFile) certificate(t *testing.T, name string) []byte {
	t.Helper()
	for _, c := range v.Certificates {
		if c.Name == name {
			b, err := hex.DecodeString(c.DERHex)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("vector %s has no certificate %s", v.Name, name)
	return nil
}

// vectorKey derives a vector party's private key: the scalar is
// SHA-256("metertrust-vector-" + name) mod n.
func vectorKey(t testing.TB, name string) *ecdsa.PrivateKey {
	t.Helper()
	h := sha256.Sum256([]byte("metertrust-vector-" + name))
	d := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), elliptic.P256().Params().N)
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func vectorAgreement(t testing.TB, name string) *commands.ECDHKey {
	t.Helper()
	k, err := commands.NewECDHKeyFromECDSA(vectorKey(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	vecSupplier  = smki.MustParseEUI("90B3D51F30010001")
	vecSupplier2 = smki.MustParseEUI("90B3D51F30010002")
	vecACB       = smki.MustParseEUI("90B3D51F30000002")
	vecTCoS      = smki.MustParseEUI("90B3D51F30000005")
	vecNetop     = smki.MustParseEUI("90B3D51F30020001")
	vecOU        = smki.MustParseEUI("90B3D51F30090001")
	vecESME      = smki.MustParseEUI("00DB0000000000A1")
	vecGSME      = smki.MustParseEUI("00DB0000000000A2")
	// vecNow is the time of vector 04's header date-time.
	vecNow = time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC)
)

// fixedKeys is a KeyGenerator that hands out one given key: the vectors'
// esme-ds-new for CS02c.
type fixedKeys struct{ key *ecdsa.PrivateKey }

func (f fixedKeys) GenerateKey(context.Context, KeyUsage) (crypto.Signer, error) { return f.key, nil }

// vectorMeter is the meter of the vectors: its keys, and anchors of root
// (the vectors' root CA), supplier (sequence 5: DS, KA and prepayment KA),
// network operator (1: DS, KA), ACB (0: KA) and TCoS (tcosSeq: DS).
func vectorMeter(t *testing.T, kind Kind, tcosSeq uint64, cfg Config) *Meter {
	t.Helper()
	cell := func(u KeyUsage, cu asn.CellUsage, eui smki.EUI, key string) *Cell {
		c, err := NewCell(u, cu, eui, &vectorKey(t, key).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root, err := smki.ParseCertificate(loadVector(t, "11").certificate(t, "root-ca"))
	if err != nil {
		t.Fatal(err)
	}
	rootCell, err := NewCell(UsageDigitalSignature, asn.CellManagement, root.EUI, root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	mg, pp := asn.CellManagement, asn.CellPrePaymentTopUp
	an := NewAnchors()
	for _, r := range []struct {
		role  smki.Role
		seq   uint64
		cells []*Cell
	}{
		{smki.RoleRoot, 0, []*Cell{rootCell}},
		{smki.RoleSupplier, 5, []*Cell{cell(UsageDigitalSignature, mg, vecSupplier, "supplier-ds"), cell(UsageKeyAgreement, mg, vecSupplier, "supplier-ka"),
			cell(UsageKeyAgreement, pp, vecSupplier, "supplier-ka-pp")}},
		{smki.RoleNetworkOperator, 1, []*Cell{cell(UsageDigitalSignature, mg, vecNetop, "netop-ds"), cell(UsageKeyAgreement, mg, vecNetop, "netop-ka")}},
		{smki.RoleAccessControlBroker, 0, []*Cell{cell(UsageKeyAgreement, mg, vecACB, "acb-ka")}},
		{smki.RoleTransitionalCoS, tcosSeq, []*Cell{cell(UsageDigitalSignature, mg, vecTCoS, "tcos-ds")}},
	} {
		if an, err = an.With(r.role, r.seq, r.cells...); err != nil {
			t.Fatal(err)
		}
	}
	eui, ds, ka := vecESME, "esme-ds", "esme-ka"
	if kind == Gas {
		eui, ds, ka = vecGSME, "gsme-ds", "gsme-ka"
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return vecNow }
	}
	m, err := New(Identity{EUI: eui, Kind: kind, Signer: vectorKey(t, ds), KeyAgreement: vectorAgreement(t, ka)}, an, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// handleVector hands vector cmd to m and returns the parsed response.
func handleVector(t *testing.T, m *Meter, cmd string) *commands.Message {
	t.Helper()
	resp, err := m.Handle(context.Background(), loadVector(t, cmd).message(t))
	if err != nil {
		t.Fatalf("vector %s refused: %v", cmd, err)
	}
	r, err := commands.Parse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameSigned checks that got is signed by signer without MAC header and
// equals vector want in every byte the signature covers.
func sameSigned(t *testing.T, got *commands.Message, want string, signer string) {
	t.Helper()
	w := loadVector(t, want).parsed(t)
	if got.Form() != commands.FormSigned || w.Form() != commands.FormSigned {
		t.Fatalf("response in form %s, vector %s in %s", got.Form(), want, w.Form())
	}
	g, _ := got.SignedData()
	e, _ := w.SignedData()
	if !bytes.Equal(g, e) {
		t.Fatalf("signed bytes differ from vector %s:\n got %X\nwant %X", want, g, e)
	}
	if err := commands.VerifySignature(&vectorKey(t, signer).PublicKey, got); err != nil {
		t.Fatalf("signature with %s: %v", signer, err)
	}
}

func TestConformanceVectors(t *testing.T) {
	ctx := context.Background()

	t.Run("03 ECS43 MAC'd critical command, answered as 04", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		r := handleVector(t, m, "03")
		sameSigned(t, r, "04", "esme-ds")
		if m.Supply() != SupplyDisabled {
			t.Fatalf("supply %v after ECS43", m.Supply())
		}
		if _, err := m.Handle(ctx, loadVector(t, "03").message(t)); !isReason(err, ReasonReplay) {
			t.Fatalf("vector 03 again: %v", err)
		}
	})

	t.Run("05 ECS17b, answered in the layout of 06", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		r := handleVector(t, m, "05")
		want := loadVector(t, "06")
		w := want.parsed(t)
		if r.Form() != commands.FormMAC || r.Counter != w.Counter || r.Recipient != w.Recipient || r.DateTime != nil || r.URP != nil || len(r.Payload) != len(w.Payload) {
			t.Fatalf("response %s ctr %x to %s, %d-byte payload; vector 06 %s ctr %x to %s, %d bytes",
				r.Form(), r.Counter, r.Recipient, len(r.Payload), w.Form(), w.Counter, w.Recipient, len(w.Payload))
		}
		if err := commands.CheckMAC(ctx, vectorAgreement(t, "supplier-ka"), m.AgreementPublicKey(), r); err != nil {
			t.Fatalf("MAC with supplier-ka: %v", err)
		}
		pts, err := commands.OpenPayload(ctx, vectorAgreement(t, "supplier-ka"), m.AgreementPublicKey(), r)
		if err != nil || len(pts) != 1 {
			t.Fatalf("decrypting with supplier-ka: %d blocks, %v", len(pts), err)
		}
		got, err := dlms.ReadImportEnergy(plainData(t, pts[0]))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(got.ActiveImport.Value) != m.Register(vecNow) {
			t.Errorf("active import %d, the meter's register %d", got.ActiveImport.Value, m.Register(vecNow))
		}
		// The vector's plaintext with the meter's values is the meter's
		// plaintext; the response with the vector's ciphered block is the
		// vector's payload.
		vpt, _ := hex.DecodeString(want.Expected.Encryption[0].Plaintext)
		exp, err := dlms.ReadImportEnergy(plainData(t, vpt))
		if err != nil {
			t.Fatal(err)
		}
		exp.ActiveImport.Value, exp.ReactiveImport.Value = got.ActiveImport.Value, got.ReactiveImport.Value
		if b, _ := exp.Data().AppendBinary(nil); !bytes.Equal(b, pts[0]) {
			t.Errorf("plaintext %X, vector 06's layout gives %X", pts[0], b)
		}
		a, _ := dlms.Parse(r.Payload)
		wa, _ := dlms.Parse(w.Payload)
		*dlms.CipheredBlocks(a)[0] = *dlms.CipheredBlocks(wa)[0]
		if b, _ := a.MarshalBinary(); !bytes.Equal(b, w.Payload) {
			t.Errorf("payload with the vector's ciphered block:\n got %X\nwant %X", b, w.Payload)
		}
	})

	t.Run("07 URP ECS50, answered as 08", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		resp, err := m.Handle(ctx, loadVector(t, "07").message(t))
		if err != nil {
			t.Fatal(err)
		}
		if want := loadVector(t, "08").message(t); !bytes.Equal(resp, want) {
			t.Fatalf("response\n got %X\nwant %X", resp, want)
		}
		if cin, ok := m.CIN(); !ok || cin != "4721" {
			t.Fatalf("CIN %q, %t", cin, ok)
		}
	})

	t.Run("09 URP ECS22b with certificate, answered in the 26-byte form of 10", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		r := handleVector(t, m, "09")
		w := loadVector(t, "10").parsed(t)
		if r.OtherInfoForm() != 26 || r.URP.EUI != vecOU || r.URP.Counter != w.URP.Counter || r.Counter != w.Counter || r.Recipient != vecACB {
			t.Fatalf("response other-information form %d, SRP %s counter %x, header counter %x to %s", r.OtherInfoForm(), r.URP.EUI, r.URP.Counter, r.Counter, r.Recipient)
		}
		if err := commands.CheckMAC(ctx, vectorAgreement(t, "acb-ka"), m.AgreementPublicKey(), r); err != nil {
			t.Fatalf("MAC with acb-ka: %v", err)
		}
		// Only the third party reads it, with the key its certificate
		// carried and the meter's supplementary originator counter.
		if _, err := commands.OpenPayload(ctx, vectorAgreement(t, "acb-ka"), m.AgreementPublicKey(), r); err == nil {
			t.Fatal("the ACB decrypted the third party's profile")
		}
		pts, err := commands.OpenPayload(ctx, vectorAgreement(t, "ou-ka"), m.AgreementPublicKey(), r)
		if err != nil {
			t.Fatalf("decrypting with ou-ka: %v", err)
		}
		p, err := dlms.ReadHalfHourProfile(plainData(t, pts[0]))
		if err != nil || len(p.Records) != 4 || !p.Records[0].At().Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("profile %+v, %v: want the 4 half hours from 00:00", p, err)
		}
		if len(r.Payload) != len(w.Payload) {
			t.Fatalf("payload of %d bytes, vector 10's %d", len(r.Payload), len(w.Payload))
		}
		a, _ := dlms.Parse(r.Payload)
		wa, _ := dlms.Parse(w.Payload)
		*dlms.CipheredBlocks(a)[0] = *dlms.CipheredBlocks(wa)[0]
		if b, _ := a.MarshalBinary(); !bytes.Equal(b, w.Payload) {
			t.Errorf("payload with the vector's ciphered block:\n got %X\nwant %X", b, w.Payload)
		}
	})

	t.Run("11 CS02b 0x0107 change of supplier, answered as 12", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		r := handleVector(t, m, "11")
		sameSigned(t, r, "12", "esme-ds")
		sup, _ := m.Anchors().Role(smki.RoleSupplier)
		if len(sup.Cells) != 3 || sup.Sequence != 0 {
			t.Fatalf("supplier anchor: %d cells, sequence %d", len(sup.Cells), sup.Sequence)
		}
		for _, c := range sup.Cells {
			if c.Subject != vecSupplier2 {
				t.Fatalf("supplier cell of %s after the change of supplier", c.Subject)
			}
		}
		// The meter now trusts supplier2 and no longer the old supplier.
		for _, tc := range []struct {
			from, key string
			eui       smki.EUI
			want      error
		}{{"supplier", "supplier-ds", vecSupplier, ErrUnknownSigner}, {"supplier2", "supplier2-ds", vecSupplier2, nil}} {
			c := &commands.Message{CRA: commands.Command, Counter: 0x1A300000000, Originator: tc.eui, Recipient: vecESME,
				Code: commands.MessageCode(CodeECS43), Payload: loadSwitch(t, CodeECS43)}
			if err := commands.Sign(nil, vectorKey(t, tc.key), c); err != nil {
				t.Fatal(err)
			}
			if err := commands.AddMAC(ctx, vectorAgreement(t, "acb-ka"), m.AgreementPublicKey(), c); err != nil {
				t.Fatal(err)
			}
			resp, err := m.Handle(ctx, must(c.Marshal()))
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("ECS43 from %s: %v, want %v", tc.from, err, tc.want)
				}
				continue
			}
			if err != nil {
				t.Fatalf("ECS43 from %s: %v", tc.from, err)
			}
			openResponse(t, ctx, resp, c, m, nil, nil)
		}
	})

	for _, tc := range []struct{ name, cmd, resp string }{
		{"13 CS02a ACB-authorised, answered as 14", "13", "14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := vectorMeter(t, Electricity, 11, Config{})
			resp, err := m.Handle(ctx, loadVector(t, tc.cmd).message(t))
			if err != nil {
				t.Fatal(err)
			}
			if want := loadVector(t, tc.resp).message(t); !bytes.Equal(resp, want) {
				t.Fatalf("response\n got %X\nwant %X", resp, want)
			}
		})
	}

	t.Run("15 CS02a TCoS-authorised, answered as 16", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 12, Config{})
		sameSigned(t, handleVector(t, m, "15"), "16", "esme-ds")
	})

	t.Run("17 CS02c then 19 CS02d, answered as 18 and 20", func(t *testing.T) {
		newKey := vectorKey(t, "esme-ds-new")
		m := vectorMeter(t, Electricity, 11, Config{Keys: fixedKeys{newKey}})
		r := handleVector(t, m, "17")
		w := loadVector(t, "18").parsed(t)
		if r.Form() != commands.FormSigned || r.Counter != w.Counter || r.Recipient != w.Recipient {
			t.Fatalf("CS02c response %s ctr %x to %s", r.Form(), r.Counter, r.Recipient)
		}
		if err := commands.VerifySignature(&vectorKey(t, "esme-ds").PublicKey, r); err != nil {
			t.Fatalf("CS02c response signature with esme-ds: %v", err)
		}
		got, err := asn.Parse[asn.IssueSecurityCredentialsResponse](r.Payload)
		if err != nil || got.CertificationRequest == nil {
			t.Fatalf("CS02c response %+v, %v", got, err)
		}
		csr, err := got.CertificationRequest.Parse()
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := asn.Parse[asn.IssueSecurityCredentialsResponse](w.Payload)
		wcsr, err := exp.CertificationRequest.Parse()
		if err != nil {
			t.Fatal(err)
		}
		if csr.EUI != wcsr.EUI || csr.KeyUsage != wcsr.KeyUsage || !csr.PublicKey.Equal(wcsr.PublicKey) || !csr.PublicKey.Equal(&newKey.PublicKey) {
			t.Fatalf("request for %s usage %v, vector 18's for %s usage %v", csr.EUI, csr.KeyUsage, wcsr.EUI, wcsr.KeyUsage)
		}

		sameSigned(t, handleVector(t, m, "19"), "20", "esme-ds")
		if !m.SignaturePublicKey().Equal(&newKey.PublicKey) {
			t.Fatal("esme-ds-new not installed")
		}
		if ds, _, ok := m.Certificates(); !ok || !bytes.Equal(ds, loadVector(t, "19").certificate(t, "esme-ds-new")) {
			t.Fatal("the installed DS certificate is not vector 19's")
		}
	})

	t.Run("21 future-dated ECS01a raises the alerts of the layout of 21", func(t *testing.T) {
		var alerts []Alert
		now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		m := vectorMeter(t, Electricity, 11, Config{Now: func() time.Time { return now },
			Alerts: func(_ context.Context, a Alert) { alerts = append(alerts, a) }})
		want := loadVector(t, "21").parsed(t)
		wn, _ := dlms.Parse(want.Payload)
		wf, err := dlms.ReadFutureDatedAlert(wn.DataNotification)
		if err != nil {
			t.Fatal(err)
		}
		c := &commands.Message{CRA: commands.Command, Counter: wf.Counter, Originator: vecSupplier, Recipient: vecESME,
			Code: commands.MessageCode(CodeECS01a), Payload: tariffCommand(t, wf.Time)}
		if err := commands.Sign(nil, vectorKey(t, "supplier-ds"), c); err != nil {
			t.Fatal(err)
		}
		if err := commands.AddMAC(ctx, vectorAgreement(t, "acb-ka"), m.AgreementPublicKey(), c); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Handle(ctx, must(c.Marshal())); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.PendingTariff(); !ok || len(alerts) != 0 {
			t.Fatalf("tariff not pending, or %d alerts before its time", len(alerts))
		}
		now = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
		m.Tick(ctx)
		if len(alerts) != 6 {
			t.Fatalf("%d alerts, want one per activation attribute (6)", len(alerts))
		}
		if tt, ok := m.Tariff(); !ok || !tt.ActivatedAt.Equal(now) {
			t.Fatalf("tariff in force %+v, %t", tt, ok)
		}
		a, err := commands.Parse(alerts[0].Message)
		if err != nil {
			t.Fatal(err)
		}
		if a.CRA != commands.Alert || a.Form() != commands.FormSigned || a.Code != want.Code || a.Recipient != want.Recipient || a.Originator != want.Originator {
			t.Fatalf("alert %s %s %s from %s to %s", a.CRA, a.Form(), a.Code, a.Originator, a.Recipient)
		}
		if err := commands.VerifySignature(&vectorKey(t, "esme-ds").PublicKey, a); err != nil {
			t.Fatal(err)
		}
		an, err := dlms.Parse(a.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if an.DataNotification.InvokeID != dlms.InvokeID(a.Counter) {
			t.Errorf("invoke id %#x for alert counter %#x", an.DataNotification.InvokeID, a.Counter)
		}
		// Vector 21 names the first activation attribute; with its invoke
		// id, the alert is the vector's payload.
		an.DataNotification.InvokeID = wn.DataNotification.InvokeID
		if b, _ := an.MarshalBinary(); !bytes.Equal(b, want.Payload) {
			t.Fatalf("alert payload\n got %X\nwant %X", b, want.Payload)
		}
		for i, al := range alerts[1:] {
			if al.Counter <= alerts[i].Counter {
				t.Errorf("alert counters do not rise: %d then %d", alerts[i].Counter, al.Counter)
			}
		}
	})

	t.Run("22 GCS32, answered as 23", func(t *testing.T) {
		m := vectorMeter(t, Gas, 11, Config{})
		sameSigned(t, handleVector(t, m, "22"), "23", "gsme-ds")
		if m.Supply() != SupplyDisabled {
			t.Fatalf("valve %v after GCS32", m.Supply())
		}
	})

	t.Run("24 CS02b 0x0104 MAC only, answered as 25", func(t *testing.T) {
		m := vectorMeter(t, Electricity, 11, Config{})
		sameSigned(t, handleVector(t, m, "24"), "25", "esme-ds")
		acb, _ := m.Anchors().Role(smki.RoleAccessControlBroker)
		if len(acb.Cells) != 1 || !acb.Cells[0].AgreementKey().Equal(vectorAgreement(t, "acb-ka-new").PublicKey()) {
			t.Fatal("ACB cell not replaced by acb-ka-new")
		}
		// The old ACB key no longer MACs commands to the meter.
		if _, err := m.Handle(ctx, loadVector(t, "05").message(t)); !isReason(err, ReasonBadMAC) {
			t.Fatalf("command MAC'd with the old ACB key: %v", err)
		}
	})
}

func isReason(err error, r Reason) bool {
	got, ok := ReasonOf(err)
	return ok && got == r
}
