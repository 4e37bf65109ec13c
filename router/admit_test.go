package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestGroupAdmitter submits a burst through the group admitter on both
// stores, each distinct command twice at once, under a DCC threshold that
// lets exactly limit of them through: the duplicates are refused as
// replays and not counted, exactly limit are accepted, the rest
// quarantined, each with its audit entries; the accepted ones are handed to
// the forwarder leased (the outbox claims none of them), and the
// forwarder's marks go through the admitter's next group.
func TestGroupAdmitter(t *testing.T) {
	ctx := context.Background()
	for name, newDB := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			db := newDB(t)(t)
			e := newStoreEnv(t, db)
			det, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Now: e.now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			const n, limit = 60, 40
			admin := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
			if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2",
				Limit: limit, Window: time.Hour}); err != nil {
				t.Fatal(err)
			}
			g := NewGroupAdmitter(db.Router(), det, 2, time.Minute, e.now)
			var mu sync.Mutex
			var handed []Pending
			g.SetForwarder(func(ps []Pending) { mu.Lock(); handed = append(handed, ps...); mu.Unlock() }, func() {})
			st := NewStorage(db.Router())
			r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: st, Certificates: e.certs,
				Ledger: st, Admitter: g, Auditor: st, Clock: e.now})
			if err != nil {
				t.Fatal(err)
			}
			targets := e.registerDevices(t, n)
			a0, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			var wg sync.WaitGroup
			accepted, replays, quarantined := 0, 0, 0
			for _, target := range targets {
				msg := command(t, e.supplier, target, codeDisable, uint64(e.now().UnixMilli()), true)
				for range 2 {
					wg.Go(func() {
						_, err := r.Submit(ctx, e.supplier.caller(), msg)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							accepted++
						case errors.Is(err, ErrReplay):
							replays++
						case errors.Is(err, ErrQuarantined):
							quarantined++
						default:
							t.Errorf("Submit: %v", err)
						}
					})
				}
			}
			wg.Wait()
			// A quarantined command leaves its counter where it was, so its
			// duplicate is screened too and quarantined, not refused as a
			// replay: every copy is one or the other.
			if accepted != limit || accepted+replays+quarantined != 2*n || replays < limit {
				t.Fatalf("accepted %d, replays %d, quarantined %d; want %d accepted of %d", accepted, replays, quarantined, limit, 2*n)
			}
			if d, _ := st.Depth(ctx); d != limit {
				t.Fatalf("outbox %d, want %d", d, limit)
			}
			counts, err := db.Anomaly().CountEvents(ctx, []anomaly.Counter{{Key: "us/" + e.supplier.eui.String() + "/7.2", Since: e.now().Add(-time.Hour)}})
			if err != nil || counts[0] != limit {
				t.Fatalf("counted %v (%v), want %d", counts, err, limit)
			}
			a1, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			// One entry per acceptance and per refusal; two per quarantine
			// (the detector's record and the router's refusal).
			if got, want := len(a1)-len(a0), accepted+replays+2*quarantined; got != want {
				t.Fatalf("%d audit entries, want %d", got, want)
			}
			if len(handed) != limit {
				t.Fatalf("%d handed to the forwarder, want %d", len(handed), limit)
			}
			if items, err := db.Router().ClaimOutbox(ctx, e.now(), time.Minute, 100); err != nil || len(items) != 0 {
				t.Fatalf("claimed %d leased rows (%v), want none", len(items), err)
			}
			// The forwarder's marks, through the next group.
			fs := make([]Forward, len(handed))
			for i, p := range handed {
				fs[i] = Forward{ID: p.Record.ID, At: e.now(), Audit: AuditEvent{Action: "command.forwarded", Caller: p.Record.Caller,
					Target: p.Record.Target, CommandID: p.Record.ID, At: e.now()}}
				if len(p.Record.Message) == 0 {
					t.Fatalf("handed %s without its message", p.Record.ID)
				}
			}
			errs, err := g.RecordForwarded(ctx, fs)
			if err != nil {
				t.Fatal(err)
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("mark %d: %v", i, err)
				}
			}
			if d, _ := st.Depth(ctx); d != 0 {
				t.Fatalf("outbox %d after the marks, want 0", d)
			}
			if _, err := db.VerifyAudit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGroupAdmitterSamePair sends many commands of one pair at once: a
