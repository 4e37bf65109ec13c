package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

func TestNewCell(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	eui := smki.MustParseEUI("90B3D51F30000002")
	tests := []struct {
		name  string
		usage KeyUsage
		cell  asn.CellUsage
		pub   *ecdsa.PublicKey
		ok    bool
	}{
		{"digital signature", UsageDigitalSignature, asn.CellManagement, &k.PublicKey, true},
		{"key agreement, top-up", UsageKeyAgreement, asn.CellPrePaymentTopUp, &k.PublicKey, true},
		{"P-384 key", UsageDigitalSignature, asn.CellManagement, &p384.PublicKey, false},
		{"nil key", UsageDigitalSignature, asn.CellManagement, nil, false},
		{"no key usage", 0, asn.CellManagement, &k.PublicKey, false},
		{"unknown cell usage", UsageKeyAgreement, 2, &k.PublicKey, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCell(tc.usage, tc.cell, eui, tc.pub)
			if !tc.ok {
				if !errors.Is(err, ErrAnchor) {
					t.Fatalf("err = %v, want ErrAnchor", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.SubjectKeyID[:]) != string(smki.KeyID(tc.pub)) || c.SubjectKeyID[0]>>4 != 4 {
				t.Errorf("subject key id %X, want method 2 %X", c.SubjectKeyID, smki.KeyID(tc.pub))
			}
			pt, _ := tc.pub.Bytes()
			if string(c.PublicKeyBytes()) != string(pt) {
				t.Error("PublicKeyBytes differs from the key")
			}
			if (c.SignatureKey() != nil) != (tc.usage == UsageDigitalSignature) || (c.AgreementKey() != nil) != (tc.usage == UsageKeyAgreement) {
				t.Error("key form does not follow the usage")
			}
		})
	}
}

func TestNewCellFromCertificate(t *testing.T) {
	sup := newParty(t, "90B3D51F30000002")
	ds, err := smki.ParseCertificate(issue(t, smki.ProfileOrgDS, smki.RoleSupplier, sup.eui, &sup.ds.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	ka, err := smki.ParseCertificate(issue(t, smki.ProfileOrgKA, smki.RoleSupplier, sup.eui, &sup.kaS.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	forged := *ka
	forged.SubjectKeyID = []byte{0x40, 1, 2, 3, 4, 5, 6, 7}
	tests := []struct {
		name string
		c    *smki.Certificate
		cu   asn.CellUsage
		want KeyUsage
	}{
		{"DS certificate", ds, asn.CellManagement, UsageDigitalSignature},
		{"KA certificate", ka, asn.CellManagement, UsageKeyAgreement},
		{"KA certificate as top-up", ka, asn.CellPrePaymentTopUp, UsageKeyAgreement},
		{"DS certificate as top-up", ds, asn.CellPrePaymentTopUp, 0},
		{"subject key id not of its key", &forged, asn.CellManagement, 0},
		{"nil", nil, asn.CellManagement, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCellFromCertificate(tc.c, tc.cu)
			if tc.want == 0 {
				if !errors.Is(err, ErrAnchor) {
					t.Fatalf("err = %v, want ErrAnchor", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.KeyUsage != tc.want || c.Usage != tc.cu || c.Subject != sup.eui || string(c.SubjectKeyID[:]) != string(tc.c.SubjectKeyID) {
				t.Fatalf("cell %+v", c)
			}
		})
	}
}

func TestAnchorsAreImmutable(t *testing.T) {
	sup, other := newParty(t, "90B3D51F30000002"), newParty(t, "90B3D51F30000022")
	a, err := NewAnchors().With(smki.RoleSupplier, 3, sup.cells(t)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.With(smki.RoleSupplier, 4, other.cells(t)...)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Role(smki.RoleSupplier)
	sb, _ := b.Role(smki.RoleSupplier)
	if sa.Sequence != 3 || sa.Cells[0].Subject != sup.eui || sb.Sequence != 4 || sb.Cells[0].Subject != other.eui || sa.Status != AnchorInstalled {
		t.Fatalf("a: %d %s, b: %d %s", sa.Sequence, sa.Cells[0].Subject, sb.Sequence, sb.Cells[0].Subject)
	}
	sa.Cells[0] = nil // a copy: the set is untouched
	if again, _ := a.Role(smki.RoleSupplier); again.Cells[0] == nil {
		t.Fatal("Role returned the set's own slice")
	}
	c := b.replaceCell(smki.RoleSupplier, sup.cells(t)[0])
	// The DS cell is replaced in its place; the KA cell stays.
	if sc, _ := c.Role(smki.RoleSupplier); len(sc.Cells) != 2 || sc.Cells[0].Subject != sup.eui || sc.Cells[1].Subject != other.eui {
		t.Fatalf("replaceCell: %d cells", len(sc.Cells))
	}
	if sb, _ := b.Role(smki.RoleSupplier); sb.Cells[0].Subject != other.eui || len(sb.Cells) != 2 {
		t.Fatal("replaceCell changed its receiver")
	}
	empty, _ := b.With(smki.RoleSupplier, 5)
	if se, _ := empty.Role(smki.RoleSupplier); se.Status != AnchorEmpty || len(se.Cells) != 0 {
		t.Fatal("With and no cells should empty the role")
	}
	if _, err := a.With(smki.RoleOther, 1); !errors.Is(err, ErrAnchor) {
		t.Errorf("anchor for role other: err = %v, want ErrAnchor", err)
	}
	if _, ok := a.Role(smki.RoleLoadController); ok {
		t.Error("devices keep no load controller anchor")
	}
	if len(AnchorRoles()) != 7 {
		t.Errorf("AnchorRoles = %v", AnchorRoles())
	}
}

func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r.String()] {
			t.Errorf("reason name %q twice", r)
		}
		seen[r.String()] = true
		err := fmt.Errorf("delivering: %w", &DiscardError{Reason: r, Err: errors.New("cause")})
		if !errors.Is(err, r.Err()) {
			t.Errorf("%v: errors.Is fails on the wrapped discard", r)
		}
		if got, ok := ReasonOf(err); !ok || got != r {
			t.Errorf("ReasonOf = %v, %t; want %v", got, ok, r)
		}
	}
	if _, ok := ReasonOf(errors.New("x")); ok {
		t.Error("ReasonOf of a plain error")
	}
	if Reason(200).String() != "reason(200)" || Reason(200).Err() != ErrInternal {
		t.Error("out-of-range reason")
	}
}
