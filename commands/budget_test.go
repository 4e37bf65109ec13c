//go:build !race

package commands

import (
	"os"
	"testing"
	"time"
)

// TestPerformanceBudget holds the codec to its budget: parsing a message and
// checking its MAC with a cached Z must cost under 5% of one ECDSA P-256
// verification, so the router's cost per command is the signature check.
// Each side is timed in five rounds and the fastest round counts, so a
// loaded machine does not make the ratio flap. It does not run under the
// race detector, which distorts the ratio; METERTRUST_SKIP_TIMING=1 reports
// without failing.
func TestPerformanceBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("measures timings; skipped with -short")
	}
	f := newBenchFixture(t)
	fastest := func(n int, fn func()) time.Duration {
		best := time.Duration(0)
		for range 5 {
			start := time.Now()
			for range n {
				fn()
			}
			if d := time.Since(start) / time.Duration(n); best == 0 || d < best {
				best = d
			}
		}
		return best
	}
	verify := fastest(50, func() {
		if err := VerifySignature(f.supPub, f.m); err != nil {
			t.Fatal(err)
		}
	})
	cheap := fastest(2000, func() {
		m, err := Parse(f.raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyMAC(DeriveKey(f.z, m.MACInfo()), m); err != nil {
			t.Fatal(err)
		}
	})
	for name, raw := range codecMessages(t) {
		full := fastest(500, func() { parseEncodeFull(t, raw) })
		r := float64(full) / float64(verify)
		t.Logf("%s: parse and encode with its payload: %v; ratio %.1f%%", name, full, 100*r)
		if r >= 0.05 && os.Getenv("METERTRUST_SKIP_TIMING") == "" {
			t.Errorf("%s: parsing and encoding with its payload costs %.1f%% of an ECDSA verification, budget 5%%", name, 100*r)
		}
	}
	ratio := float64(cheap) / float64(verify)
	t.Logf("parse + MAC with cached Z: %v; ECDSA verify: %v; ratio %.1f%%", cheap, verify, 100*ratio)
	if ratio >= 0.05 && os.Getenv("METERTRUST_SKIP_TIMING") == "" {
		t.Errorf("parse + MAC with cached Z costs %.1f%% of an ECDSA verification, budget 5%%", 100*ratio)
	}
}
