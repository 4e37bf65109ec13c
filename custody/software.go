package custody

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Software is a P-256 private key held in memory: the software backend of
// the custody, for key files and for the simulated keys of reference meters.
// It is a crypto.Signer and an Agreement.
type Software struct {
	sig *ecdsa.PrivateKey

	// agr is the key in ECDH form, made on first use for a generated key
	// (converting costs a scalar multiplication, as much as generating,
	// and most generated keys only sign), at once for a key read.
	agrOnce sync.Once
	agr     *ecdh.PrivateKey
	agrErr  error
}

// agreement returns the key in ECDH form.
func (k *Software) agreement() (*ecdh.PrivateKey, error) {
	k.agrOnce.Do(func() {
		if k.agr == nil {
			if k.agr, k.agrErr = k.sig.ECDH(); k.agrErr != nil {
				k.agrErr = fmt.Errorf("%w: %v", ErrKey, k.agrErr)
			}
		}
	})
	return k.agr, k.agrErr
}

func newSoftware(k *ecdsa.PrivateKey) (*Software, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: want an ECDSA P-256 key", ErrKey)
	}
	e, err := k.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return &Software{sig: k, agr: e}, nil
}

// Generate makes a new P-256 key in memory from rand.
func Generate(rand io.Reader) (*Software, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("%w: generating a P-256 key: %v", ErrKey, err)
	}
	return &Software{sig: k}, nil
}

// Public returns the key's *ecdsa.PublicKey (crypto.Signer).
func (k *Software) Public() crypto.PublicKey { return &k.sig.PublicKey }

// Sign signs digest with ECDSA and returns an ASN.1 signature
// (crypto.Signer).
func (k *Software) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.sig.Sign(rand, digest, opts)
}

// PublicKey returns the key's public key in ECDH form (Agreement).
func (k *Software) PublicKey() *ecdh.PublicKey {
	agr, err := k.agreement()
	if err != nil {
		return nil // not for a P-256 key, which every Software holds
	}
	return agr.PublicKey()
}

// ECDH returns the shared secret Z of the key and peer (Agreement).
func (k *Software) ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: key agreement needs a P-256 peer key", ErrKey)
	}
	agr, err := k.agreement()
	if err != nil {
		return nil, err
	}
	z, err := agr.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return z, nil
}

// MarshalPEM returns the key as a PKCS#8 "PRIVATE KEY" PEM block, the form
// WriteFile writes. The caller should clear the result when done with it.
func (k *Software) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.sig)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the key: %v", ErrKey, err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM reads a P-256 private key from the first private key block of
// b, PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), skipping other
// blocks (a device key file also holds its certificate). Errors wrap ErrKey
// and never include key material.
func ParsePEM(b []byte) (*Software, error) {
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%w: no PRIVATE KEY or EC PRIVATE KEY PEM block", ErrKey)
		}
		var key any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		clear(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s does not parse", ErrKey, blk.Type)
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: want an ECDSA P-256 key, have %T", ErrKey, key)
		}
		return newSoftware(k)
	}
}

// ReadFile reads a key file as ParsePEM does. Errors name the file.
func ReadFile(path string) (*Software, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	defer clear(b)
	k, err := ParsePEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteFile writes k to a new file at path as PKCS#8 PEM, mode 0600. It
// refuses (with ErrExists) to overwrite an existing file.
func WriteFile(path string, k *Software) error {
	b, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	defer clear(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return fmt.Errorf("%w: creating %s: %w", ErrKey, path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("%w: writing %s: %w", ErrKey, path, err)
	}
	return nil
}
