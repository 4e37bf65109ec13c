package provision_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/smki"
)

// TestWriteTestdata makes the fixtures in testdata/ (see its README) when
// METERTRUST_WRITE_TESTDATA=1.
func TestWriteTestdata(t *testing.T) {
	if os.Getenv("METERTRUST_WRITE_TESTDATA") != "1" {
		t.Skip("set METERTRUST_WRITE_TESTDATA=1 to rewrite testdata/")
	}
	data := []byte(join(fileLines(t, 3)))
	cert, key := orgCert(t, manufacturerEUI, x509.KeyUsageDigitalSignature)
	must(t, os.WriteFile("testdata/devices.jsonl", data, 0o644))
	must(t, os.WriteFile("testdata/devices.jsonl.sig", sign(t, data, key), 0o644))
	must(t, os.WriteFile("testdata/manufacturer-ds.pem", pemBlock("CERTIFICATE", cert.Raw), 0o644))
}

// TestTestdata reads and verifies the fixtures.
func TestTestdata(t *testing.T) {
	data := readFile(t, "devices.jsonl")
	b := readFile(t, "manufacturer-ds.pem")
	certs, err := smki.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := provision.Open(data, readFile(t, "devices.jsonl.sig"), certs[0], provision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 3 || f.Certificates() != 6 {
		t.Errorf("%d entries, %d certificates", len(f.Entries), f.Certificates())
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
