//go:build !race

package commands

import (
	"os"
	"testing"
)

// TestPerformanceBudget holds the codec to its budget: parsing a message and
// checking its MAC with a cached Z must cost under 5% of one ECDSA P-256
// verification, so the router's cost per command is the signature check.
// It does not run under the race detector, which distorts the ratio.
func TestPerformanceBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("measures timings; skipped with -short")
	}
	f := newBenchFixture(t)
	// The fastest of three runs of each, so a loaded machine does not make
	// the ratio flap.
	fastest := func(fn func(b *testing.B)) int64 {
		best := int64(0)
		for range 3 {
			if ns := testing.Benchmark(fn).NsPerOp(); best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}
	verify := fastest(func(b *testing.B) {
		for b.Loop() {
			_ = VerifySignature(f.supPub, f.m)
		}
	})
	cheap := fastest(func(b *testing.B) {
		for b.Loop() {
			m, err := Parse(f.raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyMAC(DeriveKey(f.z, m.MACInfo()), m); err != nil {
				b.Fatal(err)
			}
		}
	})
	ratio := float64(cheap) / float64(verify)
	t.Logf("parse + MAC with cached Z: %d ns/op; ECDSA verify: %d ns/op; ratio %.1f%%", cheap, verify, 100*ratio)
	if ratio >= 0.05 && os.Getenv("METERTRUST_SKIP_TIMING") == "" {
		t.Errorf("parse + MAC with cached Z costs %.1f%% of an ECDSA verification, budget 5%%", 100*ratio)
	}
}
