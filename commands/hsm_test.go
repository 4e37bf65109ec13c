package commands

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/testenv"
)

// TestSignWithHSM signs a pre-command with a P-256 key held in a PKCS#11
// token (SoftHSM2 in tests, from METERTRUST_TEST_PKCS11), the way the
// key custody (package keys) hands out keys: only as a crypto.Signer. The codec
// code is the same as for file keys. Skipped when METERTRUST_TEST_PKCS11 and
// CI are both unset; with CI set it fails instead.
func TestSignWithHSM(t *testing.T) {
	uri := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	ctx := context.Background()
	keys, err := custody.Open(ctx, uri, t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatalf("opening the token: %v", err)
	}
	t.Cleanup(func() { _ = keys.Close() })
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	keyURI, signer, err := keys.CreateKey(ctx, "metertrust-commands-test-"+hex.EncodeToString(id))
	if err != nil {
		t.Fatalf("creating a P-256 key: %v", err)
	}
	t.Cleanup(func() {
		if err := keys.Destroy(ctx, keyURI); err != nil {
			t.Errorf("deleting the test key: %v", err)
		}
	})
	m := &Message{CRA: Command, Counter: 1, Originator: testSupplier, Recipient: testDevice, Code: 0x0050, Payload: []byte{0x01}}
	if err := SignPreCommand(rand.Reader, signer, m); err != nil {
		t.Fatalf("signing with the HSM key: %v", err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(ecdsaPublic(t, signer.Public()), p); err != nil {
		t.Errorf("verifying the HSM signature: %v", err)
	}
}

func ecdsaPublic(t *testing.T, k any) *ecdsa.PublicKey {
	t.Helper()
	p, ok := k.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("public key %T, want *ecdsa.PublicKey", k)
	}
	return p
}
