package ca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

// FuzzIssueDeviceCSR feeds outside bytes as a device request: no panic, and
// a refusal always wraps ErrCSR.
func FuzzIssueDeviceCSR(f *testing.F) {
	e := newTestEnv(f)
	e.init(f)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "F2", 1<<40); err != nil {
		f.Fatal(err)
	}
	good := deviceCSR(f, newKey(f), deviceEUI, x509.KeyUsageKeyAgreement)
	f.Add(good)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: good}))
	f.Add(good[:len(good)-10])
	f.Add(orgCSR(f, newKey(f), smki.RoleSupplier, supplierEUI, "S", x509.KeyUsageDigitalSignature))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, csr []byte) {
		rec, err := e.a.IssueDevice(ctx, "F2", csr)
		if err != nil {
			if !errors.Is(err, ErrCSR) {
				t.Fatalf("refusal %v does not wrap ErrCSR", err)
			}
			return
		}
		if _, err := smki.ParseCertificate(rec.DER); err != nil {
			t.Fatalf("issued a certificate the reader refuses: %v", err)
		}
	})
}

// FuzzReadHWName reads outside bytes as a subjectAltName.
func FuzzReadHWName(f *testing.F) {
	ext, err := hardwareModuleNameSAN(smki.OIDHWTypeReferenceMeter, deviceEUI)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ext.Value)
	f.Add(ext.Value[:len(ext.Value)-1])
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, eui, err := readHWName(b)
		if err != nil {
			return
		}
		again, err := hardwareModuleNameSAN(typ, eui)
		if err != nil {
			t.Fatalf("re-encoding %v %s: %v", typ, eui, err)
		}
		if _, e2, err := readHWName(again.Value); err != nil || e2 != eui {
			t.Fatalf("round trip: %s %v", e2, err)
		}
	})
}
