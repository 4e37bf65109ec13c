package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestIssueDeviceConcurrent issues from many goroutines at once, so that
// issuances share group commits, with a quota smaller than the requests:
// exactly the quota is issued, each with its OCSP response, the others are
// refused with ErrBatchClosed, the batch closes, and the audit chain
// verifies.
func TestIssueDeviceConcurrent(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	const quota, callers = 12, 20
	if _, err := e.a.OpenBatch(ctx, "B1", quota); err != nil {
		t.Fatal(err)
	}
	csrs := make([][]byte, callers)
	for i := range csrs {
		csrs[i] = deviceCSR(t, newKey(t), smki.EUI{0xF0, 0, 0, 0, 0, 0, 2, byte(i)}, x509.KeyUsageDigitalSignature)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, closed int
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := e.a.IssueDevice(ctx, "B1", csrs[i])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				if _, err := e.db.SMKI().OCSPResponse(ctx, "B1", rec.Serial); err != nil {
					t.Errorf("OCSP response of %X: %v", rec.Serial, err)
				}
			case errors.Is(err, ErrBatchClosed):
				closed++
			default:
				t.Errorf("IssueDevice: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != quota || closed != callers-quota {
		t.Fatalf("%d issued, %d refused; want %d, %d", ok, closed, quota, callers-quota)
	}
	certs, err := e.db.SMKI().FindCertificates(ctx, store.CertQuery{CA: "B1", Kind: store.KindDevice}) // not its OCSP responder
	if err != nil || len(certs) != quota {
		t.Fatalf("stored %d certificates, %v; want %d", len(certs), err, quota)
	}
	rec, err := e.db.SMKI().CA(ctx, "B1")
	if err != nil || rec.State != store.CAStateClosed || rec.Issued != quota {
		t.Fatalf("batch %+v, %v; want closed at %d", rec, err, quota)
	}
	if _, err := e.db.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}
