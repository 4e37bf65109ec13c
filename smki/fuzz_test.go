package smki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func addTestdataSeeds(f *testing.F, typ string) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pem"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if b, _ := pem.Decode(data); b != nil && b.Type == typ {
			f.Add(b.Bytes)
		}
	}
}

// FuzzParseCertificate feeds the reader every profile (generated and
// committed) and certificates with each deviation, and lets the fuzzer
// mutate them. The reader must never panic; whatever it accepts must have a
// valid P-256 key and ecdsa-with-SHA256, keep the input bytes exactly, carry
// the warnings its profile's Review gives, and be refused by strict mode
// exactly when it has a warning.
func FuzzParseCertificate(f *testing.F) {
	p := newTestPKI(f)
	for _, is := range p.all() {
		f.Add(is.der)
	}
	for _, der := range deviatingSeeds(f, p) {
		f.Add(der)
	}
	addTestdataSeeds(f, "CERTIFICATE")
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCertificate(der)
		if err != nil {
			if c != nil {
				t.Fatal("certificate returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPublicKey) && !errors.Is(err, ErrProfile) {
				t.Fatalf("refusal %v wraps no sentinel", err)
			}
			return
		}
		if !bytes.Equal(c.Raw, der) {
			t.Fatal("Raw differs from the input")
		}
		if c.PublicKey == nil || !c.sigAlgOK || KeyID(c.PublicKey) == nil {
			t.Fatal("accepted certificate without a P-256 key or ecdsa-with-SHA256")
		}
		prof := Profiles[c.Profile]
		if prof == nil {
			if c.Kind != KindUnknown || len(c.Warnings) == 0 || c.Warnings[0].Code != WarnNoProfile {
				t.Fatalf("no profile, kind %s, warnings %v", c.Kind, c.Warnings)
			}
		} else {
			ws, err := prof.Review(c)
			if err != nil || !slices.Equal(ws, c.Warnings) {
				t.Fatalf("Review %v, %v; reader's warnings %v", ws, err, c.Warnings)
			}
			if err := prof.Check(c); (err == nil) != (len(ws) == 0) {
				t.Fatalf("Check %v with warnings %v", err, ws)
			}
		}
		_, serr := ParseCertificateStrict(der)
		if (serr == nil) != (len(c.Warnings) == 0) || (serr != nil && !errors.Is(serr, ErrDeviation)) {
			t.Fatalf("strict: %v with warnings %v", serr, c.Warnings)
		}
		if len(c.Warnings) == 0 && len(c.SubjectKeyID) != 8 {
			t.Fatal("on-profile certificate without an 8-byte key id")
		}
		if x, err := x509.ParseCertificate(der); err == nil {
			compareWithX509(t, c, x)
		}
		_ = c.Summary()
		_, _ = VerifyPath(c, p.opts())
		o := p.opts()
		o.Strict = true
		_, _ = VerifyPath(c, o)
	})
}

// deviatingSeeds returns certificates with the deviations real issuers
// make: no authority key identifier, NULL signature parameters, role 2A.
func deviatingSeeds(tb testing.TB, p *testPKI) [][]byte {
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	noAKI, _ := issueDER(tb, ProfileOrgDS, org, withoutSKI(p.oca), nil)
	null, _ := issueDER(tb, ProfileDeviceKA, TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}, p.dca, nil)
	role, _ := issueDER(tb, ProfileOrgKA, org, p.oca, func(c *x509.Certificate) {
		c.RawSubject, _ = NameSpec{Role: 0x2A, HasRole: true, EUI: orgEUI, HasEUI: true}.MarshalDER()
	})
	return [][]byte{noAKI, reissue(tb, null, p.dca.key, nullParams), role}
}

// FuzzParseCSR does the same for certificate requests of both forms.
func FuzzParseCSR(f *testing.F) {
	for _, tmpl := range []CSRTemplate{
		{Kind: KindOrganisation, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI, KeyUsage: x509.KeyUsageDigitalSignature},
		{Kind: KindOrganisation, Role: RoleNetworkOperator, EUI: orgEUI, KeyUsage: x509.KeyUsageKeyAgreement},
		{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageDigitalSignature, HWType: OIDHWTypeReferenceMeter},
		{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageKeyAgreement, HWType: OIDHWTypeReferenceMeter},
	} {
		der, err := CreateCSR(rand.Reader, &tmpl, newKey(f))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	addTestdataSeeds(f, "CERTIFICATE REQUEST")
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseCSR(der)
		if err != nil {
			return
		}
		if r.PublicKey == nil || (r.KeyUsage != x509.KeyUsageDigitalSignature && r.KeyUsage != x509.KeyUsageKeyAgreement) {
			t.Fatalf("accepted request without key or with usage %s", KeyUsageString(r.KeyUsage))
		}
		if r.Kind == KindDevice && len(r.HWSerial) != 8 {
			t.Fatal("accepted device request without an 8-byte hwSerialNum")
		}
		_ = r.Summary()
	})
}

// FuzzParseEUI checks that every accepted EUI prints back to a form that
// parses to the same value.
func FuzzParseEUI(f *testing.F) {
	for _, s := range []string{"90B3D51F30010000", "90-B3-D5-1F-30-01-00-00", "90b3d51f30010000", "", "90-B3", "XX-B3-D5-1F-30-01-00-00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEUI(s)
		if err != nil {
			return
		}
		for _, form := range []string{e.String(), e.Grouped()} {
			back, err := ParseEUI(form)
			if err != nil || back != e {
				t.Fatalf("%q -> %s -> %v, %v", s, form, back, err)
			}
		}
	})
}

// FuzzParsePublicKeyInfo checks the one SPKI reader: no panic, every
// accepted key is a P-256 point that re-encodes to exactly the input bytes
// (the only DER form the reader accepts), and crypto/x509 reads the same
// key from it.
func FuzzParsePublicKeyInfo(f *testing.F) {
	k := newKey(f)
	good, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range spkiCases(good, nil, nil) {
		f.Add(c.der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := ParsePublicKeyInfo(der)
		if err != nil {
			if pub != nil || (!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPublicKey)) {
				t.Fatalf("key %v with error %v", pub, err)
			}
			return
		}
		back, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil || !bytes.Equal(back, der) {
			t.Fatalf("accepted % X, re-encodes to % X (%v)", der, back, err)
		}
		x, err := x509.ParsePKIXPublicKey(der)
		if err != nil || !pub.Equal(x) {
			t.Fatalf("crypto/x509: %v", err)
		}
	})
}
