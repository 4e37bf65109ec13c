package keystore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

var (
	org    = smki.MustParseEUI("90B3D51F30010000") // testdata/org-*.pem
	device = smki.MustParseEUI("00DB1234567890A0") // testdata/device-ka.pem
	party  = smki.MustParseEUI("90B3D51F300100AA")
)

func write(t *testing.T, dir, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFixture(t *testing.T, dir, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", from))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func x509Cert(t *testing.T, k *ecdsa.PrivateKey, ku x509.KeyUsage, nb, na time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "party"}, NotBefore: nb, NotAfter: na, KeyUsage: ku}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	sec1, _ := x509.MarshalECPrivateKey(k)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaP8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalECPrivateKey(p384)

	write(t, dir, party.String()+"-ds.key", "PRIVATE KEY", p8)
	write(t, dir, strings.ToLower(party.String())+"-ka.key", "EC PRIVATE KEY", sec1)
	write(t, dir, party.Grouped()+"-pp-ka.pem", "PUBLIC KEY", spki)
	copyFixture(t, dir, "org-ka.pem", org.String()+"-ka.pem")
	copyFixture(t, dir, "org-ds.pem", org.String()+"-ds.pem")
	copyFixture(t, dir, "device-ka.pem", device.String()+"-ka.pem")
	// A certificate for the wrong party, and a DS certificate filed as KA.
	copyFixture(t, dir, "org-ka.pem", device.String()+"-pp-ka.pem")
	copyFixture(t, dir, "org-ds.pem", org.String()+"-pp-ka.pem")
	bad := smki.MustParseEUI("0000000000000BAD")
	write(t, dir, bad.String()+"-ds.key", "PRIVATE KEY", rsaP8)
	write(t, dir, bad.String()+"-ka.key", "EC PRIVATE KEY", p384der)
	write(t, dir, bad.String()+"-pp-ka.key", "RSA PRIVATE KEY", []byte{1})
	write(t, dir, bad.String()+"-ds.pem", "CERTIFICATE", []byte{0x30, 0})
	write(t, dir, bad.String()+"-ka.pem", "PUBLIC KEY", []byte{1})
	if err := os.WriteFile(filepath.Join(dir, bad.String()+"-pp-ka.pem"), []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write(t, dir, "0000000000000C01-ds.pem", "CERTIFICATE", x509Cert(t, k, x509.KeyUsageDigitalSignature, nb, nb.AddDate(1, 0, 0)))
	write(t, dir, "0000000000000C02-ka.pem", "CERTIFICATE", x509Cert(t, k, x509.KeyUsageDigitalSignature, nb, nb.AddDate(1, 0, 0)))

	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		eui  smki.EUI
		use  Use
		is   error // nil: found and usable
	}{
		{"PKCS#8 private key gives the public key", party, DS, nil},
		{"SEC 1 private key, lower-case name", party, KA, nil},
		{"PUBLIC KEY, grouped name", party, PPKA, nil},
		{"SMKI organisation KA certificate", org, KA, nil},
		{"SMKI organisation DS certificate", org, DS, nil},
		{"SMKI device KA certificate", device, KA, nil},
		{"certificate of another party", device, PPKA, ErrBadKey},
		{"DS certificate as KA", org, PPKA, ErrBadKey},
		{"x509 certificate", smki.MustParseEUI("0000000000000C01"), DS, nil},
		{"x509 DS certificate as KA", smki.MustParseEUI("0000000000000C02"), KA, ErrBadKey},
		{"RSA key", bad, DS, ErrBadKey},
		{"P-384 key", bad, KA, ErrBadKey},
		{"wrong PEM type", bad, PPKA, ErrBadKey},
		{"missing", smki.MustParseEUI("0000000000000000"), DS, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := d.PublicKey(tt.eui, tt.use)
			if tt.is == nil {
				if err != nil || pub == nil {
					t.Fatalf("PublicKey: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
		})
	}
	t.Run("private keys", func(t *testing.T) {
		s, err := d.Signer(party)
		if err != nil || !s.Public().(*ecdsa.PublicKey).Equal(&k.PublicKey) {
			t.Errorf("Signer: %v", err)
		}
		ka, err := d.AgreementKey(ctx, party)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := d.AgreementPublicKey(ctx, party)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ka.ECDH(ctx, pub); err != nil {
			t.Errorf("ECDH with own public key: %v", err)
		}
		if _, err := d.KeyAgreement(bad, KA); !errors.Is(err, ErrBadKey) {
			t.Errorf("P-384 KA: %v", err)
		}
		if _, err := d.KeyAgreement(bad, PPKA); !errors.Is(err, ErrBadKey) {
			t.Errorf("RSA PEM type: %v", err)
		}
		if _, err := d.AgreementKey(ctx, org); !errors.Is(err, commands.ErrNoKey) {
			t.Errorf("missing private key: %v, want commands.ErrNoKey", err)
		}
		if _, err := d.SignatureKey(ctx, org); err != nil {
			t.Errorf("SignatureKey: %v", err)
		}
	})
	t.Run("malformed public files", func(t *testing.T) {
		for _, u := range []Use{DS, KA, PPKA} {
			if _, err := d.PublicKey(bad, u); !errors.Is(err, ErrBadKey) {
				t.Errorf("%s: %v, want ErrBadKey", u, err)
			}
		}
	})
	t.Run("validity at a time", func(t *testing.T) {
		e := smki.MustParseEUI("0000000000000C01")
		for _, c := range []struct {
			at time.Time
			is error
		}{
			{time.Time{}, nil},
			{nb.AddDate(0, 6, 0), nil},
			{nb.AddDate(-1, 0, 0), ErrNotValid},
			{nb.AddDate(2, 0, 0), ErrNotValid},
		} {
			d.At = c.at
			_, err := d.PublicKey(e, DS)
			if !errors.Is(err, c.is) {
				t.Errorf("at %v: %v, want %v", c.at, err, c.is)
			}
			// A certificate outside its validity is there but untrusted:
			// a check made with it is invalid, not no-key.
			if c.is != nil && (!errors.Is(err, commands.ErrUntrusted) || errors.Is(err, commands.ErrNoKey)) {
				t.Errorf("at %v: %v wraps ErrNoKey or not ErrUntrusted", c.at, err)
			}
		}
		d.At = time.Time{}
	})
	t.Run("Open", func(t *testing.T) {
		if _, err := Open(filepath.Join(dir, "nope")); err == nil {
			t.Error("missing directory opened")
		}
		if _, err := Open(filepath.Join(dir, party.String()+"-ds.key")); err == nil {
			t.Error("file opened as a directory")
		}
	})
	t.Run("errors carry no key material", func(t *testing.T) {
		_, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: append(p8[:10:10], 0xAA, 0xBB)}))
		if err == nil || strings.Contains(err.Error(), "aabb") || strings.Contains(strings.ToLower(err.Error()), "aa bb") {
			t.Errorf("error %v", err)
		}
	})
}

var _ commands.Keys = (*Dir)(nil)
