package router

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
)

// BenchmarkSubmit measures the whole pipeline for signed critical commands
// on the embedded store: parse, checks, one P-256 verification, the counter,
// the anomaly detector on the store, the MAC with a cached Z, the durable
// record with its outbox row, and the audit entry. Commands are signed
// before the clock starts.
func BenchmarkSubmit(b *testing.B) {
	for _, group := range []bool{false, true} {
		for _, realDetector := range []bool{true, false} {
			name := fmt.Sprintf("group-commit=%t/anomaly-store=%t", group, realDetector)
			b.Run(name, func(b *testing.B) { benchmarkSubmit(b, group, realDetector) })
		}
	}
}

// benchmarkSubmit runs the pipeline with the store's ledger or the group
// ledger, and with the anomaly detector on the store or an in-memory fake
// (to show the router's own share).
func benchmarkSubmit(b *testing.B, group, realDetector bool) {
	ctx := context.Background()
	e := newStoreEnv(b, nil)
	var ledger Ledger = e.st
	if group {
		g := NewGroupLedger(e.db, 1, 256)
		defer g.Close()
		ledger = g
	}
	var detector Detector = e.det
	if realDetector {
		det, err := anomaly.New(ctx, anomaly.Config{Store: e.db.Anomaly(), Now: e.now})
		if err != nil {
			b.Fatal(err)
		}
		detector = NewAnomalyDetector(det)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: e.st, Certificates: e.certs,
		Detector: detector, Ledger: ledger, Auditor: e.st, Clock: e.now, Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	// Spread over many devices so that concurrent callers rarely overtake
	// each other's counters.
	targets := e.registerDevices(b, 256)
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = command(b, e.supplier, targets[i%len(targets)], codeDisable, uint64(i+1), true)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(16) // many callers at once, as over the API
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			// Concurrent submissions may land out of counter order; a
			// replay refusal still runs the whole pipeline but the MAC.
			r.Submit(ctx, e.supplier.caller(), msgs[i])
		}
	})
	b.StopTimer()
	// Report the mean time per stage, to show where the time goes.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "metertrust_router_stage_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			h := mt.GetHistogram()
			if h.GetSampleCount() > 0 {
				b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e6, mt.GetLabel()[0].GetValue()+"-µs")
			}
		}
	}
}
