package store

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store/storetest"
)

// BenchmarkClaimOutbox measures the forwarder's claim on SQLite and (with
// METERTRUST_TEST_PG) PostgreSQL: an outbox of 4,000 commands to 2,000
// meters (two pairs each), claimed 64 at a time with leases that lapse
// before the next claim, so every claim reads and leases 64 heads. It
// reports µs per claimed command and claim-floor, that time over the
// router's crypto floor per command (one ECDSA P-256 verification and one
// ECDH, docs/performance.md) measured in the same run. With barriers set,
// every fiftieth meter's outbox holds a barrier behind its first command;
// pair-order-only is the claim as it was before barriers, on the same
// outbox, for the comparison.
// PostgreSQL's statistics are taken after the outbox is filled.
func BenchmarkClaimOutbox(b *testing.B) {
	floor := cryptoFloor(b)
	for _, be := range []struct {
		name string
		dsn  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return storetest.SQLiteDSN(b) }},
		{"postgres", func(b *testing.B) string { return storetest.PostgresDSN(b) }},
	} {
		for _, v := range []struct {
			name               string
			barriers, pairOnly bool
		}{{"pair-order-only", false, true}, {"barriers=false", false, false}, {"barriers=true", true, false}} {
			barriers := v.barriers
			b.Run(be.name+"/"+v.name, func(b *testing.B) {
				ctx := context.Background()
				db := benchOpen(b, be.dsn(b))
				defer db.Close()
				const meters, limit = 2000, 64
				var items []Admission
				for m := range meters {
					target := fmt.Sprintf("AA%014X", m)
					items = append(items, Admission{Command: barrierCommand(fmt.Sprintf("a%d", m), rtSupplier, target, 1, false)})
					if barriers && m%50 == 0 {
						items = append(items, Admission{Command: barrierCommand(fmt.Sprintf("x%d", m), bTCoS, target, 1, true)})
					}
					items = append(items, Admission{Command: barrierCommand(fmt.Sprintf("b%d", m), bOther, target, 1, false)})
				}
				for len(items) > 0 {
					n := min(len(items), 200)
					res, _, err := db.Router().Admit(ctx, AdmitGroup{Items: items[:n], Seal: func(int) ([]byte, error) { return make([]byte, 120), nil }})
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
					items = items[n:]
				}
				if db.dialect == DialectPostgres {
					// As autovacuum would: the planner's statistics of the
					// outbox, not those of an empty table.
					if _, err := db.write().exec(ctx, "ANALYZE router_commands"); err != nil {
						b.Fatal(err)
					}
				}
				now, claimed := rtT0, 0
				start := time.Now()
				for b.Loop() {
					now = now.Add(time.Second)
					clause := barrierClause(db.dialect)
					if v.pairOnly {
						clause = "" // the claim before barriers
					}
					got, err := db.Router().claimOutbox(ctx, now, time.Millisecond, limit, clause)
					if err != nil {
						b.Fatal(err)
					}
					claimed += len(got)
				}
				if claimed == 0 {
					b.Fatal("nothing claimed")
				}
				per := time.Since(start).Seconds() * 1e6 / float64(claimed)
				b.ReportMetric(per, "µs/claimed")
				b.ReportMetric(per/floor, "claim-floor")
			})
		}
	}
}

// cryptoFloor returns the router's cryptographic floor per command in µs:
// one ECDSA P-256 verification and one P-256 ECDH.
func cryptoFloor(b *testing.B) float64 {
	ds, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("floor"))
	sig, _ := ecdsa.SignASN1(rand.Reader, ds, digest[:])
	ka, _ := ecdh.P256().GenerateKey(rand.Reader)
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	const n = 300
	start := time.Now()
	for range n {
		if !ecdsa.VerifyASN1(&ds.PublicKey, digest[:], sig) {
			b.Fatal("floor: verification failed")
		}
		if _, err := ka.ECDH(peer.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start).Seconds() * 1e6 / n
}
