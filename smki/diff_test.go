package smki

import (
	"bytes"
	"crypto/x509"
	"testing"
)

// compareWithX509 reports fields on which the reader and crypto/x509 disagree
// for a certificate both accept.
func compareWithX509(t *testing.T, c *Certificate, x *x509.Certificate) {
	t.Helper()
	if c.SerialNumber.Cmp(x.SerialNumber) != 0 {
		t.Errorf("serial %v, crypto/x509 %v", c.SerialNumber, x.SerialNumber)
	}
	if !c.NotBefore.Equal(x.NotBefore) || !c.NotAfter.Equal(x.NotAfter) {
		t.Errorf("validity %v-%v, crypto/x509 %v-%v", c.NotBefore, c.NotAfter, x.NotBefore, x.NotAfter)
	}
	if c.KeyUsage != x.KeyUsage {
		t.Errorf("key usage %s, crypto/x509 %s", KeyUsageString(c.KeyUsage), KeyUsageString(x.KeyUsage))
	}
	if !bytes.Equal(c.SubjectKeyID, x.SubjectKeyId) || !bytes.Equal(c.AuthorityKeyID, x.AuthorityKeyId) {
		t.Errorf("key ids %X/%X, crypto/x509 %X/%X", c.SubjectKeyID, c.AuthorityKeyID, x.SubjectKeyId, x.AuthorityKeyId)
	}
	if c.IsCA != x.IsCA || c.BasicConstraintsValid != x.BasicConstraintsValid {
		t.Errorf("CA %t/%t, crypto/x509 %t/%t", c.IsCA, c.BasicConstraintsValid, x.IsCA, x.BasicConstraintsValid)
	}
	if x.BasicConstraintsValid && (c.MaxPathLen != x.MaxPathLen && !(c.MaxPathLen == 0 && x.MaxPathLenZero)) {
		t.Errorf("pathLen %d, crypto/x509 %d", c.MaxPathLen, x.MaxPathLen)
	}
	if !bytes.Equal(c.RawSubject, x.RawSubject) || !bytes.Equal(c.RawIssuer, x.RawIssuer) || !bytes.Equal(c.RawTBS, x.RawTBSCertificate) ||
		!bytes.Equal(c.Signature, x.Signature) || !bytes.Equal(c.RawSubjectPublicKeyInfo, x.RawSubjectPublicKeyInfo) {
		t.Error("raw fields differ from crypto/x509's")
	}
	if c.PublicKey == nil || !c.PublicKey.Equal(x.PublicKey) {
		t.Error("public key differs from crypto/x509's")
	}
	if len(c.Extensions) != len(x.Extensions) {
		t.Fatalf("%d extensions, crypto/x509 %d", len(c.Extensions), len(x.Extensions))
	}
	for i, e := range c.Extensions {
		xe := x.Extensions[i]
		if !e.ID.EqualASN1OID(xe.Id) || e.Critical != xe.Critical || !bytes.Equal(e.Value, xe.Value) {
			t.Errorf("extension %d: %s critical %t, crypto/x509 %v critical %t", i, e.ID, e.Critical, xe.Id, xe.Critical)
		}
	}
	if len(c.Policies) != len(x.Policies) {
		t.Fatalf("%d policies, crypto/x509 %d", len(c.Policies), len(x.Policies))
	}
	for i := range c.Policies {
		if !c.Policies[i].Equal(x.Policies[i]) {
			t.Errorf("policy %d: %s, crypto/x509 %s", i, c.Policies[i], x.Policies[i])
		}
	}
}

// TestAgreesWithCryptoX509 compares the reader with crypto/x509 on every
// profile crypto/x509 can read (all but organisation certificates).
func TestAgreesWithCryptoX509(t *testing.T) {
	p := newTestPKI(t)
	for id, is := range p.all() {
		t.Run(string(id), func(t *testing.T) {
			x, err := x509.ParseCertificate(is.der)
			if err != nil {
				if is.cert.Kind == KindOrganisation {
					return
				}
				t.Fatal(err)
			}
			compareWithX509(t, is.cert, x)
		})
	}
}
