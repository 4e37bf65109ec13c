package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store/storetest"
)

// routerAudit appends n audit entries at at as the router writes them
// (router.toStoreAudit): action, and the refusal's kind and stage.
func routerAudit(t *testing.T, db *DB, at time.Time, n int, action, kind, stage string) {
	t.Helper()
	for i := range n {
		e := AuditEvent{Time: at.Add(time.Duration(i) * time.Millisecond), Actor: "90B3D51F30010000 (IS)", Action: action,
			Object: "0011223344556677", Outcome: OutcomeSuccess, Details: map[string]any{"target": "0011223344556677"}}
		if kind != "" {
			e.Outcome, e.Details["kind"], e.Details["detail"] = OutcomeRefused, kind, "refused for the test"
		}
		if stage != "" {
			e.Details["stage"] = stage
		}
		if _, err := db.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommandRates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		ops := db.Operator()
		now := time.Date(2026, 12, 5, 10, 30, 20, 0, time.UTC)
		m1, m2 := now.Add(-20*time.Minute).Truncate(time.Minute), now.Add(-5*time.Minute).Truncate(time.Minute)

		// Two hours ago: outside the window, never counted.
		routerAudit(t, db, now.Add(-2*time.Hour), 7, "router.command.accepted", "", "")
		routerAudit(t, db, m1.Add(time.Second), 5, "router.command.accepted", "", "")
		routerAudit(t, db, m1.Add(2*time.Second), 2, "router.command.refused", "signature", "signature")
		routerAudit(t, db, m1.Add(3*time.Second), 1, "router.command.refused", "malformed", "") // refused by the API layer
		routerAudit(t, db, m2.Add(4*time.Second), 1, "router.command.quarantined", "quarantined", "admit")
		routerAudit(t, db, m2.Add(5*time.Second), 1, "router.command.forwarded", "", "") // not a decision on a command
		if _, err := db.AppendAudit(ctx, AuditEvent{Time: m2, Actor: "olga", Action: "operator.login", Object: "olga", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}

		n, err := ops.RollUpCommandRates(ctx, now)
		if err != nil || n != 9 {
			t.Fatalf("RollUpCommandRates = %d, %v; want 9", n, err)
		}
		want := map[string]int64{
			rateKeyString(m1, RateAccepted, "admit", ""):                  5,
			rateKeyString(m1, RateRefused, "signature", "signature"):      2,
			rateKeyString(m1, RateRefused, RateStageRequest, "malformed"): 1,
			rateKeyString(m2, RateQuarantined, "admit", "quarantined"):    1,
		}
		checkRates(t, ops, now.Add(-RateWindow), want)

		// Nothing new: nothing counted twice.
		if n, err := ops.RollUpCommandRates(ctx, now); err != nil || n != 0 {
			t.Fatalf("second RollUpCommandRates = %d, %v; want 0", n, err)
		}
		checkRates(t, ops, now.Add(-RateWindow), want)

		// Several dashboards rolling up at once count each entry once.
		routerAudit(t, db, m2.Add(6*time.Second), 40, "router.command.accepted", "", "")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var total int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					n, err := ops.RollUpCommandRates(ctx, now)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if total != 40 {
			t.Errorf("concurrent rollups counted %d, want 40", total)
		}
		want[rateKeyString(m2, RateAccepted, "admit", "")] = 40
		checkRates(t, ops, now.Add(-RateWindow), want)
		if rs, err := ops.CommandRates(ctx, m2); err != nil || len(rs) != 2 {
			t.Errorf("CommandRates since %s = %v, %v; want the 2 rows of that minute", m2, rs, err)
		}

		// After a pause of two days: the old rows go, and of the entries
		// since only the last hour's are counted.
		later := now.Add(48 * time.Hour)
		routerAudit(t, db, later.Add(-3*time.Hour), 3, "router.command.accepted", "", "")
		routerAudit(t, db, later.Add(-time.Minute), 4, "router.command.refused", "replay", "counter")
		if n, err := ops.RollUpCommandRates(ctx, later); err != nil || n != 4 {
			t.Fatalf("RollUpCommandRates after a pause = %d, %v; want 4", n, err)
		}
		checkRates(t, ops, now.Add(-RateWindow), map[string]int64{
			rateKeyString(later.Add(-time.Minute).Truncate(time.Minute), RateRefused, "counter", "replay"): 4,
		})
	})
}

