package store

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// dbMetrics are the store's latencies: each transaction (inTx, inSnapshot)
// and each statement run outside one, by operation, and the group commits
// of audit appends and anomaly checks.
type dbMetrics struct {
	// Pre-bound observers, so that no statement looks up its labels.
	tx, snapshot, exec, query, queryRow prometheus.Observer
	txErrors                            prometheus.Counter
	groupAudit, groupAnomaly            prometheus.Observer
	sizeAudit, sizeAnomaly              prometheus.Observer
}

// metricsHolder is where a DB keeps its metrics once Instrument is called.
type metricsHolder = atomic.Pointer[dbMetrics]

// Instrument creates the store's metrics (metertrust_store_...) and
// registers them with reg; from then on db times its transactions,
// statements and group commits. Call it once, before db is shared.
func (db *DB) Instrument(reg prometheus.Registerer) error {
	ops := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "metertrust", Subsystem: "store", Name: "operation_duration_seconds",
		Help: "Store latency: a whole transaction (tx, including its commit), a read snapshot, " +
			"or one statement outside a transaction (exec, query, query_row), by operation.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 13),
	}, []string{"op"})
	txErrors := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metertrust", Subsystem: "store", Name: "transaction_errors_total",
		Help: "Transactions rolled back: their work failed or their commit did.",
	})
	groups := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "metertrust", Subsystem: "store", Name: "group_commit_duration_seconds",
		Help:    "Time to commit one group of the store's group commits (audit appends, anomaly checks).",
		Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 12),
	}, []string{"group"})
	sizes := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "metertrust", Subsystem: "store", Name: "group_commit_size",
		Help:    "Items committed by one group of the store's group commits.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	}, []string{"group"})
	for _, c := range []prometheus.Collector{ops, txErrors, groups, sizes} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	db.metrics.Store(&dbMetrics{
		tx: ops.WithLabelValues("tx"), snapshot: ops.WithLabelValues("snapshot"),
		exec: ops.WithLabelValues("exec"), query: ops.WithLabelValues("query"), queryRow: ops.WithLabelValues("query_row"),
		txErrors:   txErrors,
		groupAudit: groups.WithLabelValues("audit"), groupAnomaly: groups.WithLabelValues("anomaly"),
		sizeAudit: sizes.WithLabelValues("audit"), sizeAnomaly: sizes.WithLabelValues("anomaly"),
	})
	return nil
}

// observeGroup returns the Observe of one of the store's groups.
func (db *DB) observeGroup(pick func(m *dbMetrics) (took, size prometheus.Observer)) func(int, time.Duration) {
	return func(n int, d time.Duration) {
		if m := db.metrics.Load(); m != nil {
			took, size := pick(m)
			took.Observe(d.Seconds())
			size.Observe(float64(n))
		}
	}
}

// timed is a dbtx outside a transaction whose statements are timed.
type timed struct {
	dbtx
	m *dbMetrics
}

// withTiming returns h timed when db is instrumented, else h itself.
func (db *DB) withTiming(h dbtx) dbtx {
	if m := db.metrics.Load(); m != nil {
		return timed{h, m}
	}
	return h
}

func (t timed) exec(ctx context.Context, q string, args ...any) (int64, error) {
	start := time.Now()
	n, err := t.dbtx.exec(ctx, q, args...)
	t.m.exec.Observe(time.Since(start).Seconds())
	return n, err
}

// query times the query until its first rows are ready, not their reading.
func (t timed) query(ctx context.Context, q string, args ...any) (rows, error) {
	start := time.Now()
	r, err := t.dbtx.query(ctx, q, args...)
	t.m.query.Observe(time.Since(start).Seconds())
	return r, err
}

// queryRow times the statement to the end of its Scan, when the row is
// read (pgx and database/sql run it then, or before).
func (t timed) queryRow(ctx context.Context, q string, args ...any) row {
	return timedRow{t.dbtx.queryRow(ctx, q, args...), time.Now(), t.m}
}

type timedRow struct {
	r     row
	start time.Time
	m     *dbMetrics
}

func (r timedRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	r.m.queryRow.Observe(time.Since(r.start).Seconds())
	return err
}

// observeTx records one transaction of inTx (ok false: rolled back) or
// inSnapshot.
func (db *DB) observeTx(snapshot bool, start time.Time, ok bool) {
	m := db.metrics.Load()
	if m == nil {
		return
	}
	if snapshot {
		m.snapshot.Observe(time.Since(start).Seconds())
		return
	}
	m.tx.Observe(time.Since(start).Seconds())
	if !ok {
		m.txErrors.Inc()
	}
}

// asPG returns the PostgreSQL handle under tx, timed or not.
func asPG(tx dbtx) (pgTx, bool) {
	if t, ok := tx.(timed); ok {
		tx = t.dbtx
	}
	p, ok := tx.(pgTx)
	return p, ok
}
