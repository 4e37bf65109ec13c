package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store/storetest"
)

// bulkCerts returns n device certificates of realistic size (a device
// certificate is about 500 bytes of DER) with serials from start.
func bulkCerts(ca string, start, n int) []Certificate {
	der := make([]byte, 500)
	rand.Read(der)
	out := make([]Certificate, n)
	for i := range out {
		s := start + i
		out[i] = Certificate{
			CA: ca, Serial: []byte{0x42, byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s), 0x01, 0x02, 0x03},
			Kind: KindDevice, EUI: fmt.Sprintf("00DB1234%08X", s), Role: -1, Usage: UsageKA,
			NotBefore: t0, NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), DER: der,
		}
	}
	return out
}

// BenchmarkPutCertificates measures bulk issuance in batches of 1,000,
// reporting certificates per second, on SQLite and (with METERTRUST_TEST_PG)
// PostgreSQL.
func BenchmarkPutCertificates(b *testing.B) {
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
			if err := db.SMKI().CreateCA(ctx, testCA("E9", CAKindDCA, 0)); err != nil {
				b.Fatal(err)
			}
			const batch = 1000
			start := time.Now()
			n := 0
			for b.Loop() {
				if err := db.SMKI().PutCertificates(ctx, bulkCerts("E9", n, batch)...); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "certs/s")
		})
	}
}

// TestPutCertificatesBulk stores 200,000 certificates in batches of 1,000
// on SQLite, the bulk-issuance load the CA must sustain, and checks it
// takes well under a minute (without the race detector, which slows SQLite's
// translated C several times over; there the volume is reduced).
func TestPutCertificatesBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk load")
	}
	total, limit := 200000, 50*time.Second
	if raceEnabled {
		total, limit = 5000, 60*time.Second
	}
	ctx := context.Background()
	db := sqliteOpener(t)(t)
	mustCreateCA(t, db, testCA("E10", CAKindDCA, 0))
	start := time.Now()
	for n := 0; n < total; n += 1000 {
		if err := db.SMKI().PutCertificates(ctx, bulkCerts("E10", n, 1000)...); err != nil {
			t.Fatalf("batch at %d: %v", n, err)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d certificates in %v (%.0f/s)", total, elapsed, float64(total)/elapsed.Seconds())
	if elapsed > limit {
		t.Errorf("%d certificates took %v, want under %v", total, elapsed, limit)
	}
	got, err := db.SMKI().FindCertificates(ctx, CertQuery{EUI: fmt.Sprintf("00DB1234%08X", total-1)})
	if err != nil || len(got) != 1 {
		t.Errorf("look-up by EUI after bulk load = %d certificates, %v; want 1", len(got), err)
	}
}

// benchOpen opens a store on dsn for a benchmark, which closes it itself.
func benchOpen(b *testing.B, dsn string) *DB {
	b.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		b.Fatalf("opening the benchmark store: %v", err)
	}
	return db
}