func rateKeyString(m time.Time, outcome, stage, reason string) string {
	return fmt.Sprintf("%s %s %s %s", m.UTC().Format("15:04"), outcome, stage, reason)
}

func checkRates(t *testing.T, ops *OperatorStore, since time.Time, want map[string]int64) {
	t.Helper()
	rs, err := ops.CommandRates(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rs {
		got[rateKeyString(r.Minute, r.Outcome, r.Stage, r.Reason)] += r.Count
	}
	if len(got) != len(want) {
		t.Errorf("CommandRates = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("CommandRates[%s] = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

// BenchmarkRollUpCommandRates measures the dashboard's rollup of the
// router's audit entries: 20,000 entries (four in five accepted, the rest
// refusals over four stages) appended in the last hour, then counted by
// one RollUpCommandRates; ns/entry is its cost per entry.
func BenchmarkRollUpCommandRates(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(b *testing.B) *DB
	}{
		{"sqlite", func(b *testing.B) *DB { return benchOpen(b, storetest.SQLiteDSN(b)) }},
		{"postgres", func(b *testing.B) *DB { return benchOpen(b, storetest.PostgresDSN(b)) }},
	} {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			db := be.open(b)
			defer db.Close()
			const n = 20000
			now := time.Now().UTC()
			stages := []string{"parse", "signature", "counter", "ownership"}
			var entries int64
			for b.Loop() {
				b.StopTimer()
				es := make([]AuditEvent, 0, 500)
				for i := range n {
					e := AuditEvent{Time: now.Add(-time.Duration(n-i) * 100 * time.Millisecond), Actor: "90B3D51F30010000 (IS)",
						Action: "router.command.accepted", Object: "c", Outcome: OutcomeSuccess, Details: map[string]any{"target": "0011223344556677"}}
					if i%5 == 4 {
						e.Action, e.Outcome = "router.command.refused", OutcomeRefused
						e.Details["kind"], e.Details["stage"] = "replay", stages[i%len(stages)]
					}
					if es = append(es, e); len(es) == cap(es) {
						if err := db.inTx(ctx, func(tx dbtx) error { _, err := appendAuditsIn(ctx, tx, es); return err }); err != nil {
							b.Fatal(err)
						}
						es = es[:0]
					}
				}
				b.StartTimer()
				got, err := db.Operator().RollUpCommandRates(ctx, now)
				if err != nil || got != n {
					b.Fatalf("RollUpCommandRates = %d, %v; want %d", got, err, n)
				}
				entries += got
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(entries), "ns/entry")
		})
	}
}

// FuzzRateKeyOf checks that any details text (the audit log holds what
// its writers gave) is counted somewhere: never a panic, never a refusal
// without a stage.
func FuzzRateKeyOf(f *testing.F) {
	f.Add("router.command.refused", `{"kind":"replay","stage":"counter"}`)
	f.Add("router.command.refused", `{"kind":"malformed"}`)
	f.Add("router.command.accepted", `{}`)
	f.Add("router.command.quarantined", `{"kind":"quarantined","stage":"admit"}`)
	f.Add("router.command.refused", `{"kind":1,"stage":[]}`)
	f.Fuzz(func(t *testing.T, action, details string) {
		if _, ok := rateActions[action]; !ok {
			action = "router.command.refused"
		}
		k := rateKeyOf(time.Unix(1_800_000_000, 0), action, details)
		if k.stage == "" || k.outcome == "" || k.minute%60 != 0 {
			t.Fatalf("rateKeyOf(%q, %q) = %+v", action, details, k)
		}
	})
}
