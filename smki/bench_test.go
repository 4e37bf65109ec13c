package smki

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkParseCertificate reads an organisation certificate (the form
// crypto/x509 refuses); compare with BenchmarkRawVerifyECDSA, one signature
// check, the cost every path link pays anyway.
func BenchmarkParseCertificate(b *testing.B) {
	p := newTestPKI(b)
	for _, is := range []*issued{p.orgDS, p.devKA} {
		b.Run(string(is.cert.Profile), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCertificate(is.der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawVerifyECDSA(b *testing.B) {
	p := newTestPKI(b)
	h := sha256.Sum256(p.orgDS.cert.RawTBS)
	for b.Loop() {
		if !ecdsa.VerifyASN1(p.oca.cert.PublicKey, h[:], p.orgDS.cert.Signature) {
			b.Fatal("signature does not verify")
		}
	}
}
