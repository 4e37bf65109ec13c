package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestInstrument checks, on both backends, that an instrumented store
// times its transactions, its statements outside a transaction and its
// audit group commits, counts the transactions rolled back, and that an
// uninstrumented one records nothing and runs its statements untimed.
func TestInstrument(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, ok := db.read().(timed); ok {
			t.Fatal("an uninstrumented store times its statements")
		}
		reg := prometheus.NewRegistry()
		if err := db.Instrument(reg); err != nil {
			t.Fatal(err)
		}
		if err := db.Instrument(reg); err == nil {
			t.Error("instrumenting twice with one registry: no error")
		}
		if _, err := db.AppendAudit(ctx, AuditEvent{Time: time.Now(), Actor: "test", Action: "test.metrics", Object: "x", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SMKI().CA(ctx, "no-such-ca"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("CA of no name: %v", err)
		}
		boom := errors.New("boom")
		if err := db.inTx(ctx, func(dbtx) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("inTx: %v", err)
		}
		if err := db.inSnapshot(ctx, func(tx dbtx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		// The dialect's own paths still find their handle under the timing.
		if _, pg := asPG(db.write()); pg != (db.Dialect() == DialectPostgres) {
			t.Errorf("asPG of a timed handle on %s = %v", db.Dialect(), pg)
		}

		got := gatherCounts(t, reg)
		for _, want := range []string{
			`metertrust_store_operation_duration_seconds{op="tx"}`,
			`metertrust_store_operation_duration_seconds{op="snapshot"}`,
			`metertrust_store_operation_duration_seconds{op="query_row"}`,
			`metertrust_store_group_commit_duration_seconds{group="audit"}`,
			`metertrust_store_group_commit_size{group="audit"}`,
			`metertrust_store_transaction_errors_total`,
		} {
			if got[want] < 1 {
				t.Errorf("%s = %v, want at least 1 (all: %v)", want, got[want], got)
			}
		}
	})
}

// gatherCounts returns each series of reg as name{label="value"} with its
// counter value or histogram sample count.
func gatherCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if ls := m.GetLabel(); len(ls) > 0 {
				key += "{"
				for i, l := range ls {
					if i > 0 {
						key += ","
					}
					key += l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			}
		}
	}
	return out
}
