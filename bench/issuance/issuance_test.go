package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"runtime"
	"testing"
	"time"

	cfconfig "github.com/cloudflare/cfssl/config"
	cflog "github.com/cloudflare/cfssl/log"
	cfsigner "github.com/cloudflare/cfssl/signer"
	cflocal "github.com/cloudflare/cfssl/signer/local"
	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/authority/provisioner"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/cputime"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// goroutines is how many requests are in flight at once.
const goroutines = 32

// BenchmarkIssuance issues single certificates from a P-256 CSR,
// goroutines at a time, with each system, and reports certificates/s, CPU
// time per certificate and the CPU-time ratio to the floor measured in the
// same run (CSR signature check, one signature, one verification).
//
// What each does per certificate: metertrust (device profile, SMKI CSR)
// lints, signs once, reads back with its own reader (one verification),
// signs and reads back an OCSP response, and records both with their audit
// events in a durable SQLite transaction shared by concurrent requests;
// step-ca's embedded authority (no database, no provisioner) and cfssl's
// local signer (default profile, no database) build with
// crypto/x509.CreateCertificate (one signature and its verification) and
// keep nothing.
func BenchmarkIssuance(b *testing.B) {
	issuerKey, issuerCert, rootCert := newHierarchy(b)
	csrDER := genericCSR(b)
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		b.Fatal(err)
	}
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))

	b.Run("metertrust-sqlite", func(b *testing.B) {
		a, devCSR := newMetertrust(b)
		run(b, csrDER, func() error {
			_, err := a.IssueDevice(context.Background(), "BENCH", devCSR)
			return err
		})
	})
	b.Run("stepca-embedded", func(b *testing.B) {
		auth, err := authority.NewEmbedded(authority.WithX509Signer(issuerCert, issuerKey), authority.WithX509RootCerts(rootCert))
		if err != nil {
			b.Fatal(err)
		}
		opts := provisioner.SignOptions{NotAfter: provisioner.NewTimeDuration(time.Now().Add(24 * time.Hour))}
		run(b, csrDER, func() error {
			_, err := auth.SignWithContext(context.Background(), csr, opts)
			return err
		})
	})
	b.Run("cfssl-local", func(b *testing.B) {
		cflog.Level = cflog.LevelError // not a line per certificate
		s, err := cflocal.NewSigner(issuerKey, issuerCert, x509.ECDSAWithSHA256, &cfconfig.Signing{Default: cfconfig.DefaultConfig()})
		if err != nil {
			b.Fatal(err)
		}
		run(b, csrDER, func() error {
			_, err := s.Sign(cfsigner.SignRequest{Request: csrPEM})
			return err
		})
	})
}

func run(b *testing.B, csrDER []byte, issue func() error) {
	if err := issue(); err != nil { // warm up, and fail early
		b.Fatal(err)
	}
	before := measureFloor(csrDER)
	b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := issue(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu = cputime.Now() - cpu
	fl := (before + measureFloor(csrDER)) / 2
	perCert := cpu / time.Duration(b.N)
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "certs/s")
	b.ReportMetric(rate/(float64(runtime.GOMAXPROCS(0))/fl.Seconds()), "floor-ratio")
	b.ReportMetric(float64(perCert.Microseconds()), "cpu-µs/cert")
	b.ReportMetric(fl.Seconds()/perCert.Seconds(), "cpu-ratio")
}

// measureFloor is the CPU time of the floor of one issuance: the CSR's
// signature check, one signature and one verification, each run on every
// core at once.
func measureFloor(csrDER []byte) time.Duration {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256(csrDER)
	sig, _ := k.Sign(rand.Reader, h[:], crypto.SHA256)
	return cputime.PerOp(500, func() {
		r, _ := x509.ParseCertificateRequest(csrDER)
		r.CheckSignature()
	}) + cputime.PerOp(500, func() { k.Sign(rand.Reader, h[:], crypto.SHA256) }) +
		cputime.PerOp(500, func() { ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) })
}

// newHierarchy makes a P-256 root and intermediate for step-ca and cfssl.
func newHierarchy(b *testing.B) (*ecdsa.PrivateKey, *x509.Certificate, *x509.Certificate) {
	b.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		b.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bench issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert, root
}

// genericCSR is a P-256 CSR with a common name, for step-ca and cfssl.
func genericCSR(b *testing.B) []byte {
	b.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "device.example"}, DNSNames: []string{"device.example"}}, k)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// newMetertrust is metertrust's CA on SQLite in a TempDir with an open
// batch, and an SMKI device CSR.
func newMetertrust(b *testing.B) (*ca.Authority, []byte) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { keys.Close() })
	a, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Init(ctx, ca.InitRequest{}); err != nil {
		b.Fatal(err)
	}
	if _, err := a.OpenBatch(ctx, "BENCH", 1<<40); err != nil {
		b.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: smki.EUI{0xF0, 0, 0, 0, 0, 0, 0, 1},
		KeyUsage: x509.KeyUsageDigitalSignature, HWType: smki.OIDHWTypeReferenceMeter}, k)
	if err != nil {
		b.Fatal(err)
	}
	return a, csr
}
