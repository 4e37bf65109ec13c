package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands/keystore"
	"github.com/metertrust/metertrust/internal/certtest"
	"github.com/metertrust/metertrust/smki"
)

// showTestCerts writes an on-profile organisation certificate and one
// without authority key identifier and with role code 2A, both issued by a
// test OCA, and returns their file names.
func showTestCerts(t *testing.T) (good, deviant string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	caKey := key()
	caTmpl, err := smki.Profiles[smki.ProfileOCA].Template(smki.TemplateRequest{SerialNumber: big.NewInt(1), NotBefore: nb, CommonName: "show test OCA", PublicKey: &caKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, role smki.Role, parent *x509.Certificate) string {
		k := key()
		tmpl, err := smki.Profiles[smki.ProfileOrgDS].Template(smki.TemplateRequest{SerialNumber: big.NewInt(2), NotBefore: nb,
			CommonName: "Acme", Role: smki.RoleSupplier, EUI: smki.MustParseEUI("90B3D51F30010000"), PublicKey: &k.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.RawSubject, _ = smki.NameSpec{CommonName: "Acme", Role: role, HasRole: true, EUI: smki.MustParseEUI("90B3D51F30010000"), HasEUI: true}.MarshalDER()
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	noSKI := *ca
	noSKI.SubjectKeyId = nil // crypto/x509 then writes no authority key identifier
	return issue("good.pem", smki.RoleSupplier, ca), issue("deviant.pem", 0x2A, &noSKI)
}

func TestSMKIShowWarnings(t *testing.T) {
	good, deviant := showTestCerts(t)
	var text bytes.Buffer
	if err := runSMKIShow(&text, []string{good, deviant}, false); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	goodPart, deviantPart, ok := strings.Cut(out, deviant+":")
	if !ok {
		t.Fatalf("no section for %s:\n%s", deviant, out)
	}
	if strings.Contains(goodPart, "warning:") {
		t.Errorf("warnings on the on-profile certificate:\n%s", goodPart)
	}
	for _, want := range []string{
		"\nwarning: unknown-role: OU 2A: role code 42 is not a known Remote Party Role\n",
		"\nwarning: missing-authority-key-id: ",
		"role:",
	} {
		if !strings.Contains(deviantPart, want) {
			t.Errorf("output lacks %q:\n%s", want, deviantPart)
		}
	}

	var js bytes.Buffer
	if err := runSMKIShow(&js, []string{good, deviant}, true); err != nil {
		t.Fatal(err)
	}
	var shown []struct {
		File     string `json:"file"`
		Warnings []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err := json.Unmarshal(js.Bytes(), &shown); err != nil {
		t.Fatalf("%v:\n%s", err, js.String())
	}
	if len(shown) != 2 {
		t.Fatalf("%d objects, want 2", len(shown))
	}
	if shown[0].Warnings == nil || len(shown[0].Warnings) != 0 {
		t.Errorf("on-profile warnings %v, want an empty list", shown[0].Warnings)
	}
	if !bytes.Contains(js.Bytes(), []byte(`"warnings": []`)) {
		t.Errorf("no empty warnings list in:\n%s", js.String())
	}
	var codes []string
	for _, w := range shown[1].Warnings {
		if w.Message == "" {
			t.Errorf("warning %s without message", w.Code)
		}
		codes = append(codes, w.Code)
	}
	if strings.Join(codes, ",") != "unknown-role,missing-authority-key-id" {
		t.Errorf("warning codes %v", codes)
	}
}

// TestSMKIVerifyStrict validates a certificate of the store's OCA re-signed
// with NULL signature parameters: accepted with warnings, refused with
// --strict.
func TestSMKIVerifyStrict(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := func(name string) string { return filepath.Join(dir, name) }
	mustRun(t, "ca", "init", "--data", data)
	mustRun(t, "keys", "new", "--usage", "ds", "--key", p("s.key"), "--csr", p("s.csr"), "--eui", "90B3D51F30010000", "--role", "supplier")
	mustRun(t, "ca", "issue", "org", "--data", data, "--csr", p("s.csr"), "--role", "supplier", "--eui", "90B3D51F30010000", "--usage", "ds", "--out", p("s.pem"))
	blk, _ := pem.Decode([]byte(readFile(t, p("s.pem"))))
	ocaKey, err := keystore.ParsePrivateKeyPEM([]byte(readFile(t, filepath.Join(data, "keys", "oca.key"))))
	if blk == nil || err != nil {
		t.Fatalf("certificate %v, OCA key %v", blk != nil, err)
	}
	der := certtest.Reissue(t, blk.Bytes, ocaKey, certtest.NullParameters)
	if err := os.WriteFile(p("null.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "smki", "verify", "--data", data, p("s.pem"), p("null.pem"))
	if strings.Count(out, ": OK: ") != 2 || strings.Count(out, "warning: signature-algorithm-parameters: ") != 2 {
		t.Errorf("smki verify:\n%s", out)
	}
	out, err = run(t, "smki", "verify", "--strict", "--data", data, p("s.pem"), p("null.pem"))
	if err == nil || !strings.Contains(out, p("s.pem")+": OK: ") || !strings.Contains(out, p("null.pem")+": FAILED: ") ||
		!strings.Contains(out, "signature-algorithm-parameters") {
		t.Errorf("smki verify --strict: %v\n%s", err, out)
	}
}
