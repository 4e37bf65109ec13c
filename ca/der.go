package ca

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// cryptoRand is the default randomness source.
var cryptoRand = rand.Reader

// tbsOf returns the DER TBSCertificate (or TBSCertList) of a signed
// structure: SEQUENCE { tbs, algorithm, signature }.
func tbsOf(der []byte) ([]byte, error) {
	s := cryptobyte.String(der)
	var outer cryptobyte.String
	var tbs []byte
	if !s.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element((*cryptobyte.String)(&tbs), cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: malformed signed structure", ErrReadBack)
	}
	return tbs, nil
}

// subjectPublicKeyBits returns the subjectPublicKey BIT STRING contents of
// a SubjectPublicKeyInfo (what OCSP's issuerKeyHash hashes).
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	s := cryptobyte.String(spki)
	var body, alg cryptobyte.String
	var bits []byte
	if !s.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!body.ReadASN1Bytes(&bits, cbasn1.BIT_STRING) || len(bits) < 1 || bits[0] != 0 {
		return nil, fmt.Errorf("%w: malformed SubjectPublicKeyInfo", ErrRequest)
	}
	return bits[1:], nil
}
