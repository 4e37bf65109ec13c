package ca

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/testenv"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// TestCeremonyOnSoftHSM runs the whole ceremony, a batch to its quota, and a
// batch closed by hand, with every CA key on a SoftHSM2 token
// (METERTRUST_TEST_PKCS11), then checks the batch keys are gone from the
// token.
func TestCeremonyOnSoftHSM(t *testing.T) {
	kmsURI := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := custody.Open(ctx, kmsURI, dir, rand.Reader)
	if err != nil {
		t.Fatalf("OpenCustody(SoftHSM2): %v", err)
	}
	defer keys.Close()
	if keys.Kind() != "pkcs11" {
		t.Fatalf("kind %s", keys.Kind())
	}
	e := newEnvWith(t, db, keys, dir)
	ceremonyAndBatches(t, e)
	// Leave the shared token as it was: destroy the keys of the CAs that
	// are still open.
	cas, err := db.SMKI().CAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cas {
		if c.KeyURI != "" {
			if err := keys.Destroy(ctx, c.KeyURI); err != nil {
				t.Errorf("destroying %s key: %v", c.Name, err)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, custody.DirName)); len(entries) != 0 {
		t.Errorf("key files written although keys are on the token: %v", entries)
	}
}

// TestCeremonyOnPostgres runs the same on the PostgreSQL store
// (METERTRUST_TEST_PG) with softkms keys.
func TestCeremonyOnPostgres(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.PostgresDSN(t))
	if err != nil {
		t.Fatalf("store.Open(PostgreSQL): %v", err)
	}
	defer db.Close()
	dir := t.TempDir()
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	ceremonyAndBatches(t, newEnvWith(t, db, keys, dir))
}

func ceremonyAndBatches(t *testing.T, e *testEnv) {
	t.Helper()
	ctx := context.Background()
	e.init(t)
	if _, err := e.a.Init(ctx, InitRequest{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	// A batch used up by bulk issuance closes itself.
	if _, err := e.a.OpenBatch(ctx, "Q1", 4); err != nil {
		t.Fatalf("OpenBatch: %v", err)
	}
	rec, err := e.db.SMKI().CA(ctx, "Q1")
	if err != nil {
		t.Fatal(err)
	}
	uri := rec.KeyURI
	sum, err := e.a.IssueDevices(ctx, BulkRequest{Batch: "Q1", Count: 2, OutDir: t.TempDir()})
	if err != nil || !sum.BatchClosed {
		t.Fatalf("IssueDevices to the quota: %+v, %v", sum, err)
	}
	if _, err := e.keys.Signer(ctx, uri); !errors.Is(err, ErrKey) {
		t.Errorf("batch key still loads after the quota closed the batch: %v", err)
	}
	if _, err := e.a.IssueDevice(ctx, "Q1", deviceCSR(t, newKey(t), deviceEUI, 1)); !errors.Is(err, ErrBatchClosed) {
		t.Errorf("issuing from Q1 after its quota: %v, want ErrBatchClosed", err)
	}
	// A batch closed by hand.
	if _, err := e.a.OpenBatch(ctx, "Q2", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.IssueDevice(ctx, "Q2", deviceCSR(t, newKey(t), deviceEUI, 1)); err != nil {
		t.Fatalf("IssueDevice: %v", err)
	}
	if err := e.a.CloseBatch(ctx, "Q2", "test"); err != nil {
		t.Fatalf("CloseBatch: %v", err)
	}
	info, err := e.a.Batch(ctx, "Q2")
	if err != nil || info.Key != "destroyed" || info.State != "closed" || len(info.CertDER) == 0 {
		t.Errorf("Batch after close: %+v, %v", info, err)
	}
	if _, err := e.a.IssueDevice(ctx, "Q2", deviceCSR(t, newKey(t), deviceEUI, 1)); !errors.Is(err, ErrBatchClosed) {
		t.Errorf("issuing from a closed batch: %v, want ErrBatchClosed", err)
	}
	// Organisation issuance and the OCA's CRL still work.
	if _, err := e.a.IssueOrg(ctx, OrgRequest{CSR: orgCSR(t, newKey(t), 2, supplierEUI, "S", 1<<4), Role: 2, EUI: supplierEUI, Usage: UsageKA}); err != nil {
		t.Errorf("IssueOrg: %v", err)
	}
	if _, err := e.a.CRL(ctx, NameOCA); err != nil {
		t.Errorf("CRL: %v", err)
	}
	// The destruction is in the audit log, and the chain verifies.
	ev, err := e.db.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	destroyed := 0
	for _, x := range ev {
		if x.Action == "ca.batch.key-destroy" && x.Outcome == store.OutcomeSuccess {
			destroyed++
		}
	}
	if destroyed != 2 {
		t.Errorf("%d audited key destructions, want 2", destroyed)
	}
	if _, err := e.db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}
