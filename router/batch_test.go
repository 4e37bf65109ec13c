package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestGroupLedger submits a burst through the group-commit ledger on both
// stores: distinct commands are all accepted, each duplicate refused as a
// replay, every accepted one has its outbox row and audit entry, and Close
// returns after the queue is drained.
func TestGroupLedger(t *testing.T) {
	ctx := context.Background()
	for name, newDB := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			db := newDB(t)(t)
			e := newStoreEnv(t, db)
			g := NewGroupLedger(db, 2, 16)
			r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: e.st, Certificates: e.certs,
				Detector: e.det, Ledger: g, Auditor: e.st, Clock: e.now})
			if err != nil {
				t.Fatal(err)
			}
			const n = 60
			var devs []store.RouterDevice
			var targets []smki.EUI
			for i := range n {
				eui := smki.MustParseEUI(fmt.Sprintf("00CD00000000%04X", i))
				targets = append(targets, eui)
				devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: e.deviceKA.PublicKey().Bytes(),
					Supplier: e.supplier.eui.String(), UpdatedAt: e.now()})
			}
			if err := db.PutRouterDevices(ctx, devs...); err != nil {
				t.Fatal(err)
			}
			a0, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, replays := 0, 0
			for _, target := range targets {
				msg := command(t, e.supplier, target, codeDisable, uint64(time.Hour), true)
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := r.Submit(ctx, e.supplier.caller(), msg)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							accepted++
						case errors.Is(err, ErrReplay):
							replays++
						default:
							t.Errorf("Submit: %v", err)
						}
					}()
				}
			}
			wg.Wait()
			g.Close()
			if accepted != n || replays != n {
				t.Fatalf("accepted %d, replays %d; want %d each", accepted, replays, n)
			}
			if d, _ := e.st.Depth(ctx); d != n {
				t.Fatalf("outbox %d, want %d", d, n)
			}
			a1, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			if len(a1)-len(a0) != 2*n {
				t.Fatalf("%d audit entries, want %d (one per acceptance and per refusal)", len(a1)-len(a0), 2*n)
			}
			if err := g.Record(ctx, Record{}, AuditEvent{}); !errors.Is(err, ErrLedgerClosed) {
				t.Fatalf("Record after Close: %v", err)
			}
		})
	}
}

// registerDevices adds n devices owned by the world's supplier to the
// store's registry and returns their EUIs.
func (e *storeEnv) registerDevices(t testing.TB, n int) []smki.EUI {
	t.Helper()
	var devs []store.RouterDevice
	var out []smki.EUI
	for i := range n {
		eui := smki.MustParseEUI(fmt.Sprintf("00EF00000000%04X", i))
		out = append(out, eui)
		devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: e.deviceKA.PublicKey().Bytes(),
			Supplier: e.supplier.eui.String(), UpdatedAt: e.now()})
	}
	if err := e.db.PutRouterDevices(context.Background(), devs...); err != nil {
		t.Fatal(err)
	}
	return out
}
