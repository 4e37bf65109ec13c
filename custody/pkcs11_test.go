package custody

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"

	"github.com/metertrust/metertrust/internal/testenv"
)

// testKey returns the test token's URI (METERTRUST_TEST_PKCS11, SoftHSM2
// in the tests), the URI of a fresh key in it, and that key's name for the
// CAs' key manager.
func testKey(t *testing.T) (token, key, name string) {
	t.Helper()
	token = testenv.Var(t, "METERTRUST_TEST_PKCS11")
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	attrs := "id=" + hex.EncodeToString(id) + ";object=metertrust-keys-test-" + hex.EncodeToString(id)
	base, query, _ := strings.Cut(token, "?")
	key = base + ";" + attrs
	if query != "" {
		key += "?" + query
	}
	return token, key, "pkcs11:" + attrs
}

// TestECDHInToken checks a key generated in the token against software
// ECDH with its public key, under concurrent use.
func TestECDHInToken(t *testing.T) {
	_, u, _ := testKey(t)
	g, err := GenerateToken(u)
	if err != nil {
		t.Fatalf("GenerateToken: %v", err)
	}
	pub := g.PublicKey()
	g.Close()
	if _, err := GenerateToken(u); !errors.Is(err, ErrExists) {
		t.Errorf("generating over an existing key: %v, want ErrExists", err)
	}
	k, err := OpenToken(u)
	if err != nil {
		t.Fatalf("OpenToken: %v", err)
	}
	defer k.Close()
	if !k.PublicKey().Equal(pub) {
		t.Fatal("OpenToken found another public key than GenerateToken made")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				peer, err := ecdh.P256().GenerateKey(rand.Reader)
				if err != nil {
					t.Error(err)
					return
				}
				z, err := k.ECDH(context.Background(), peer.PublicKey())
				if err != nil {
					t.Errorf("ECDH in the token: %v", err)
					return
				}
				want, err := peer.ECDH(k.PublicKey())
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(z, want) {
					t.Errorf("Z from the token %x, in software %x", z, want)
					return
				}
			}
		})
	}
	wg.Wait()
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := k.ECDH(context.Background(), x25519.PublicKey()); err == nil {
		t.Error("key agreement with an X25519 peer was accepted")
	}
}

// TestOpenRefuses checks that keys the router cannot use are refused with
// an error that names why.
func TestOpenRefuses(t *testing.T) {
	token, u, name := testKey(t)
	if _, err := OpenToken(u); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("a key not in the token: %v", err)
	}
	// A signing key, as the CAs' key manager makes them: no CKA_DERIVE.
	km, err := pkcs11.New(context.Background(), apiv1.Options{Type: apiv1.PKCS11, URI: token})
	if err != nil {
		t.Fatalf("opening the token with the key manager: %v", err)
	}
	if _, err := km.CreateKey(&apiv1.CreateKeyRequest{Name: name, SignatureAlgorithm: apiv1.ECDSAWithSHA256}); err != nil {
		t.Fatalf("creating a signing key: %v", err)
	}
	km.Close()
	if _, err := OpenToken(u); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "CKA_DERIVE") {
		t.Errorf("a signing key: %v, want a refusal naming CKA_DERIVE", err)
	}
	if _, err := OpenToken(strings.Replace(u, "pin-value=", "pin-value=wrong", 1)); err == nil || !strings.Contains(err.Error(), "logging in") {
		t.Errorf("a wrong PIN: %v, want a refusal naming the login", err)
	}
	if _, err := OpenToken("pkcs11:%zz;token=x?pin-value=secret"); !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "secret") {
		t.Errorf("an unparsable URI: %v, want ErrConfig without the PIN", err)
	}
	for _, bad := range []string{"pkcs11:token=x;id=01", "pkcs11:module-path=/nonexistent.so;id=01", "pkcs11:module-path=/x.so;token=x", "file:/tmp/x"} {
		if _, err := OpenToken(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("OpenToken(%q) = %v, want ErrConfig", bad, err)
		}
	}
}

// TestSignerInToken checks the key's own signatures (for its certificate
// request) verify with its public key.
func TestSignerInToken(t *testing.T) {
	_, u, _ := testKey(t)
	k, err := GenerateToken(u)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	digest := sha256.Sum256([]byte("a certificate request"))
	sig, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.Public().(*ecdsa.PublicKey)
	if !ok || !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatalf("the token's signature does not verify with the key's public key (%T)", k.Public())
	}
}

func randHex(t *testing.T) string {
	t.Helper()
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(id)
}
