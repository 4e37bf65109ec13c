package commands

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// SignData signs data the GBCS way: ECDSA P-256 over SHA-256(data), returned
// as raw 64-byte r||s (IEEE P1363), not DER. signer may be a file key or an
// HSM key; its ASN.1 signature is converted.
func SignData(rand io.Reader, signer crypto.Signer, data []byte) ([]byte, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: signer must hold an ECDSA P-256 key, have %T", ErrKey, signer.Public())
	}
	d := sha256.Sum256(data)
	der, err := signer.Sign(rand, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("commands: signing: %w", err)
	}
	raw, err := rawSignature(der)
	if err != nil {
		return nil, fmt.Errorf("commands: signing: signer returned %w", err)
	}
	return raw, nil
}

// VerifyData checks a raw 64-byte r||s signature over SHA-256(data) with pub.
// It returns nil or an error wrapping ErrSignature. High-S signatures are
// accepted: GBCS does not require low-S, and ECDSA verification accepts both
// (s and n-s verify alike), so refusing them would reject valid GB devices.
func VerifyData(pub *ecdsa.PublicKey, data, sig []byte) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: verification key must be ECDSA P-256", ErrKey)
	}
	if len(sig) != signatureLen {
		return fmt.Errorf("%w: %d bytes, want 64 raw r||s", ErrSignature, len(sig))
	}
	d := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(pub, d[:], asn1Signature(sig)) {
		return ErrSignature
	}
	return nil
}

// Sign computes the Remote Party signature over m and sets m.Signature. It
// clears any MAC, which no longer matches.
func Sign(rand io.Reader, signer crypto.Signer, m *Message) error {
	m.Signature = nil
	data, err := m.SignedData()
	if err != nil {
		return err
	}
	sig, err := SignData(rand, signer, data)
	if err != nil {
		return err
	}
	m.Signature = sig
	m.MAC = nil
	return nil
}

// VerifySignature checks m's Remote Party signature with pub. It returns
// ErrNoSignature when m is unsigned and an error wrapping ErrSignature when
// the signature does not verify.
func VerifySignature(pub *ecdsa.PublicKey, m *Message) error {
	if m.Signature == nil {
		return ErrNoSignature
	}
	data, err := m.SignedData()
	if err != nil {
		return err
	}
	return VerifyData(pub, data, m.Signature)
}

// IsPreCommand reports whether m is a pre-command: a command without MAC
// header and without signature, in the real form (no signature field) or the
// older tools' form ending in 00 (spec gbcs-payloads.md 1.2).
func (m *Message) IsPreCommand() bool {
	f := m.Form()
	return m.CRA == Command && (f == FormPreCommand || f == FormUnprotected)
}

// SignPreCommand signs a pre-command, the second step of a critical command:
// the user signs what the DCC returned and gets the signed pre-command
// (FormSigned). A pre-command in the older form ending in 00 is accepted and
// that byte dropped, as the DCC's own tools do. Anything else is refused
// with ErrNotPreCommand.
func SignPreCommand(rand io.Reader, signer crypto.Signer, m *Message) error {
	if !m.IsPreCommand() {
		return fmt.Errorf("%w: a %s in the %s form", ErrNotPreCommand, m.CRA, m.Form())
	}
	if err := Sign(rand, signer, m); err != nil {
		return err
	}
	m.EmptySignatureField = false
	return nil
}

// rawSignature converts an ASN.1 ECDSA-Sig-Value to 64-byte r||s.
func rawSignature(der []byte) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return nil, fmt.Errorf("%w: not an ASN.1 ECDSA signature", ErrSignature)
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 256 || s.BitLen() > 256 {
		return nil, fmt.Errorf("%w: r or s out of range for P-256", ErrSignature)
	}
	out := make([]byte, signatureLen)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// asn1Signature converts 64-byte r||s to an ASN.1 ECDSA-Sig-Value.
func asn1Signature(raw []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addUnsigned(b, raw[:32])
		addUnsigned(b, raw[32:])
	})
	out, _ := b.Bytes() // cannot fail: only fixed-size content
	return out
}

// addUnsigned writes a big-endian unsigned integer as a DER INTEGER without
// going through big.Int.
func addUnsigned(b *cryptobyte.Builder, v []byte) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) {
		if v[0]&0x80 != 0 {
			b.AddUint8(0)
		}
		b.AddBytes(v)
	})
}
