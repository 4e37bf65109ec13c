package commands

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
)

// ECDHKey is the file-key implementation of KeyAgreement: a P-256 private key
// held in memory.
type ECDHKey struct {
	key *ecdh.PrivateKey
}

// NewECDHKey wraps a P-256 ECDH private key.
func NewECDHKey(k *ecdh.PrivateKey) (*ECDHKey, error) {
	if k == nil || k.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: key-agreement key must be P-256", ErrKey)
	}
	return &ECDHKey{key: k}, nil
}

// NewECDHKeyFromECDSA wraps a P-256 ECDSA private key, as read from a PKCS#8
// or SEC 1 file, for key agreement.
func NewECDHKeyFromECDSA(k *ecdsa.PrivateKey) (*ECDHKey, error) {
	if k == nil {
		return nil, fmt.Errorf("%w: nil key", ErrKey)
	}
	e, err := k.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return NewECDHKey(e)
}

// ParseRawPrivateKey reads a raw 32-byte P-256 private scalar, the form GBCS
// test vectors use.
func ParseRawPrivateKey(d []byte) (*ECDHKey, error) {
	k, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return nil, fmt.Errorf("%w: raw P-256 private key: %v", ErrKey, err)
	}
	return &ECDHKey{key: k}, nil
}

// ECDH implements KeyAgreement.
func (k *ECDHKey) ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: peer key must be P-256", ErrKey)
	}
	z, err := k.key.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return z, nil
}

// PublicKey returns the public half, to publish in a certificate.
func (k *ECDHKey) PublicKey() *ecdh.PublicKey { return k.key.PublicKey() }

// ParseRawPublicKey reads a P-256 public point as GBCS vectors give it: 64
// bytes X||Y, or 65 bytes with the 04 prefix.
func ParseRawPublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) == 64 {
		b = append([]byte{4}, b...)
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("%w: raw P-256 public key: %v", ErrKey, err)
	}
	return k, nil
}

// ECDHPublicKey converts an ECDSA P-256 public key (from a certificate) to
// the ECDH form key agreement needs.
func ECDHPublicKey(k *ecdsa.PublicKey) (*ecdh.PublicKey, error) {
	if k == nil {
		return nil, fmt.Errorf("%w: nil public key", ErrKey)
	}
	e, err := k.ECDH()
	if err != nil || e.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: public key is not P-256", ErrKey)
	}
	return e, nil
}
