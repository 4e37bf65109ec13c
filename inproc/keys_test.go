package inproc

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/testenv"
)

// TestStartKeysInToken runs the system with its key custody on a PKCS#11
// token (METERTRUST_TEST_PKCS11, SoftHSM2 in the tests): the CA keys and
// the access control broker's key-agreement key are made in the token, and
// the router's MACs come from ECDH in the token, first on creation and
// again when the system restarts from its data directory. It destroys the
// keys it made, to leave the shared token as it was (a run that fails
// before the system starts may leave some behind; scripts/test makes a new
// token each time).
func TestStartKeysInToken(t *testing.T) {
	token := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{DataDir: dir, KMS: token, Meters: 1, RouterAddr: "127.0.0.1:0"}
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start with the keys in a token: %v", err)
	}
	cas, err := s.DB.SMKI().CAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	made := []string{s.ACBKeyURI}
	for _, c := range cas {
		if c.KeyURI != "" {
			made = append(made, c.KeyURI)
		}
	}
	t.Cleanup(func() { destroyKeys(t, token, made) })
	if !strings.HasPrefix(s.ACBKeyURI, "pkcs11:") || strings.Contains(s.ACBKeyURI, "pin") {
		t.Errorf("ACB key URI %q: want a pkcs11: URI without the PIN", s.ACBKeyURI)
	}
	if _, ok := s.ACB.KA.(*custody.Token); !ok {
		t.Errorf("the ACB key-agreement key is a %T, want a key in the token", s.ACB.KA)
	}
	readRegister(t, s, s.Meters[0])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	readRegister(t, s, s.Meters[0])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// destroyKeys destroys the keys named by uris in the token.
func destroyKeys(t *testing.T, token string, uris []string) {
	ctx := context.Background()
	keys, err := custody.Open(ctx, token, t.TempDir(), rand.Reader)
	if err != nil {
		t.Error(err)
		return
	}
	defer keys.Close()
	for _, u := range uris {
		if err := keys.Destroy(ctx, u); err != nil {
			t.Errorf("destroying %s: %v", u, err)
		}
	}
}
