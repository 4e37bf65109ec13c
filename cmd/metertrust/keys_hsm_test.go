package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/internal/testenv"
	"github.com/metertrust/metertrust/smki"
)

// TestACBKeyInToken makes the access control broker's key-agreement key in
// a PKCS#11 token with "keys new" (SoftHSM2 in the tests), and checks that
// "serve router" loads it by URI and derives the same Z as software ECDH
// with its public key, so the key never has to leave the token.
func TestACBKeyInToken(t *testing.T) {
	token := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	base, query, _ := strings.Cut(token, "?")
	key := base + ";object=acb-ka-" + hex.EncodeToString(id) + "?" + query
	dir := t.TempDir()
	csrFile := filepath.Join(dir, "acb.csr")
	out := decode[map[string]string](t, mustRun(t, "keys", "new", "--usage", "ka", "--eui", "90B3D51F30000002",
		"--role", "acb", "--name", "ACB", "--key", key, "--csr", csrFile, "--json"))
	if strings.Contains(out["key"], "pin") || !strings.HasPrefix(out["key"], "pkcs11:") {
		t.Errorf("keys new reports the key as %q: want the URI without its PIN", out["key"])
	}
	csrs, err := smki.ParseCSRs(readFile(t, csrFile))
	if err != nil || len(csrs) != 1 {
		t.Fatalf("the request: %v", err)
	}
	csr := csrs[0]
	if csr.KeyUsage != x509.KeyUsageKeyAgreement || csr.EUI.String() != "90B3D51F30000002" {
		t.Errorf("request for %s with usage %v", csr.EUI, csr.KeyUsage)
	}
	if _, err := run(t, "keys", "new", "--usage", "ka", "--eui", "90B3D51F30000002", "--role", "acb", "--key", key,
		"--csr", filepath.Join(dir, "again.csr")); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("a second key under the same name: %v", err)
	}
	if _, err := run(t, "keys", "new", "--usage", "ds", "--eui", "90B3D51F30000002", "--role", "acb", "--key", key,
		"--csr", filepath.Join(dir, "ds.csr")); err == nil || !strings.Contains(err.Error(), "key-agreement") {
		t.Errorf("a digital-signing key in the token: %v", err)
	}

	ka, closeKey, err := loadACBKey(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	defer closeKey()
	pub, err := csr.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	meter, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z, err := ka.ECDH(context.Background(), meter.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := meter.ECDH(pub)
	if string(z) != string(want) {
		t.Errorf("Z from the token differs from the meter's")
	}
	if _, _, err := loadACBKey(dir, base+";object=no-such-key?"+query); err == nil || !strings.Contains(err.Error(), "--acb-key") {
		t.Errorf("a key not in the token: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