// group holds one per pair, so each is decided against the one before it,
// and a command not handed to the forwarder (its pair busy) wakes it.
func TestGroupAdmitterSamePair(t *testing.T) {
	ctx := context.Background()
	e := newStoreEnv(t, nil)
	det, err := anomaly.New(ctx, anomaly.Config{Store: e.db.Anomaly(), Now: e.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGroupAdmitter(e.db.Router(), det, 1, time.Minute, e.now)
	var mu sync.Mutex
	handed, woken := 0, 0
	g.SetForwarder(func(ps []Pending) { mu.Lock(); handed += len(ps); mu.Unlock() }, func() { mu.Lock(); woken++; mu.Unlock() })
	r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: e.st, Certificates: e.certs,
		Ledger: e.st, Admitter: g, Auditor: e.st, Clock: e.now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		msg := command(t, e.supplier, e.device, codeDisable, uint64(1000+i), true)
		wg.Go(func() { _, errs[i] = r.Submit(ctx, e.supplier.caller(), msg) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrReplay):
			t.Fatalf("Submit: %v", err)
		}
	}
	last, _, err := e.st.LastCounter(ctx, e.supplier.eui, e.device)
	if err != nil {
		t.Fatal(err)
	}
	if ok == 0 || last == 0 {
		t.Fatalf("%d accepted, last counter %d", ok, last)
	}
	if d, _ := e.st.Depth(ctx); int(d) != ok {
		t.Fatalf("outbox %d, want %d", d, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if handed != 1 || (ok > 1 && woken == 0) {
		t.Fatalf("handed %d (want the first only), woken %d times for %d parked", handed, woken, ok-1)
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
	if err := e.db.Router().PutRouterDevices(context.Background(), devs...); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGroupAdmitterComplete ends commands through the admitter's groups, on
// both stores: each gets its delivery with its sequence number and its
// audit entries; a second completion of one command is ErrAlreadyComplete
// and an unknown command an error, neither failing the others.
func TestGroupAdmitterComplete(t *testing.T) {
	ctx := context.Background()
	for name, newDB := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			db := newDB(t)(t)
			e := newStoreEnv(t, db)
			det, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Now: e.now, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			g := NewGroupAdmitter(db.Router(), det, 2, time.Minute, e.now)
			st := NewStorage(db.Router())
			r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: st, Certificates: e.certs,
				Ledger: st, Admitter: g, Auditor: st, Clock: e.now})
			if err != nil {
				t.Fatal(err)
			}
			targets := e.registerDevices(t, 8)
			var ids []string
			for _, target := range targets {
				rc, err := r.Submit(ctx, e.supplier.caller(), command(t, e.supplier, target, codeDisable, uint64(e.now().UnixMilli()), true))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, rc.ID)
			}
			a0, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			var wg sync.WaitGroup
			seqs := make([]int64, len(ids))
			for i, id := range ids {
				wg.Go(func() {
					d, err := g.Complete(ctx, Ending{ID: id, Response: []byte{0xDD, byte(i)},
						Delivery: Delivery{Caller: e.supplier.eui, Kind: DeliveryResponse, Body: []byte{0xDD, byte(i)}, At: e.now()}},
						AuditEvent{Action: "command.forwarded", Caller: e.supplier.caller(), CommandID: id, At: e.now()},
						AuditEvent{Action: "response.received", Caller: e.supplier.caller(), CommandID: id, At: e.now()})
					if err != nil {
						t.Errorf("Complete(%s): %v", id, err)
					}
					seqs[i] = d.Seq
				})
			}
			wg.Wait()
			slices.Sort(seqs)
			for i, s := range seqs {
				if s != int64(i+1) {
					t.Fatalf("delivery sequence numbers %v, want 1..%d", seqs, len(ids))
				}
			}
			if _, err := g.Complete(ctx, Ending{ID: ids[0], Failed: true, Reason: "late", Delivery: Delivery{Caller: e.supplier.eui, Kind: DeliveryFailure, At: e.now()}},
				AuditEvent{Action: "command.failed", Caller: e.supplier.caller(), CommandID: ids[0], At: e.now()}); !errors.Is(err, ErrAlreadyComplete) {
				t.Fatalf("second completion: %v, want ErrAlreadyComplete", err)
			}
			if _, err := g.Complete(ctx, Ending{ID: "no-such-command", Failed: true, Reason: "x", Delivery: Delivery{Caller: e.supplier.eui, Kind: DeliveryFailure, At: e.now()}}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unknown command: %v, want ErrNotFound", err)
			}
			for _, id := range ids {
				c, err := st.Command(ctx, id)
				if err != nil || c.State != store.CommandResponded {
					t.Fatalf("command %s: %+v, %v", id, c.State, err)
				}
			}
			if d, _ := st.Depth(ctx); d != 0 {
				t.Fatalf("outbox %d after the completions, want 0", d)
			}
			a1, _ := db.AuditEvents(ctx, 0, store.MaxLimit)
			if got := len(a1) - len(a0); got != 2*len(ids) {
				t.Fatalf("%d audit entries, want %d (none for the refused completions)", got, 2*len(ids))
			}
			if _, err := db.VerifyAudit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
