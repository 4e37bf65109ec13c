package ra_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/metertrust/metertrust/internal/cputime"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
)

// floorOps are the operations of the cryptographic floor of one issuance
// from a CSR: the CSR's signature check (smki.ParseCSR), one ECDSA P-256
// signature and one verification; with the OCSP response, one signature
// and one verification more.
type floorOps struct {
	csrDER []byte
	key    *ecdsa.PrivateKey
	digest []byte
	sig    []byte
}

func newFloorOps(b *testing.B, csrDER []byte) *floorOps {
	b.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.Sum256(csrDER)
	sig, err := k.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	return &floorOps{csrDER: csrDER, key: k, digest: h[:], sig: sig}
}

func (f *floorOps) csr() {
	if _, err := smki.ParseCSR(f.csrDER); err != nil {
		panic(err)
	}
}

func (f *floorOps) sign() {
	if _, err := f.key.Sign(rand.Reader, f.digest, crypto.SHA256); err != nil {
		panic(err)
	}
}

func (f *floorOps) verify() {
	if !ecdsa.VerifyASN1(&f.key.PublicKey, f.digest, f.sig) {
		panic("bad signature")
	}
}

// floor is the CPU time of each floor operation, measured beside the
// benchmark.
type floor struct{ csr, sign, verify time.Duration }

func measureFloor(f *floorOps) floor {
	return floor{csr: cputime.PerOp(1000, f.csr), sign: cputime.PerOp(1000, f.sign), verify: cputime.PerOp(1000, f.verify)}
}

// issue is the floor of one certificate; withOCSP adds the signature and
// read-back verification of its OCSP response.
func (f floor) issue() time.Duration    { return f.csr + f.sign + f.verify }
func (f floor) withOCSP() time.Duration { return f.issue() + f.sign + f.verify }

// reportFloor reports n certificates issued in elapsed wall time and cpu
// CPU time against the floor (the mean of before and after): the
// throughput ratio, rate / (cores / floor), and the CPU ratio, floor / CPU
// time per certificate, which other work on the machine does not disturb.
func reportFloor(b *testing.B, n int, elapsed, cpu time.Duration, before, after floor) {
	fl := floor{(before.csr + after.csr) / 2, (before.sign + after.sign) / 2, (before.verify + after.verify) / 2}
	rate := float64(n) / elapsed.Seconds()
	cores := float64(runtime.GOMAXPROCS(0))
	perCert := cpu / time.Duration(n)
	b.ReportMetric(rate, "certs/s")
	b.ReportMetric(rate/(cores/fl.issue().Seconds()), "floor-ratio")
	b.ReportMetric(rate/(cores/fl.withOCSP().Seconds()), "floor-ratio-ocsp")
	b.ReportMetric(float64(perCert.Microseconds()), "cpu-µs/cert")
	b.ReportMetric(fl.issue().Seconds()/perCert.Seconds(), "cpu-ratio")
	b.ReportMetric(fl.withOCSP().Seconds()/perCert.Seconds(), "cpu-ratio-ocsp")
	b.ReportMetric(float64(fl.csr.Microseconds()), "csr-µs")
	b.ReportMetric(float64(fl.sign.Microseconds()), "sign-µs")
	b.ReportMetric(float64(fl.verify.Microseconds()), "verify-µs")
}

// BenchmarkIssueAPI measures single device certificates requested
// concurrently over the API (mutual TLS, keep-alive connections, one
// client and connection per goroutine; 8 and 32 of them) on SQLite (WAL,
// synchronous=FULL: durable before the answer), linted, with an OCSP
// response each. It reports certificates/s and the ratio to the floor
// measured in the same run: throughput / (cores / floor per certificate),
// without and with the OCSP response's signature and verification.
func BenchmarkIssueAPI(b *testing.B) {
	for _, clients := range []int{8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchIssueAPI(b, clients) })
	}
}

func benchIssueAPI(b *testing.B, clients int) {
	w := newWorld(b)
	ctx := context.Background()
	if _, err := w.auth.OpenBatch(ctx, "BENCH", 1<<40); err != nil {
		b.Fatal(err)
	}
	csrs := make([]string, 512)
	var der []byte
	for i := range csrs {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		eui := smki.EUI{0xF0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
		if der, err = smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui,
			KeyUsage: x509.KeyUsageDigitalSignature, HWType: smki.OIDHWTypeReferenceMeter}, k); err != nil {
			b.Fatal(err)
		}
		csrs[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	ops := newFloorOps(b, der)
	before := measureFloor(ops)
	b.ResetTimer()
	cpu := cputime.Now()
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		c, err := ra.NewClient(w.url, w.httpClient(&w.caller).Transport.(*http.Transport).TLSClientConfig, w.tokens["alice"])
		if err != nil {
			b.Error(err)
			return
		}
		var i int
		for pb.Next() {
			if _, err := c.IssueDevice(ctx, "BENCH", csrs[i%len(csrs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	cpu = cputime.Now() - cpu
	reportFloor(b, b.N, b.Elapsed(), cpu, before, measureFloor(ops))
}
