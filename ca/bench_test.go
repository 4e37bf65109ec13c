package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"log/slog"
	"runtime"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/cputime"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The benchmarks measure the raw cost of each cryptographic operation the
// device issuance path performs, then the path itself, with and without
// linting, on the in-memory store fake (memStore: the CA's own cost) and on
// SQLite in a TempDir (the embedded store, as the CLI runs). See
// docs/performance.md, section "SMKI issuance".

type benchFixture struct {
	a      *Authority
	csr    []byte
	device []byte // a device certificate DER
	dca    *smki.Certificate
	key    *ecdsa.PrivateKey
}

func newBenchFixture(b *testing.B, sqlite, lint bool) *benchFixture {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	var st Store = newMemStore()
	if sqlite {
		db, err := store.OpenDataDir(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		st = db.SMKI()
	}
	a, err := New(Config{Store: st, Keys: keys, Logger: slog.New(slog.DiscardHandler), DisableLint: !lint})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Init(ctx, InitRequest{}); err != nil {
		b.Fatal(err)
	}
	if _, err := a.OpenBatch(ctx, "BENCH", 1<<40); err != nil {
		b.Fatal(err)
	}
	k := newKey(b)
	f := &benchFixture{a: a, csr: deviceCSR(b, k, deviceEUI, x509.KeyUsageDigitalSignature), key: k}
	rec, err := a.IssueDevice(ctx, "BENCH", f.csr)
	if err != nil {
		b.Fatal(err)
	}
	f.device = rec.DER
	info, err := a.CA(ctx, "BENCH")
	if err != nil {
		b.Fatal(err)
	}
	if f.dca, err = smki.ParseCertificate(info.CertDER); err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkRaw(b *testing.B) {
	f := newBenchFixture(b, false, false)
	b.Run("CSRCheck", func(b *testing.B) { // smki.ParseCSR: parse + ECDSA verify
		for b.Loop() {
			if _, err := smki.ParseCSR(f.csr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ECDSASign", func(b *testing.B) {
		h := sha256.Sum256(f.device)
		for b.Loop() {
			if _, err := f.key.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ECDSAVerify", func(b *testing.B) {
		h := sha256.Sum256(f.device)
		sig, err := f.key.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if !ecdsa.VerifyASN1(&f.key.PublicKey, h[:], sig) {
				b.Fatal("bad signature")
			}
		}
	})
	b.Run("ReadBack", func(b *testing.B) { // smki.ParseCertificate + profile + signature
		for b.Loop() {
			c, err := smki.ParseCertificate(f.device)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.CheckSignatureFrom(f.dca); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("KeyGen", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Zlint", func(b *testing.B) { // zcrypto parse + RFC 5280/5480 lints
		l, err := newLinter()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			zc, err := zx509.ParseCertificate(standInCopy(b, f))
			if err != nil {
				b.Fatal(err)
			}
			zlint.LintCertificateEx(zc, l.reg)
		}
	})
}

// standInCopy returns a device certificate zcrypto can parse (the lint copy
// carries anyPolicy).
func standInCopy(b *testing.B, f *benchFixture) []byte {
	b.Helper()
	tp, err := deviceTemplate(&f.key.PublicKey, smki.OIDHWTypeReferenceMeter, deviceEUI, UsageDS, f.a.now())
	if err != nil {
		b.Fatal(err)
	}
	c := *tp.cert
	c.ExtraExtensions = standInPolicies(tp.extraExts)
	der, err := x509.CreateCertificate(rand.Reader, &c, &c, &f.key.PublicKey, f.key)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

func BenchmarkIssueDevice(b *testing.B) {
	for _, tc := range []struct {
		name         string
		sqlite, lint bool
	}{
		{"mem/nolint", false, false},
		{"mem/lint", false, true},
		{"sqlite/nolint", true, false},
		{"sqlite/lint", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newBenchFixture(b, tc.sqlite, tc.lint)
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.a.IssueDevice(ctx, "BENCH", f.csr); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
}

// BenchmarkBulkDevices measures the bulk path per device (two key pairs,
// two certificates, each with its OCSP response), both cores, on SQLite. It
// reports certificates/s, its ratio to the bulk floor measured in the same
// run (key generation, one signature and one verification per certificate;
// -ocsp: plus the response's signature and verification), the CPU time per
// certificate against the same floor (which other work on the machine does
// not disturb), and the peak heap in use, sampled after each chunk (flat in
// N: compare -benchtime 2000x with 20000x).
func BenchmarkBulkDevices(b *testing.B) {
	for _, lint := range []bool{false, true} {
		name := "nolint"
		if lint {
			name = "lint"
		}
		b.Run(name, func(b *testing.B) {
			f := newBenchFixture(b, true, lint)
			before := measureBulkFloor(f.key)
			n := b.N
			var peak uint64
			var ms runtime.MemStats
			b.ResetTimer()
			cpu := cputime.Now()
			if _, err := f.a.IssueDevices(context.Background(), BulkRequest{Batch: "BENCH", Count: n, Progress: func(done, total int) {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu = cputime.Now() - cpu
			after := measureBulkFloor(f.key)
			fl := (before.total() + after.total()) / 2
			flOCSP := fl + (before.sign+after.sign+before.verify+after.verify)/2
			certs := 2 * n
			rate := float64(certs) / b.Elapsed().Seconds()
			cores := float64(runtime.GOMAXPROCS(0))
			perCert := cpu / time.Duration(certs)
			b.ReportMetric(rate, "certs/s")
			b.ReportMetric(rate/(cores/fl.Seconds()), "floor-ratio")
			b.ReportMetric(rate/(cores/flOCSP.Seconds()), "floor-ratio-ocsp")
			b.ReportMetric(float64(perCert.Microseconds()), "cpu-µs/cert")
			b.ReportMetric(fl.Seconds()/perCert.Seconds(), "cpu-ratio")
			b.ReportMetric(flOCSP.Seconds()/perCert.Seconds(), "cpu-ratio-ocsp")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// bulkFloor is the CPU time of each operation of the bulk floor.
type bulkFloor struct{ keygen, sign, verify time.Duration }

func (f bulkFloor) total() time.Duration { return f.keygen + f.sign + f.verify }

// measureBulkFloor measures the floor operations on every core at once
// (GOMAXPROCS goroutines, contending as the bulk path's workers do), in CPU
// time.
func measureBulkFloor(k *ecdsa.PrivateKey) bulkFloor {
	h := sha256.Sum256([]byte("floor"))
	sig, _ := k.Sign(rand.Reader, h[:], crypto.SHA256)
	return bulkFloor{
		keygen: cputime.PerOp(500, func() { ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }),
		sign:   cputime.PerOp(500, func() { k.Sign(rand.Reader, h[:], crypto.SHA256) }),
		verify: cputime.PerOp(500, func() { ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) }),
	}
}

// BenchmarkSignOCSP measures signing one pre-signed OCSP response (what
// issuance, revocation and the refresher add per certificate), with and
// without linting.
func BenchmarkSignOCSP(b *testing.B) {
	for _, lint := range []bool{false, true} {
		name := "nolint"
		if lint {
			name = "lint"
		}
		b.Run(name, func(b *testing.B) {
			f := newBenchFixture(b, false, lint)
			ctx := context.Background()
			iss, err := f.a.onlineIssuer(ctx, "BENCH")
			if err != nil {
				b.Fatal(err)
			}
			rec := store.Certificate{CA: "BENCH", Serial: []byte{0x42}}
			for b.Loop() {
				if _, err := f.a.signOCSP(iss.ocspSigner(), rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "responses/s")
		})
	}
}

// BenchmarkIssueDeviceParallel issues single device certificates from 32
// goroutines at once on SQLite, linted (the API's path without HTTP and
// TLS), so that they share group commits. It reports certificates/s and,
// against the floor measured in the same run (CSR check, one signature, one
// verification per certificate; -ocsp: plus the response's signature and
// verification), the throughput ratio and the CPU-time ratio.
func BenchmarkIssueDeviceParallel(b *testing.B) {
	f := newBenchFixture(b, true, true)
	ctx := context.Background()
	h := sha256.Sum256(f.device)
	sig, err := f.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	measure := func() (csr, sign, verify time.Duration) {
		return cputime.PerOp(500, func() { smki.ParseCSR(f.csr) }),
			cputime.PerOp(500, func() { f.key.Sign(rand.Reader, h[:], crypto.SHA256) }),
			cputime.PerOp(500, func() { ecdsa.VerifyASN1(&f.key.PublicKey, h[:], sig) })
	}
	c0, s0, v0 := measure()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.a.IssueDevice(ctx, "BENCH", f.csr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu = cputime.Now() - cpu
	c1, s1, v1 := measure()
	fl := (c0 + s0 + v0 + c1 + s1 + v1) / 2
	flOCSP := fl + (s0+v0+s1+v1)/2
	rate := float64(b.N) / b.Elapsed().Seconds()
	cores := float64(runtime.GOMAXPROCS(0))
	perCert := cpu / time.Duration(b.N)
	b.ReportMetric(rate, "certs/s")
	b.ReportMetric(rate/(cores/fl.Seconds()), "floor-ratio")
	b.ReportMetric(rate/(cores/flOCSP.Seconds()), "floor-ratio-ocsp")
	b.ReportMetric(float64(perCert.Microseconds()), "cpu-µs/cert")
	b.ReportMetric(fl.Seconds()/perCert.Seconds(), "cpu-ratio")
	b.ReportMetric(flOCSP.Seconds()/perCert.Seconds(), "cpu-ratio-ocsp")
}
