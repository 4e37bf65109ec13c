package smki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
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
// committed) and lets the fuzzer mutate them. The reader must never panic,
// and whatever it accepts must be on profile and read the same way twice.
func FuzzParseCertificate(f *testing.F) {
	p := newTestPKI(f)
	for _, is := range p.all() {
		f.Add(is.der)
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
			return
		}
		if err := Profiles[c.Profile].Check(c); err != nil {
			t.Fatalf("accepted certificate fails its own profile: %v", err)
		}
		if c.PublicKey == nil || len(c.SubjectKeyID) != 8 {
			t.Fatal("accepted certificate without key or key id")
		}
		if x, err := x509.ParseCertificate(der); err == nil {
			compareWithX509(t, c, x)
		}
		_ = c.Summary()
		_, _ = Verify(c, p.opts())
	})
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
