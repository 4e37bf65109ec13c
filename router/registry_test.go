package router

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestRegistrar registers a device from the device certificates package ca
// issued, and grants and revokes an other user's consent, which the
// pipeline then honours; every change is audited before and after.
func TestRegistrar(t *testing.T) {
	ctx := context.Background()
	e := newStoreEnv(t, nil)
	keys, err := custody.Open(ctx, "", t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	auth, err := ca.New(ca.Config{Store: e.db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.OpenBatch(ctx, "B1", 10); err != nil {
		t.Fatal(err)
	}
	meter := smki.MustParseEUI("0012A3FFFE00AA01")
	dsKey, kaKey := mustKey(t), mustKey(t)
	var kaCert store.Certificate
	for i, ku := range []x509.KeyUsage{x509.KeyUsageDigitalSignature, x509.KeyUsageKeyAgreement} {
		key := dsKey
		if i == 1 {
			key = kaKey
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: meter, KeyUsage: ku, HWType: smki.OIDHWTypeReferenceMeter}, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := auth.IssueDevice(ctx, "B1", csr)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			kaCert = c
		}
	}
	g := NewRegistrar(e.db.Router(), e.now)

	t.Run("register from the repository", func(t *testing.T) {
		if err := g.RegisterDevice(ctx, "op", meter, e.supplier.eui, e.distributor.eui); err != nil {
			t.Fatal(err)
		}
		d, err := e.st.Device(ctx, meter)
		if err != nil {
			t.Fatal(err)
		}
		wantKA, _ := kaKey.PublicKey.ECDH()
		if !d.KeyAgreement.Equal(wantKA) || !d.Signing.Equal(&dsKey.PublicKey) || d.Supplier != e.supplier.eui || d.NetworkOperator != e.distributor.eui {
			t.Fatalf("registered %+v", d)
		}
	})
	t.Run("change of supplier keeps the consumer's consents", func(t *testing.T) {
		c := store.Consent{ID: "C-COS", Device: meter.String(), User: e.other.eui.String(), Scope: []string{"4.8.1"},
			NotBefore: e.now().Add(-time.Minute), ExpiresAt: e.now().Add(time.Hour), Evidence: "CIN read back by the consumer"}
		if err := g.GrantConsent(ctx, "consumer-portal", c); err != nil {
			t.Fatal(err)
		}
		read := func(counter uint64) error {
			_, err := e.router.Submit(ctx, e.other.caller(), e.urpCommand(t, e.other, meter, codeProfile, counter))
			return err
		}
		if err := read(100); err != nil {
			t.Fatalf("under consent: %v", err)
		}
		// The meter moves to another supplier: its registry entry is
		// replaced, its consents stay.
		if err := g.RegisterDevice(ctx, "op", meter, e.gasSupplier.eui, e.distributor.eui); err != nil {
			t.Fatal(err)
		}
		if d, err := e.st.Device(ctx, meter); err != nil || d.Supplier != e.gasSupplier.eui {
			t.Fatalf("after the change of supplier: %+v, %v", d, err)
		}
		if got, err := g.Consent(ctx, "op", "C-COS"); err != nil || !got.Live(e.now()) {
			t.Fatalf("consent after the change of supplier: %+v, %v", got, err)
		}
		if err := read(101); err != nil {
			t.Fatalf("under consent after the change of supplier: %v", err)
		}
		if cs, err := g.Consents(ctx, "op", store.ConsentFilter{Device: meter}); err != nil || len(cs) != 1 || cs[0].ID != "C-COS" {
			t.Fatalf("Consents = %+v, %v", cs, err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		if err := g.RegisterDevice(ctx, "op", smki.MustParseEUI("0012A3FFFE00AA02"), e.supplier.eui, smki.EUI{}); !errors.Is(err, ErrRegistry) {
			t.Fatalf("device without certificates: %v", err)
		}
		if err := g.RegisterDevice(ctx, "op", meter, smki.EUI{}, smki.EUI{}); !errors.Is(err, ErrRegistry) {
			t.Fatalf("device without owner: %v", err)
		}
		if _, err := auth.Revoke(ctx, "B1", kaCert.Serial, 1); err != nil {
			t.Fatal(err)
		}
		if err := g.RegisterDevice(ctx, "op", meter, e.supplier.eui, smki.EUI{}); !errors.Is(err, ErrRegistry) {
			t.Fatalf("device whose KA certificate is revoked: %v", err)
		}
	})
	t.Run("consent granted then revoked", func(t *testing.T) {
		read := func(counter uint64) error {
			_, err := e.router.Submit(ctx, e.other.caller(), e.urpCommand(t, e.other, e.device2, codeProfile, counter))
			return err
		}
		if err := read(1); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("before consent: %v", err)
		}
		c := store.Consent{ID: "C-1", Device: e.device2.String(), User: e.other.eui.String(), Scope: []string{"4.8.1"},
			NotBefore: e.now().Add(-time.Minute), ExpiresAt: e.now().Add(time.Hour), Evidence: "CIN 12345678 read back by the consumer"}
		if err := g.GrantConsent(ctx, "consumer-portal", c); err != nil {
			t.Fatal(err)
		}
		if err := read(2); err != nil {
			t.Fatalf("under consent: %v", err)
		}
		if err := g.RevokeConsent(ctx, "consumer-portal", "C-1", ""); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("revocation without a reason: %v", err)
		}
		if err := g.RevokeConsent(ctx, "consumer-portal", "C-1", "consumer withdrew"); err != nil {
			t.Fatal(err)
		}
		if got, err := g.Consent(ctx, "op", "C-1"); err != nil || got.RevokedBy != "consumer-portal" || got.RevokeReason != "consumer withdrew" {
			t.Fatalf("revoked consent = %+v, %v", got, err)
		}
		if err := read(3); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("after revocation: %v", err)
		}
		if err := g.RevokeConsent(ctx, "consumer-portal", "C-1", "again"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second revocation: %v", err)
		}
	})
	evs, err := e.db.AuditEvents(ctx, 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		if len(ev.Action) > 7 && ev.Action[:7] == "router." && ev.Action != "router.command.accepted" && ev.Action != "router.command.refused" {
			seen[ev.Action+"/"+ev.Outcome]++
		}
	}
	for _, want := range []string{"router.device.register/attempt", "router.device.register/success", "router.device.register/refused",
		"router.consent.grant/success", "router.consent.revoke/success", "router.consent.revoke/refused",
		"router.consent.list/success", "router.consent.show/success"} {
		if seen[want] == 0 {
			t.Errorf("no %s audit entry (have %v)", want, seen)
		}
	}
}
