// Package keystore reads a directory of GBCS party keys for the command
// line: certificates or public keys and private key files named by EUI-64
// and key use, the layout `metertrust gbcs` takes with --keystore.
//
//	<EUI>-ds.pem     digital-signature certificate (an SMKI organisation or
//	                 device certificate, read with smki.ParseCertificate,
//	                 which accepts its deviations from the SMKI profile, or
//	                 any X.509 certificate) or a bare PUBLIC KEY
//	<EUI>-ka.pem     key-agreement certificate or public key
//	<EUI>-pp-ka.pem  prepayment top-up key-agreement certificate or key
//	<EUI>-ds.key, <EUI>-ka.key, <EUI>-pp-ka.key
//	                 the private keys, PKCS#8 ("PRIVATE KEY") or SEC 1
//	                 ("EC PRIVATE KEY") PEM
//
// EUIs are written as 16 hex digits, upper case preferred. Keys are P-256
// (GBCS section 2; SMKI certificate profiles); every public key, bare or in
// a certificate, is read with smki.ParsePublicKeyInfo, so the keystore and
// the SMKI reader accept exactly the same keys. It is the file-key store: an
// HSM-backed store satisfies the same consumer interfaces of package
// commands (crypto.Signer, commands.KeyAgreement).
//
// A file that is missing, unreadable or does not hold a usable key gives an
// error wrapping ErrNoKey (and so commands.ErrNoKey) that names the file and
// says why: a message whose signer's key cannot be loaded is reported as
// having no key, never as having an invalid signature. Private key files are
// read by package keys, the key custody.
package keystore

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
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// Sentinel errors. Each wraps ErrNoKey.
var (
	// ErrNoKey is wrapped by every error about a key that cannot be had:
	// no file, a file that cannot be read, or one without a usable key. It
	// wraps commands.ErrNoKey, which commands.Check reports as "no-key".
	ErrNoKey error = &sentinel{"keystore: no usable key", commands.ErrNoKey}
	// ErrNotFound is returned when the directory holds no file for the key
	// asked for.
	ErrNotFound error = &sentinel{"keystore: no such key", ErrNoKey}
	// ErrBadKey is wrapped when a file exists but does not hold a usable
	// P-256 key of the right use.
	ErrBadKey error = &sentinel{"keystore: unusable key file", ErrNoKey}
)

// sentinel is an error value that wraps a more general one, so that
// errors.Is finds both while the message stays short.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.parent }

// Use says which of a party's keys is meant.
type Use string

// The key uses, as they appear in file names.
const (
	DS   Use = "ds"    // digital signature
	KA   Use = "ka"    // key agreement
	PPKA Use = "pp-ka" // prepayment top-up key agreement
)

// ErrNotValid is wrapped when a certificate is outside its validity
// period at the time the Dir checks (see At). The key is there but cannot
// be trusted: it wraps commands.ErrUntrusted, not ErrNoKey, so a check made
// with it is invalid.
var ErrNotValid error = &sentinel{"keystore: certificate not valid at the time asked", commands.ErrUntrusted}

// Dir is a keystore directory. It satisfies commands.Keys with the KA and DS
// keys of each party.
type Dir struct {
	path string
	// At, when not zero, is the time at which certificates must be valid.
	At time.Time
}

// Open checks that path is a directory and returns its keystore.
func Open(path string) (*Dir, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("keystore: %s is not a directory", path)
	}
	return &Dir{path: path}, nil
}

// read returns the contents of <EUI>-<use>.<ext>, trying the upper-case,
// lower-case and grouped spellings of the EUI.
func (d *Dir) read(eui smki.EUI, use Use, ext string) ([]byte, string, error) {
	for _, n := range []string{eui.String(), strings.ToLower(eui.String()), eui.Grouped()} {
		name := fmt.Sprintf("%s-%s.%s", n, use, ext)
		path := filepath.Join(d.path, name)
		b, err := os.ReadFile(path)
		if err == nil {
			return b, path, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, path, fmt.Errorf("%w: reading %s: %w", ErrNoKey, path, err)
		}
	}
	return nil, "", fmt.Errorf("%w: %s-%s.%s in %s", ErrNotFound, eui, use, ext, d.path)
}

// PrivateKey returns the private key of eui for use, a software key of
// package keys (a crypto.Signer and a commands.KeyAgreement).
func (d *Dir) PrivateKey(eui smki.EUI, use Use) (*custody.Software, error) {
	b, name, err := d.read(eui, use, "key")
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}

// Signer returns eui's digital-signature private key.
func (d *Dir) Signer(eui smki.EUI) (crypto.Signer, error) { return d.PrivateKey(eui, DS) }

