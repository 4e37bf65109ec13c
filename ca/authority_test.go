package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
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
			opts, err := VerifyOptions(ctx, e.db.SMKI(), e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			opts.RequireRevocationInfo = true
			path, err := smki.Verify(c, opts)
			if err != nil || len(path) != 3 || path[1].Kind != smki.KindOCA || path[2].Kind != smki.KindRoot {
				t.Errorf("smki.Verify: %d certificates, %v", len(path), err)
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

func TestIssueDevicesBulk(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "B1", 20); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var calls int
	sum, err := e.a.IssueDevices(ctx, BulkRequest{Batch: "B1", Count: 7, OutDir: out, Chunk: 3, Workers: 2,
		FirstEUI: smki.MustParseEUI("F000000000000010"), Progress: func(done, total int) { calls++ }})
	if err != nil {
		t.Fatalf("IssueDevices: %v", err)
	}
	if sum.Devices != 7 || sum.Certificates != 14 || sum.LastEUI != "F000000000000016" || calls != 3 || sum.BatchClosed {
		t.Errorf("summary %+v, progress calls %d", sum, calls)
	}
	for i := range 7 {
		eui := euiAdd(smki.MustParseEUI("F000000000000010"), uint64(i))
		for _, u := range []string{"ds", "ka"} {
			b, err := os.ReadFile(filepath.Join(out, eui.String()+"-"+u+".pem"))
			if err != nil {
				t.Fatal(err)
			}
			blk, rest := pem.Decode(b)
			if blk == nil || blk.Type != "PRIVATE KEY" {
				t.Fatalf("%s-%s: no key", eui, u)
			}
			cb, _ := pem.Decode(rest)
			c, err := smki.ParseCertificate(cb.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if c.EUI != eui {
				t.Errorf("file %s-%s holds EUI %s", eui, u, c.EUI)
			}
		}
	}
	// The next run uses up the quota exactly (6 more certificates) and
	// closes the batch.
	sum, err = e.a.IssueDevices(ctx, BulkRequest{Batch: "B1", Count: 3, OutDir: out})
	if err != nil {
		t.Fatalf("IssueDevices to quota: %v", err)
	}
	if !sum.BatchClosed || sum.FirstEUI != "F000000000000008" {
		t.Errorf("summary at quota %+v", sum)
	}
	if _, err := e.a.IssueDevices(ctx, BulkRequest{Batch: "B1", Count: 1, OutDir: out}); !errors.Is(err, ErrBatchClosed) {
		t.Errorf("after quota: %v, want ErrBatchClosed", err)
	}
}

// TestMemStoreFake runs issuance, revocation and closing on the in-memory
// fake the benchmarks use, so the fake stays faithful to the contract.
func TestMemStoreFake(t *testing.T) {
	ctx := context.Background()
	keys, err := custody.Open(ctx, "", t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: newMemStore(), Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Init(ctx, InitRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenBatch(ctx, "M1", 1); err != nil {
		t.Fatal(err)
	}
	rec, err := a.IssueDevice(ctx, "M1", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueDevice(ctx, "M1", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)); !errors.Is(err, ErrBatchClosed) {
		t.Errorf("past the quota: %v", err)
	}
	// The quota closed the batch: its certificates are revoked through its
	// delegated OCSP responder (its final CRL is signed and stays).
	if _, err := a.Revoke(ctx, "M1", rec.Serial, 4); err != nil {
		t.Errorf("Revoke from a closed batch: %v", err)
	}
	if crl, err := a.LatestCRL(ctx, "M1"); err != nil || crl.NextUpdate.Year() != 9999 {
		t.Errorf("final CRL: %+v %v", crl, err)
	}
}

// TestConcurrentIssuanceAtQuota: many issuers race for the last units of a
// batch's quota; exactly the quota is issued, the rest are refused with
// ErrBatchClosed, and the batch ends closed with its key destroyed.
func TestConcurrentIssuanceAtQuota(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	const quota, tries = 10, 16
	if _, err := e.a.OpenBatch(ctx, "C1", quota); err != nil {
		t.Fatal(err)
	}
	csrs := make([][]byte, tries)
	for i := range csrs {
		csrs[i] = deviceCSR(t, newKey(t), euiAdd(deviceEUI, uint64(i)), x509.KeyUsageDigitalSignature)
	}
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.a.IssueDevice(ctx, "C1", csrs[i])
		}()
	}
	wg.Wait()
	ok, closed := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrBatchClosed):
			closed++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != quota || closed != tries-quota {
		t.Errorf("%d issued, %d refused; want %d and %d", ok, closed, quota, tries-quota)
	}
	certs, err := e.db.SMKI().FindCertificates(ctx, store.CertQuery{CA: "C1", Kind: store.KindDevice, IncludeRevoked: true})
	if err != nil || len(certs) != quota {
		t.Errorf("stored %d certificates (%v), want %d", len(certs), err, quota)
	}
	info, err := e.a.Batch(ctx, "C1")
	if err != nil || info.State != "closed" || info.Key != "destroyed" {
		t.Errorf("batch after the race: %+v %v", info, err)
	}
}
