package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// TestFastTBSMatchesCreateCertificate checks that the fast path's patched
// TBSCertificate is byte for byte what crypto/x509 builds for the same
// serial, key, EUI and times, for each end-entity profile, before and after
// 2050 (where the times change encoding).
func TestFastTBSMatchesCreateCertificate(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		time.Date(2045, 6, 1, 0, 0, 0, 0, time.UTC), // org notAfter in 2055: GeneralizedTime
		time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		e := newTestEnv(t)
		e.init(t)
		ctx := context.Background()
		if _, err := e.a.OpenBatch(ctx, "B1", 1000); err != nil {
			t.Fatal(err)
		}
		e.clock.t = at
		profiles := []struct {
			name string
			ca   string
			mk   func(k crypto.PublicKey, eui smki.EUI, now time.Time) (*template, error)
		}{
			{"device-ds", "B1", func(k crypto.PublicKey, eui smki.EUI, now time.Time) (*template, error) {
				return deviceTemplate(k, smki.OIDHWTypeReferenceMeter, eui, UsageDS, now)
			}},
			{"device-ka", "B1", func(k crypto.PublicKey, eui smki.EUI, now time.Time) (*template, error) {
				return deviceTemplate(k, smki.OIDHWTypeReferenceMeter, eui, UsageKA, now)
			}},
			{"org-ds", NameOCA, func(k crypto.PublicKey, eui smki.EUI, now time.Time) (*template, error) {
				return orgTemplate(k, "Supplier A", smki.RoleSupplier, eui, UsageDS, now)
			}},
			{"org-pp-ka-no-cn", NameOCA, func(k crypto.PublicKey, eui smki.EUI, now time.Time) (*template, error) {
				return orgTemplate(k, "", smki.RoleSupplier, eui, UsagePPKA, now)
			}},
		}
		for _, p := range profiles {
			t.Run(at.Format("2006")+"/"+p.name, func(t *testing.T) {
				iss, err := e.a.onlineIssuer(ctx, p.ca)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 20 {
					var eui smki.EUI
					rand.Read(eui[:])
					if i == 0 {
						eui = smki.EUI{} // all zero
					}
					now := at.Add(time.Duration(i) * 7919 * time.Second)
					tp, err := p.mk(&newKey(t).PublicKey, eui, now)
					if err != nil {
						t.Fatal(err)
					}
					sn, err := e.a.serial()
					if err != nil {
						t.Fatal(err)
					}
					tt, err := e.a.tbsFor(iss, tp, sn, now)
					if err != nil || tt == nil {
						t.Fatalf("tbsFor: %v, %v", tt, err)
					}
					got, ok := tt.patch(tp, sn)
					if !ok {
						t.Fatal("patch refused")
					}
					want, err := e.a.slowTBS(iss, tp, sn)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("patched TBS differs from crypto/x509's:\n got %x\nwant %x", got, want)
					}
				}
			})
		}
	}
}

// TestFastPathIssuesSameCertificate issues through IssueDevice and IssueOrg
// (the fast path) and through the slow path, and checks each issued
// TBSCertificate against crypto/x509's for the same inputs.
func TestFastPathIssuesSameCertificate(t *testing.T) {
	for _, slow := range []bool{false, true} {
		e := newTestEnv(t)
		e.a.slowSign = slow
		e.init(t)
		ctx := context.Background()
		if _, err := e.a.OpenBatch(ctx, "B1", 1000); err != nil {
			t.Fatal(err)
		}
		dca, err := e.a.onlineIssuer(ctx, "B1")
		if err != nil {
			t.Fatal(err)
		}
		oca, err := e.a.onlineIssuer(ctx, NameOCA)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			k := newKey(t)
			eui := smki.EUI{0xF0, 0, 0, 0, 0, 0, 1, byte(i)}
			rec, err := e.a.IssueDevice(ctx, "B1", deviceCSR(t, k, eui, x509.KeyUsageKeyAgreement))
			if err != nil {
				t.Fatal(err)
			}
			tp, err := deviceTemplate(&k.PublicKey, smki.OIDHWTypeReferenceMeter, eui, UsageKA, e.clock.t)
			if err != nil {
				t.Fatal(err)
			}
			checkSameTBS(t, e.a, dca, tp, rec.Serial, rec.DER)

			k = newKey(t)
			org, err := e.a.IssueOrg(ctx, OrgRequest{CSR: orgCSR(t, k, smki.RoleSupplier, eui, "S", x509.KeyUsageDigitalSignature),
				Role: smki.RoleSupplier, EUI: eui, Usage: UsageDS})
			if err != nil {
				t.Fatal(err)
			}
			tp, err = orgTemplate(&k.PublicKey, "S", smki.RoleSupplier, eui, UsageDS, e.clock.t)
			if err != nil {
				t.Fatal(err)
			}
			checkSameTBS(t, e.a, oca, tp, org.Serial, org.DER)
			e.clock.t = e.clock.t.Add(time.Hour)
		}
	}
}

func checkSameTBS(t *testing.T, a *Authority, iss *issuer, tp *template, serial, der []byte) {
	t.Helper()
	want, err := a.slowTBS(iss, tp, new(big.Int).SetBytes(serial))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tbsOf(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("issued TBS differs from crypto/x509's for the same inputs")
	}
	sc, err := smki.ParseCertificateStrict(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.CheckSignatureFrom(iss.smkiCert); err != nil {
		t.Fatal(err)
	}
}

// TestFastPathLintsVaryingFields checks that the per-certificate checks
// refuse what the template's lints cannot see.
func TestFastPathLintsVaryingFields(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	good, err := deviceTemplate(&newKey(t).PublicKey, smki.OIDHWTypeReferenceMeter, smki.EUI{1}, UsageDS, now)
	if err != nil {
		t.Fatal(err)
	}
	sn := new(big.Int).Lsh(big.NewInt(1), 120)
	if err := checkVarying(good, sn, now); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	future := *good
	c := *good.cert
	c.NotBefore = now.Add(time.Hour)
	future.cert = &c
	for name, tc := range map[string]struct {
		t  *template
		sn *big.Int
	}{
		"short serial": {good, big.NewInt(12345)},
		"future":       {&future, sn},
	} {
		if err := checkVarying(tc.t, tc.sn, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
