package custody

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/internal/testenv"
)

func checkSigns(t *testing.T, s crypto.Signer) {
	t.Helper()
	h := sha256.Sum256([]byte("metertrust"))
	sig, err := s.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), h[:], sig) {
		t.Fatal("signature does not verify")
	}
}

func TestCustodySoftKMS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Open(ctx, "softkms", dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	uri, s, err := c.CreateKey(ctx, "dca-B1")
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if uri != "softkms:path=keys/dca-B1.key" {
		t.Errorf("key URI %q", uri)
	}
	checkSigns(t, s)
	path := filepath.Join(dir, "keys", "dca-B1.key")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("key file is not PKCS#8 PEM")
	}
	loaded, err := c.Signer(ctx, uri)
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	if !loaded.Public().(*ecdsa.PublicKey).Equal(s.Public()) {
		t.Error("loaded a different key")
	}
	if _, _, err := c.CreateKey(ctx, "dca-B1"); !errors.Is(err, ErrExists) {
		t.Errorf("CreateKey over an existing key: %v, want ErrExists", err)
	}
	if err := c.Destroy(ctx, uri); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file still there: %v", err)
	}
	if _, err := c.Signer(ctx, uri); !errors.Is(err, ErrKey) {
		t.Errorf("Signer after Destroy: %v, want ErrKey", err)
	}
	for _, bad := range []string{"", "../escape", "a/b", strings.Repeat("x", 65)} {
		if _, _, err := c.CreateKey(ctx, bad); !errors.Is(err, ErrKey) {
			t.Errorf("CreateKey(%q): %v, want ErrKey", bad, err)
		}
	}
	if _, err := Open(ctx, "awskms:region=eu", dir, rand.Reader); !errors.Is(err, ErrKey) {
		t.Errorf("unsupported kms: %v", err)
	}
}

func TestRedactPIN(t *testing.T) {
	got := redactPIN("login failed for pin 98765", "pkcs11:token=x?pin-value=98765")
	if strings.Contains(got, "98765") {
		t.Errorf("PIN not redacted: %q", got)
	}
}

// TestCustodyAgreement creates a key-agreement key with a software
// custody and loads it back for ECDH.
func TestCustodyAgreement(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, "", t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkAgreement(t, c)
}

// TestCustodyOnSoftHSM does the same with the custody's keys in a token
// (METERTRUST_TEST_PKCS11): signing keys through the key manager,
// agreement keys with CKA_DERIVE, both destroyed at the end.
func TestCustodyOnSoftHSM(t *testing.T) {
	token := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Open(ctx, token, dir, rand.Reader)
	if err != nil {
		t.Fatalf("Open(SoftHSM2): %v", err)
	}
	defer c.Close()
	if c.Kind() != "pkcs11" {
		t.Fatalf("kind %s", c.Kind())
	}
	label := "metertrust-keys-test-" + randHex(t)
	uri, s, err := c.CreateKey(ctx, label)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	checkSigns(t, s)
	if strings.Contains(uri, "pin") || strings.Contains(uri, "module-path") {
		t.Errorf("key URI %q names the token's module or PIN", uri)
	}
	if err := c.Destroy(ctx, uri); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := c.Signer(ctx, uri); !errors.Is(err, ErrKey) {
		t.Errorf("Signer after Destroy: %v, want ErrKey", err)
	}
	checkAgreement(t, c)
	if entries, _ := os.ReadDir(filepath.Join(dir, DirName)); len(entries) != 0 {
		t.Errorf("key files written although keys are on the token: %v", entries)
	}
}

// checkAgreement creates an agreement key in c, checks that it signs and
// that the key loaded back by URI derives the same Z as software ECDH with
// its public key, then destroys it.
func checkAgreement(t *testing.T, c *Custody) {
	t.Helper()
	ctx := context.Background()
	label := "acb-ka-" + randHex(t)
	uri, k, err := c.CreateAgreement(ctx, label)
	if err != nil {
		t.Fatalf("CreateAgreement: %v", err)
	}
	checkSigns(t, k)
	if _, _, err := c.CreateAgreement(ctx, label); err == nil {
		t.Error("CreateAgreement over an existing key succeeded")
	}
	a, err := c.Agreement(ctx, uri)
	if err != nil {
		t.Fatalf("Agreement: %v", err)
	}
	if !a.PublicKey().Equal(k.PublicKey()) {
		t.Fatal("Agreement loaded another key than CreateAgreement made")
	}
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z, err := a.ECDH(ctx, peer.PublicKey())
	if err != nil {
		t.Fatalf("ECDH: %v", err)
	}
	want, _ := peer.ECDH(a.PublicKey())
	if string(z) != string(want) {
		t.Error("Z differs from the peer's")
	}
	if err := c.Destroy(ctx, uri); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if _, err := c.Agreement(ctx, uri); !errors.Is(err, ErrKey) {
		t.Errorf("Agreement after Destroy: %v, want ErrKey", err)
	}
}
