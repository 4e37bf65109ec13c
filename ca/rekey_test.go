package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestIssueRekey issues a device's re-key certificate from a batch opened
// for re-keys, and refuses, with nothing issued, every request that is not
// one: a batch for new devices, a device not in the inventory or without a
// certificate of the usage, a request naming another device, a key already
// certified; a batch for re-keys issues no new device.
func TestIssueRekey(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "NEW", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.OpenBatchFor(ctx, "RK", 10, PurposeRekey); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.OpenBatchFor(ctx, "X", 10, "spare"); !errors.Is(err, ErrRequest) {
		t.Errorf("purpose spare: %v, want ErrRequest", err)
	}
	if info, err := e.a.Batch(ctx, "RK"); err != nil || info.Purpose != PurposeRekey {
		t.Errorf("Batch(RK) = %+v, %v", info, err)
	}
	oldDS := newKey(t)
	if _, err := e.a.IssueDevice(ctx, "NEW", deviceCSR(t, oldDS, deviceEUI, x509.KeyUsageDigitalSignature)); err != nil {
		t.Fatal(err)
	}
	other := euiAdd(deviceEUI, 7)
	newDS := newKey(t)
	tests := []struct {
		name  string
		batch string
		eui   smki.EUI
		csr   []byte
		want  error
	}{
		{"batch for new devices", "NEW", deviceEUI, deviceCSR(t, newDS, deviceEUI, x509.KeyUsageDigitalSignature), ErrRekey},
		{"device not in the inventory", "RK", other, deviceCSR(t, newKey(t), other, x509.KeyUsageDigitalSignature), ErrRekey},
		{"no certificate of the usage", "RK", deviceEUI, deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageKeyAgreement), ErrRekey},
		{"request for another device", "RK", deviceEUI, deviceCSR(t, newKey(t), other, x509.KeyUsageDigitalSignature), ErrCSR},
		{"key already certified", "RK", deviceEUI, deviceCSR(t, oldDS, deviceEUI, x509.KeyUsageDigitalSignature), ErrRekey},
		{"not a request", "RK", deviceEUI, []byte{0x30, 0x00}, ErrCSR},
		{"unknown batch", "NOPE", deviceEUI, deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature), ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.a.IssueRekey(ctx, tc.batch, tc.eui, tc.csr); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.a.IssueDevice(ctx, "RK", deviceCSR(t, newKey(t), other, x509.KeyUsageDigitalSignature)); !errors.Is(err, ErrRequest) {
		t.Errorf("a new device from a batch for re-keys: %v, want ErrRequest", err)
	}
	if rk, _ := e.a.Batch(ctx, "RK"); rk.Issued != 0 {
		t.Errorf("refusals used %d of the batch's quota", rk.Issued)
	}
	rec, err := e.a.IssueRekey(ctx, "RK", deviceEUI, deviceCSR(t, newDS, deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatalf("IssueRekey: %v", err)
	}
	c, err := smki.ParseCertificate(rec.DER)
	if err != nil || c.EUI != deviceEUI || c.KeyUsage != x509.KeyUsageDigitalSignature || !c.PublicKey.Equal(newDS.Public()) || rec.CA != "RK" {
		t.Errorf("re-key certificate %+v, %v", c, err)
	}
	// Both stay good until the meter installs the new one (decision 017).
	good, _ := e.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: deviceEUI.String(), Kind: store.KindDevice, Usage: "ds"})
	if len(good) != 2 {
		t.Errorf("%d good DS certificates, want 2", len(good))
	}
}
