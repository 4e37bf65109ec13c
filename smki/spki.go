package smki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrPublicKey is wrapped by every error about a well-formed public key that
// SMKI does not accept: not id-ecPublicKey on the named curve prime256v1,
// not an uncompressed point, or a point that is not on P-256.
var ErrPublicKey = errors.New("smki: public key is not an uncompressed P-256 point")

// ParsePublicKeyInfo reads a DER SubjectPublicKeyInfo holding an SMKI key
// (GBCS security notes section 2; RFC 5480 section 2): algorithm
// id-ecPublicKey with exactly the namedCurve prime256v1 OID as parameters,
// and a subjectPublicKey BIT STRING of whole octets holding an uncompressed
// point (65 bytes, 04 || X || Y) on P-256, nothing trailing anywhere. It is
// the one SPKI reader: ParseCertificate, ParseCSR and the command-line
// keystore's PUBLIC KEY files all use it, so they accept the same keys.
//
// Malformed DER gives an error wrapping ErrMalformed, a well-formed key of
// another kind one wrapping ErrPublicKey; both name the field and the byte
// offset in der.
func ParsePublicKeyInfo(der []byte) (*ecdsa.PublicKey, error) {
	in := cryptobyte.String(der)
	var spki, alg, algOID cryptobyte.String
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) {
		return nil, derErrAt("subjectPublicKeyInfo: not a DER SEQUENCE", der, in)
	}
	if !in.Empty() {
		return nil, derErrAt("subjectPublicKeyInfo: trailing data", der, in)
	}
	if !spki.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return nil, derErrAt("subjectPublicKeyInfo.algorithm", der, spki)
	}
	if !alg.ReadASN1(&algOID, cbasn1.OBJECT_IDENTIFIER) {
		return nil, derErrAt("subjectPublicKeyInfo.algorithm.algorithm", der, alg)
	}
	params := alg
	var curve cryptobyte.String
	curveOK := alg.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) && alg.ReadASN1(&curve, cbasn1.OBJECT_IDENTIFIER)
	if curveOK && !alg.Empty() {
		return nil, derErrAt("subjectPublicKeyInfo.algorithm.parameters: trailing data after the namedCurve", der, alg)
	}
	bitsAt := spki
	var bits cryptobyte.String
	if !spki.ReadASN1(&bits, cbasn1.BIT_STRING) || len(bits) == 0 || bits[0] != 0 {
		return nil, derErrAt("subjectPublicKeyInfo.subjectPublicKey: want a BIT STRING of whole octets", der, bitsAt)
	}
	if !spki.Empty() {
		return nil, derErrAt("subjectPublicKeyInfo: trailing data after subjectPublicKey", der, spki)
	}
	if string(algOID) != derECPublicKey {
		o, _ := oidFromDER(algOID)
		return nil, keyErr(der, algOID, "algorithm %s: want id-ecPublicKey", o)
	}
	switch {
	case len(params) == 0:
		return nil, keyErr(der, params, "algorithm.parameters absent: want namedCurve prime256v1")
	case !curveOK:
		return nil, keyErr(der, params, "algorithm.parameters: want namedCurve prime256v1, not explicit or implicit curve parameters")
	case string(curve) != derP256:
		o, _ := oidFromDER(curve)
		return nil, keyErr(der, params, "algorithm.parameters: namedCurve %s: want prime256v1 (1.2.840.10045.3.1.7)", o)
	}
	pt := bits[1:]
	if len(pt) != 65 || pt[0] != 4 {
		return nil, keyErr(der, pt, "subjectPublicKey of %d bytes starting %s: want an uncompressed point, 65 bytes starting 04", len(pt), firstByte(pt))
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, keyErr(der, pt, "subjectPublicKey: the point is not on P-256")
	}
	return pub, nil
}

func keyErr(base, at []byte, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrPublicKey, fmt.Sprintf(format, args...), offsetIn(base, at))
}

func firstByte(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%02X", b[0])
}
