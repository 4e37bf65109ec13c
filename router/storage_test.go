package router

import (
	"context"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestRevokedSignerOtherInstance: a supplier's signing certificate revoked
// through one process is refused by another instance's StoreCertificates
// at once (and the bound is a second), though it had just looked
// the certificate up.
func TestRevokedSignerOtherInstance(t *testing.T) {
	ctx := context.Background()
	for name, newDB := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			open := newDB(t)
			db1, db2 := open(t), open(t)
			now := time.Now()
			if err := db1.SMKI().CreateCA(ctx, store.CA{Name: "oca", Kind: store.CAKindOCA, CertDER: []byte{0x30}, KeyURI: "file:oca.pem",
				CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			eui := smki.MustParseEUI("1111111111111111")
			serial := []byte{0x42}
			if err := db1.SMKI().PutCertificates(ctx, store.Certificate{CA: "oca", Serial: serial, Kind: store.KindOrg, EUI: eui.String(),
				Role: int(smki.RoleSupplier), Usage: "ds", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
				DER: []byte{0x30, 0x01}}); err != nil {
				t.Fatal(err)
			}
			other := NewStoreCertificates(db2.SMKI(), time.Minute, nil)
			if _, err := other.SigningCertificate(ctx, eui, smki.RoleSupplier, nil); err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			if err := db1.SMKI().Revoke(ctx, "oca", serial, 1, revoked); err != nil {
				t.Fatal(err)
			}
			for {
				_, err := other.SigningCertificate(ctx, eui, smki.RoleSupplier, nil)
				if err != nil {
					t.Logf("refused %s after the revocation: %v", time.Since(revoked).Round(time.Millisecond), err)
					break
				}
				if time.Since(revoked) > time.Second {
					t.Fatal("the other instance still uses the revoked certificate after a second")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