// KeyAgreement returns eui's key-agreement private key (use KA or PPKA).
func (d *Dir) KeyAgreement(eui smki.EUI, use Use) (commands.KeyAgreement, error) {
	k, err := d.PrivateKey(eui, use)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// PublicKey returns eui's public key for use, from <EUI>-<use>.pem, or, when
// that is absent, from the private key file.
func (d *Dir) PublicKey(eui smki.EUI, use Use) (*ecdsa.PublicKey, error) {
	b, name, err := d.read(eui, use, "pem")
	if errors.Is(err, ErrNotFound) {
		k, kerr := d.PrivateKey(eui, use)
		if kerr != nil {
			if errors.Is(kerr, ErrNotFound) {
				return nil, err
			}
			return nil, kerr
		}
		return k.Public().(*ecdsa.PublicKey), nil
	}
	if err != nil {
		return nil, err
	}
	k, err := ParsePublicPEMAt(b, eui, use, d.At)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}

// KeyAgreementPublicKey returns eui's key-agreement public key in ECDH form.
func (d *Dir) KeyAgreementPublicKey(eui smki.EUI, use Use) (*ecdh.PublicKey, error) {
	k, err := d.PublicKey(eui, use)
	if err != nil {
		return nil, err
	}
	return commands.ECDHPublicKey(k)
}

// ParsePrivateKeyPEM reads a P-256 private key from PKCS#8 or SEC 1 PEM
// with custody.ParsePEM, the one reader of private keys. Errors wrap ErrBadKey
// and never include key material.
func ParsePrivateKeyPEM(b []byte) (*custody.Software, error) {
	k, err := custody.ParsePEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return k, nil
}

// ParsePublicPEM reads a P-256 public key from a CERTIFICATE (SMKI form
// first, then crypto/x509) or PUBLIC KEY PEM block. For a certificate it
// checks that the subject EUI (when it names one) is eui and that the key
// usage fits use.
func ParsePublicPEM(b []byte, eui smki.EUI, use Use) (*ecdsa.PublicKey, error) {
	return ParsePublicPEMAt(b, eui, use, time.Time{})
}

// ParsePublicPEMAt is ParsePublicPEM that also requires a certificate to be
// valid at at, unless at is zero.
func ParsePublicPEMAt(b []byte, eui smki.EUI, use Use, at time.Time) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadKey)
	}
	var pub any
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := smki.ParsePublicKeyInfo(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PUBLIC KEY: %w", ErrBadKey, err)
		}
		pub = k
	case "CERTIFICATE":
		want := x509.KeyUsageDigitalSignature
		if use != DS {
			want = x509.KeyUsageKeyAgreement
		}
		c, err := smki.ParseCertificate(blk.Bytes)
		switch {
		case err == nil:
			if !c.EUI.IsZero() && c.EUI != eui {
				return nil, fmt.Errorf("%w: certificate is for %s, not %s", ErrBadKey, c.EUI, eui)
			}
			if c.KeyUsage&want == 0 {
				return nil, fmt.Errorf("%w: certificate key usage does not allow %s", ErrBadKey, use)
			}
			if err := validAt(c.NotBefore, c.NotAfter, at); err != nil {
				return nil, err
			}
			pub = c.PublicKey
		case errors.Is(err, smki.ErrPublicKey):
			return nil, fmt.Errorf("%w: certificate: %w", ErrBadKey, err)
		default:
			// Certificates the SMKI reader refuses for their signature
			// algorithm: read with crypto/x509, but the key with the
			// SMKI reader, so that both accept the same keys.
			x, xerr := x509.ParseCertificate(blk.Bytes)
			if xerr != nil {
				return nil, fmt.Errorf("%w: certificate: %w", ErrBadKey, err)
			}
			if x.KeyUsage != 0 && x.KeyUsage&want == 0 {
				return nil, fmt.Errorf("%w: certificate key usage does not allow %s", ErrBadKey, use)
			}
			if err := validAt(x.NotBefore, x.NotAfter, at); err != nil {
				return nil, err
			}
			k, kerr := smki.ParsePublicKeyInfo(x.RawSubjectPublicKeyInfo)
			if kerr != nil {
				return nil, fmt.Errorf("%w: certificate: %w", ErrBadKey, kerr)
			}
			pub = k
		}
	default:
		return nil, fmt.Errorf("%w: PEM block %q, want CERTIFICATE or PUBLIC KEY", ErrBadKey, blk.Type)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: want an ECDSA P-256 key, have %T", ErrBadKey, pub)
	}
	return k, nil
}

func validAt(notBefore, notAfter, at time.Time) error {
	if at.IsZero() || (!at.Before(notBefore) && !at.After(notAfter)) {
		return nil
	}
	return fmt.Errorf("%w: %s is outside %s to %s", ErrNotValid, at.Format(time.RFC3339),
		notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339))
}

// SignatureKey implements commands.Keys with eui's DS public key.
func (d *Dir) SignatureKey(_ context.Context, eui smki.EUI) (*ecdsa.PublicKey, error) {
	return d.PublicKey(eui, DS)
}

// AgreementKey implements commands.Keys with eui's KA private key.
func (d *Dir) AgreementKey(_ context.Context, eui smki.EUI) (commands.KeyAgreement, error) {
	return d.KeyAgreement(eui, KA)
}

// AgreementPublicKey implements commands.Keys with eui's KA public key.
func (d *Dir) AgreementPublicKey(_ context.Context, eui smki.EUI) (*ecdh.PublicKey, error) {
	return d.KeyAgreementPublicKey(eui, KA)
}
