package custody

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParsePEM reads the key formats we accept and refuses the others.
// The fixtures of refused formats are made here with crypto/x509, which
// the boundary test allows in test files.
func TestParsePEM(t *testing.T) {
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(k.sig)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaP8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalECPrivateKey(p384)
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	cert := enc("CERTIFICATE", []byte{0x30, 0x00})
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"PKCS#8", p8, true},
		{"SEC 1", enc("EC PRIVATE KEY", sec1), true},
		{"key after a certificate", append(cert, p8...), true},
		{"key before a certificate", append(append([]byte(nil), p8...), cert...), true},
		{"RSA", enc("PRIVATE KEY", rsaP8), false},
		{"P-384", enc("EC PRIVATE KEY", p384der), false},
		{"certificate only", cert, false},
		{"no PEM", []byte("not a key"), false},
		{"truncated PKCS#8", enc("PRIVATE KEY", []byte{0x30, 0x03, 0xAA, 0xBB}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePEM(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrKey) {
					t.Fatalf("ParsePEM = %v, want ErrKey", err)
				}
				if strings.Contains(strings.ToLower(err.Error()), "aabb") {
					t.Errorf("error quotes key bytes: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.PublicKey().Equal(k.PublicKey()) {
				t.Error("read another key")
			}
		})
	}
}

// TestSoftwareAgreesAndSigns checks that a software key's ECDH matches the
// peer's, refuses non-P-256 peers, and that its signatures verify.
func TestSoftwareAgreesAndSigns(t *testing.T) {
	ctx := context.Background()
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	checkSigns(t, k)
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	z, err := k.ECDH(ctx, peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := peer.ECDH(k.PublicKey()); string(z) != string(want) {
		t.Error("Z differs from the peer's")
	}
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := k.ECDH(ctx, x.PublicKey()); !errors.Is(err, ErrKey) {
		t.Errorf("X25519 peer: %v, want ErrKey", err)
	}
}

// TestWriteFile checks the written file's mode and form, that it reads
// back, and that an existing file is never overwritten.
func TestWriteFile(t *testing.T) {
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.key")
	if err := WriteFile(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----") {
		t.Error("key file is not PKCS#8 PEM")
	}
	back, err := ReadFile(path)
	if err != nil || !back.PublicKey().Equal(k.PublicKey()) {
		t.Fatalf("ReadFile: %v", err)
	}
	if err := WriteFile(path, k); !errors.Is(err, ErrExists) {
		t.Errorf("WriteFile over a file: %v, want ErrExists", err)
	}
}

// TestOpenAgreement opens file keys by path and softkms URI, and refuses
// other schemes.
func TestOpenAgreement(t *testing.T) {
	dir := t.TempDir()
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "acb.key"), k); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"acb.key", "softkms:path=acb.key", filepath.Join(dir, "acb.key")} {
		a, closeKey, err := OpenAgreement(uri, dir)
		if err != nil {
			t.Errorf("OpenAgreement(%q): %v", uri, err)
			continue
		}
		closeKey()
		if !a.PublicKey().Equal(k.PublicKey()) {
			t.Errorf("OpenAgreement(%q) opened another key", uri)
		}
	}
	if _, _, err := OpenAgreement("awskms:key=x", dir); !errors.Is(err, ErrConfig) {
		t.Errorf("an unsupported scheme: %v, want ErrConfig", err)
	}
	if _, _, err := OpenAgreement("missing.key", dir); !errors.Is(err, ErrKey) {
		t.Errorf("a missing file: %v, want ErrKey", err)
	}
}

// FuzzParsePEM feeds outside bytes to the key file reader.
func FuzzParsePEM(f *testing.F) {
	k, _ := Generate(rand.Reader)
	p8, _ := k.MarshalPEM()
	f.Add(p8)
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParsePEM(b); err == nil && k.PublicKey() == nil {
			t.Fatal("a key without a public key")
		}
	})
}
