// Package certtest makes the X.509 certificates tests need and crypto/x509
// will not write: a certificate whose TBSCertificate or signature algorithm
// was edited, signed again. It serves the tests of smki, the keystore, the
// command line and the reference meter, which all check what real issuers'
// deviations do to them.
package certtest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The indexes of the TBSCertificate elements of a v3 certificate, as
// Reissue hands them to its edit function.
const (
	TBSVersion = iota
	TBSSerial
	TBSSignature
	TBSIssuer
	TBSValidity
	TBSSubject
	TBSSPKI
	TBSExtensions
)

// ECDSAWithSHA256NULL is the ecdsa-with-SHA256 AlgorithmIdentifier with
// NULL parameters, which RFC 5758 forbids and some issuers write.
var ECDSAWithSHA256NULL = []byte{0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00}

// NullParameters is an edit for Reissue that puts NULL parameters on both
// signature AlgorithmIdentifiers.
func NullParameters(tbs [][]byte, outer *[]byte) {
	tbs[TBSSignature] = ECDSAWithSHA256NULL
	*outer = ECDSAWithSHA256NULL
}

// Reissue splits der into its TBSCertificate elements, lets edit (when not
// nil) change them and the outer signatureAlgorithm, and signs the result
// again with key (ECDSA with SHA-256).
func Reissue(tb testing.TB, der []byte, key crypto.Signer, edit func(tbs [][]byte, outer *[]byte)) []byte {
	tb.Helper()
	in := cryptobyte.String(der)
	var cert, tbs, outer cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&outer, cbasn1.SEQUENCE) {
		tb.Fatal("certtest: not a certificate")
	}
	var els [][]byte
	for !tbs.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !tbs.ReadAnyASN1Element(&el, &tag) {
			tb.Fatal("certtest: bad TBSCertificate element")
		}
		els = append(els, append([]byte(nil), el...))
	}
	alg := append([]byte(nil), outer...)
	if edit != nil {
		edit(els, &alg)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, el := range els {
			b.AddBytes(el)
		}
	})
	newTBS, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.Sum256(newTBS)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(newTBS)
		b.AddBytes(alg)
		b.AddASN1BitString(sig)
	})
	res, err := out.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return res
}
