package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
)

// BenchmarkSubmit measures the whole pipeline for signed critical commands
// on the embedded store: parse, checks, one P-256 verification, the counter,
// then one group commit deciding the anomaly thresholds (on the store),
// sealing with a cached Z and recording with the outbox row and the audit
// entry. Commands are signed before the clock starts.
func BenchmarkSubmit(b *testing.B) { benchSubmit(b, 0) }

// BenchmarkSubmitWithRollup is BenchmarkSubmit while a dashboard rolls up
// the audit log's command rates every 100 ms (serve operator does every
// 10 s), to show what the rollup's reads and its short write cost the
// admission path.
func BenchmarkSubmitWithRollup(b *testing.B) { benchSubmit(b, 100*time.Millisecond) }

func benchSubmit(b *testing.B, rollup time.Duration) {
	ctx := context.Background()
	e := newStoreEnv(b, nil)
	det, err := anomaly.New(ctx, anomaly.Config{Store: e.db.Anomaly(), Now: e.now})
	if err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: e.st, Certificates: e.certs,
		Ledger: e.st, Admitter: NewGroupAdmitter(e.db.Router(), det, 1, time.Minute, e.now), Auditor: e.st, Clock: e.now, Metrics: m})
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
	var next, rolled atomic.Int64
	if rollup > 0 {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(rollup)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					n, err := e.db.Operator().RollUpCommandRates(ctx, e.now())
					if err != nil {
						b.Error(err)
					}
					rolled.Add(n)
				}
			}
		}()
		defer func() { close(stop); <-done }()
	}
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
	if rollup > 0 {
		b.ReportMetric(float64(rolled.Load())/float64(b.N), "rolled-up/op")
	}
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
