package smki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testdataFiles maps each committed fixture to the profile it holds.
var testdataFiles = map[string]ProfileID{
	"root.pem":       ProfileRoot,
	"oca.pem":        ProfileOCA,
	"dca.pem":        ProfileDCA,
	"org-ds.pem":     ProfileOrgDS,
	"org-ka.pem":     ProfileOrgKA,
	"device-ds.pem":  ProfileDeviceDS,
	"device-ka.pem":  ProfileDeviceKA,
	"csr-org.pem":    ProfileOrgKA,
	"csr-device.pem": ProfileDeviceKA,
}

// TestWriteTestdata regenerates testdata/ when METERTRUST_WRITE_TESTDATA=1;
// see testdata/README.md.
func TestWriteTestdata(t *testing.T) {
	if os.Getenv("METERTRUST_WRITE_TESTDATA") != "1" {
		t.Skip("set METERTRUST_WRITE_TESTDATA=1 to regenerate testdata/")
	}
	p := newTestPKI(t)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join("testdata", name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, id := range testdataFiles {
		if is, ok := p.all()[id]; ok && name != "csr-org.pem" && name != "csr-device.pem" {
			write(name, "CERTIFICATE", is.der)
		}
	}
	csrOrg, err := CreateCSR(rand.Reader, &CSRTemplate{Kind: KindOrganisation, CommonName: "Acme Energy", Role: RoleSupplier, EUI: orgEUI, KeyUsage: x509.KeyUsageKeyAgreement}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	write("csr-org.pem", "CERTIFICATE REQUEST", csrOrg)
	csrDev, err := CreateCSR(rand.Reader, &CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageKeyAgreement, HWType: OIDHWTypeReferenceMeter}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	write("csr-device.pem", "CERTIFICATE REQUEST", csrDev)
}

// TestTestdata reads every committed fixture and validates the two paths
// they form at a time inside their validity.
func TestTestdata(t *testing.T) {
	for name, id := range testdataFiles {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			sums, err := Describe(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(sums) != 1 || sums[0].Profile != id {
				t.Fatalf("got %+v, want one %s", sums, id)
			}
		})
	}
	load := func(name string) *Certificate {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := ParseCertificates(data)
		if err != nil {
			t.Fatal(err)
		}
		return cs[0]
	}
	root, oca, dca := load("root.pem"), load("oca.pem"), load("dca.pem")
	opts := VerifyOptions{Roots: []*Certificate{root}, Intermediates: []*Certificate{oca, dca}, At: oca.NotBefore.Add(48 * time.Hour)}
	for _, leaf := range []string{"org-ds.pem", "org-ka.pem", "device-ds.pem", "device-ka.pem"} {
		if _, err := Verify(load(leaf), opts); err != nil {
			t.Errorf("%s: %v", leaf, err)
		}
	}
}
