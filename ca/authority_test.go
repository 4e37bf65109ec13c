package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

var (
	supplierEUI = smki.MustParseEUI("90-B3-D5-1F-30-01-00-00")
	deviceEUI   = smki.MustParseEUI("00-0D-6F-00-00-00-00-01")
)

func TestIssueOrg(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		usage Usage
		ku    x509.KeyUsage
	}{
		{"ds", UsageDS, x509.KeyUsageDigitalSignature},
		{"ka", UsageKA, x509.KeyUsageKeyAgreement},
		{"pp-ka", UsagePPKA, x509.KeyUsageKeyAgreement},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			csr := orgCSR(t, newKey(t), smki.RoleSupplier, supplierEUI, "Supplier A", tc.ku)
			rec, err := e.a.IssueOrg(ctx, OrgRequest{CSR: csr, Role: smki.RoleSupplier, EUI: supplierEUI, Name: "Supplier A", Usage: tc.usage})
			if err != nil {
				t.Fatalf("IssueOrg: %v", err)
			}
			if _, err := x509.ParseCertificate(rec.DER); err == nil {
				t.Errorf("crypto/x509 read an SMKI organisation certificate; the GB profile should defeat it")
			}
			c, err := smki.ParseCertificate(rec.DER)
			if err != nil {
				t.Fatalf("smki.ParseCertificate: %v", err)
			}
			if c.EUI != supplierEUI || c.Role != smki.RoleSupplier {
				t.Errorf("read back EUI %s role %s", c.EUI, c.Role)
			}
		})
	}
}

func TestIssueDeviceBatch(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "E357", 2); err != nil {
		t.Fatalf("OpenBatch: %v", err)
	}
	for i, ku := range []x509.KeyUsage{x509.KeyUsageDigitalSignature, x509.KeyUsageKeyAgreement} {
		rec, err := e.a.IssueDevice(ctx, "E357", deviceCSR(t, newKey(t), deviceEUI, ku))
		if err != nil {
			t.Fatalf("IssueDevice %d: %v", i, err)
		}
		if _, err := smki.ParseCertificate(rec.DER); err != nil {
			t.Fatalf("smki.ParseCertificate: %v", err)
		}
	}
	_, err := e.a.IssueDevice(ctx, "E357", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if !errors.Is(err, ErrBatchClosed) {
		t.Fatalf("issuing past the quota: got %v, want ErrBatchClosed", err)
	}
	info, err := e.a.Batch(ctx, "E357")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "closed" || info.Key != "destroyed" || info.Issued != 2 {
		t.Errorf("batch after quota: %+v", info)
	}
}
