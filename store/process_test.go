package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// childEnv names the SQLite file a child process of TestSQLiteTwoProcesses
// writes to.
const childEnv = "METERTRUST_STORE_TEST_CHILD_DB"

// TestSQLiteTwoProcesses runs writers in two separate processes on one
// SQLite file, where locking goes through the operating system rather than
// one process's connection pool: none may fail with SQLITE_BUSY, the quota
// count must be exact and the audit chain must stay whole.
func TestSQLiteTwoProcesses(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		sqliteChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := t.TempDir() + "/shared.db"
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustCreateCA(t, db, testCA("P1", CAKindDCA, 0))

	const procs = 2
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteTwoProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("METERTRUST_STORE_TEST_CHILD_ID=%d", i))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("child %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	c, err := db.SMKI().CA(ctx, "P1")
	if err != nil || c.Issued != procs*childWrites {
		t.Errorf("Issued = %d (%v), want %d", c.Issued, err, procs*childWrites)
	}
	if n, err := db.VerifyAudit(ctx); err != nil || n != procs*childWrites {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, procs*childWrites)
	}
	certs, err := db.SMKI().FindCertificates(ctx, CertQuery{CA: "P1"})
	if err != nil || len(certs) != procs*childWrites {
		t.Errorf("%d certificates (%v), want %d", len(certs), err, procs*childWrites)
	}
}

const childWrites = 50

// sqliteChild is the body of one child process: a few goroutines writing
// certificates, reservations and audit entries.
func sqliteChild(t *testing.T, path string) {
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := os.Getenv("METERTRUST_STORE_TEST_CHILD_ID")
	var wg sync.WaitGroup
	const goroutines = 5
	for g := range goroutines {
		wg.Go(func() {
			for i := range childWrites / goroutines {
				serial := uint32(len(id))<<24 | uint32(id[0])<<16 | uint32(g)<<8 | uint32(i)
				if err := db.SMKI().PutCertificates(ctx, testCert("P1", serial, "", UsageDS)); err != nil {
					t.Errorf("PutCertificates: %v", err)
				}
				if _, err := db.SMKI().ReserveDevices(ctx, "P1", 1); err != nil {
					t.Errorf("ReserveDevices: %v", err)
				}
				if _, err := db.AppendAudit(ctx, AuditEvent{Time: time.Now(), Actor: "child" + id, Action: "test.write", Outcome: OutcomeSuccess}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			}
		})
	}
	wg.Wait()
}
