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

// TestTwoInstances runs two routers on two handles of one database (two
// processes on PostgreSQL) and sends every command to both at once: each
// is accepted exactly once, the other copy refused as a replay, and the
// counters end where they must.
func TestTwoInstances(t *testing.T) {
	ctx := context.Background()
	for name, newDB := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			open := newDB(t)
			e := newStoreEnv(t, open(t))
			const devices = 20
			var devs []store.RouterDevice
			var targets []smki.EUI
			for i := range devices {
				eui := smki.MustParseEUI(fmt.Sprintf("00AB00000000%04X", i))
				targets = append(targets, eui)
				devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: e.deviceKA.PublicKey().Bytes(),
					Supplier: e.supplier.eui.String(), UpdatedAt: e.now()})
			}
			if err := e.db.Router().PutRouterDevices(ctx, devs...); err != nil {
				t.Fatal(err)
			}
			r2, _ := e.newRouter(t, open(t))
			routers := []*Router{e.router, r2}
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted, replays := map[smki.EUI]int{}, 0
			for _, target := range targets {
				msg := command(t, e.supplier, target, codeDisable, uint64(time.Millisecond), true)
				for _, r := range routers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := r.Submit(ctx, e.supplier.caller(), msg)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							accepted[target]++
						case errors.Is(err, ErrReplay):
							replays++
						default:
							t.Errorf("Submit to %s: %v", target, err)
						}
					}()
				}
			}
			wg.Wait()
			for _, target := range targets {
				if accepted[target] != 1 {
					t.Errorf("%s accepted %d times", target, accepted[target])
				}
			}
			if replays != devices {
				t.Errorf("%d replays, want %d", replays, devices)
			}
			if n, _ := e.st.Depth(ctx); n != devices {
				t.Fatalf("outbox %d, want %d", n, devices)
			}
		})
	}
}
