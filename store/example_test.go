package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/metertrust/metertrust/store"
)

// A batch Device CA with a quota of 1,000 devices: reservations are atomic
// and stop at the quota.
func ExampleSMKIStore_ReserveDevices() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "metertrust-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	if err := db.SMKI().CreateCA(ctx, store.CA{
		Name: "E357", Kind: store.CAKindDCA, Parent: "root", CertDER: []byte("DER of the batch CA certificate"),
		KeyURI: "softkms:path=keys/E357.key", Quota: 1000, CreatedAt: now,
	}); err != nil {
		log.Fatal(err)
	}
	issued, err := db.SMKI().ReserveDevices(ctx, "E357", 600)
	fmt.Println(issued, err)
	_, err = db.SMKI().ReserveDevices(ctx, "E357", 600)
	fmt.Println(errors.Is(err, store.ErrQuotaExhausted))
	issued, err = db.SMKI().ReserveDevices(ctx, "E357", 400)
	fmt.Println(issued, err)
	// Output:
	// 600 <nil>
	// true
	// 1000 <nil>
}

// Logging an action before and after it, then verifying the chain.
func ExampleAuditor() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "metertrust-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	clock := func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	audit := store.NewAuditor(db, clock)
	details := map[string]any{"issued": 1000, "quota": 1000}
	if err := audit.Attempt(ctx, "alice", "ca.batch.key-destroy", "E357", details); err != nil {
		log.Fatal(err)
	}
	var destroyErr error // the key store's answer
	if err := audit.Result(ctx, "alice", "ca.batch.key-destroy", "E357", destroyErr, details); err != nil {
		log.Fatal(err)
	}

	events, err := db.AuditEvents(ctx, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Actor, e.Action, e.Object, e.Outcome)
	}
	n, err := db.VerifyAudit(ctx)
	fmt.Println(n, "entries verified,", err)
	// Output:
	// 1 alice ca.batch.key-destroy E357 attempt
	// 2 alice ca.batch.key-destroy E357 success
	// 2 entries verified, <nil>
}
