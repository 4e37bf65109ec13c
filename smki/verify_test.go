package smki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func TestVerifyGoodPaths(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		leaf *issued
		path []*issued
	}{
		{p.orgDS, []*issued{p.orgDS, p.oca, p.root}},
		{p.orgKA, []*issued{p.orgKA, p.oca, p.root}},
		{p.orgPrepay, []*issued{p.orgPrepay, p.oca, p.root}},
		{p.devDS, []*issued{p.devDS, p.dca, p.root}},
		{p.devKA, []*issued{p.devKA, p.dca, p.root}},
		{p.oca, []*issued{p.oca, p.root}},
		{p.dca, []*issued{p.dca, p.root}},
		{p.root, []*issued{p.root}},
	}
	for _, tt := range tests {
		t.Run(string(tt.leaf.cert.Profile)+"-"+tt.leaf.cert.Subject.String(), func(t *testing.T) {
			got, err := Verify(tt.leaf.cert, p.opts())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.path) {
				t.Fatalf("path of %d, want %d", len(got), len(tt.path))
			}
			for i := range got {
				if got[i] != tt.path[i].cert {
					t.Errorf("path[%d] = %s, want %s", i, got[i].Subject, tt.path[i].cert.Subject)
				}
			}
		})
	}
}

// TestVerifyDeviceNeverExpires validates a device certificate in 2200
// under a root and DCA that are themselves valid until 9999.
func TestVerifyDeviceNeverExpires(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root := issue(t, ProfileRoot, TemplateRequest{NotBefore: nb, NotAfter: NeverExpires, CommonName: "long root"}, nil, nil)
	dca := issue(t, ProfileDCA, TemplateRequest{NotBefore: nb, NotAfter: NeverExpires, CommonName: "long DCA"}, root, nil)
	dev := issue(t, ProfileDeviceKA, TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}, dca, nil)
	at := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Verify(dev.cert, VerifyOptions{Roots: []*Certificate{root.cert}, Intermediates: []*Certificate{dca.cert}, At: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dev.cert, VerifyOptions{Roots: []*Certificate{root.cert}, Intermediates: []*Certificate{dca.cert}, At: nb.Add(-time.Second)}); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("before notBefore: %v, want ErrNotYetValid", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	p := newTestPKI(t)
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}

	otherRoot := issue(t, ProfileRoot, TemplateRequest{NotBefore: nb, CommonName: "metertrust test root"}, nil, nil)
	otherOCA := issue(t, ProfileOCA, TemplateRequest{NotBefore: nb, CommonName: "metertrust test OCA"}, otherRoot, nil)
	orgUnderDCA := issue(t, ProfileOrgDS, org, p.dca, nil)
	tampered := append([]byte{}, p.orgDS.der...)
	tampered[len(tampered)-3] ^= 0x01
	badSig, err := ParseCertificate(tampered)
	if err != nil {
		t.Fatal(err)
	}
	short := issue(t, ProfileOrgDS, TemplateRequest{NotBefore: nb, NotAfter: nb.Add(time.Minute), CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}, p.oca, nil)
	future := issue(t, ProfileOrgDS, TemplateRequest{NotBefore: p.now.Add(time.Hour), CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}, p.oca, nil)

	notCA := *p.oca.cert
	notCA.IsCA = false
	pathLen := *p.root.cert
	pathLen.MaxPathLen = 0
	critical := *p.orgDS.cert
	critical.Extensions = append(append([]Extension{}, critical.Extensions...), Extension{ID: mustOID("1.2.3.4"), Critical: true, oid: []byte{42, 3, 4}})
	noPolicy := *p.orgDS.cert
	noPolicy.Policies = nil

	base := p.opts()
	withInter := func(in ...*Certificate) VerifyOptions { o := base; o.Intermediates = in; return o }
	withRoots := func(in ...*Certificate) VerifyOptions { o := base; o.Roots = in; return o }
	at := func(tm time.Time) VerifyOptions { o := base; o.At = tm; return o }
	strict := base
	strict.Strict = true
	tests := []struct {
		name string
		leaf *Certificate
		opts VerifyOptions
		want error
	}{
		{"no OCA", p.orgDS.cert, withInter(p.dca.cert), ErrUnknownIssuer},
		{"other root", p.orgDS.cert, withRoots(otherRoot.cert), ErrKeyID},
		{"self-signed not trusted", otherRoot.cert, base, ErrUntrustedRoot},
		{"OCA of other root", p.orgDS.cert, withInter(otherOCA.cert), ErrKeyID},
		{"tampered signature", badSig, base, ErrSignature},
		{"expired", short.cert, base, ErrExpired},
		{"not yet valid", future.cert, base, ErrNotYetValid},
		{"root expired", p.orgDS.cert, at(p.root.cert.NotAfter.Add(time.Second)), ErrExpired},
		{"organisation under DCA", orgUnderDCA.cert, base, ErrPathShape},
		{"issuer not CA", p.orgDS.cert, withInter(&notCA), ErrNotCA},
		{"root pathLen 0", p.orgDS.cert, withRoots(&pathLen), ErrPathLen},
		{"unknown critical extension", &critical, base, ErrCriticalExtension},
		{"no policy, strict", &noPolicy, strict, ErrPolicy},
		{"no policy, strict", &noPolicy, strict, ErrDeviation},
		{"no time", p.orgDS.cert, at(time.Time{}), ErrVerifyOptions},
		{"no roots", p.orgDS.cert, withRoots(), ErrVerifyOptions},
		{"nil leaf", nil, base, ErrVerifyOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.leaf, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheckLinkName(t *testing.T) {
	p := newTestPKI(t)
	if err := checkLink(p.devDS.cert, p.oca.cert, 0); !errors.Is(err, ErrName) {
		t.Errorf("device under OCA: %v, want ErrName", err)
	}
}

func crl(t *testing.T, issuer *issued, key any, thisUpdate time.Time, revoked ...*Certificate) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(48 * time.Hour)}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate, ReasonCode: 1})
	}
	signer := issuer.key
	if key != nil {
		signer = newKey(t)
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.x509, signer)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return rl
}

func TestVerifyCRL(t *testing.T) {
	p := newTestPKI(t)
	tu := p.now.Add(-time.Hour)
	tests := []struct {
		name    string
		leaf    *Certificate
		crls    []*x509.RevocationList
		require bool
		want    error
	}{
		{"not listed", p.orgDS.cert, []*x509.RevocationList{crl(t, p.oca, nil, tu, p.orgKA.cert), crl(t, p.root, nil, tu, p.dca.cert)}, true, nil},
		{"revoked org", p.orgKA.cert, []*x509.RevocationList{crl(t, p.oca, nil, tu, p.orgKA.cert)}, false, ErrRevoked},
		{"revoked device", p.devKA.cert, []*x509.RevocationList{crl(t, p.dca, nil, tu, p.devKA.cert)}, false, ErrRevoked},
		{"revoked OCA", p.orgDS.cert, []*x509.RevocationList{crl(t, p.root, nil, tu, p.oca.cert)}, false, ErrRevoked},
		{"stale", p.orgDS.cert, []*x509.RevocationList{crl(t, p.oca, nil, p.now.Add(-72*time.Hour))}, false, ErrCRL},
		{"future", p.orgDS.cert, []*x509.RevocationList{crl(t, p.oca, nil, p.now.Add(time.Hour))}, false, ErrCRL},
		{"forged", p.orgDS.cert, []*x509.RevocationList{crl(t, p.oca, "other key", tu)}, false, ErrCRL},
		{"none required", p.orgDS.cert, nil, true, ErrRevocationUnknown},
		{"root CRL covers the OCA only", p.orgDS.cert, []*x509.RevocationList{crl(t, p.root, nil, tu)}, true, ErrRevocationUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := p.opts()
			o.CRLs, o.RequireRevocationInfo = tt.crls, tt.require
			_, err := Verify(tt.leaf, o)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func ocspResponse(t *testing.T, issuer *issued, c *Certificate, status int, thisUpdate time.Time, forged bool) []byte {
	t.Helper()
	key := issuer.key
	if forged {
		key = newKey(t)
	}
	der, err := ocsp.CreateResponse(issuer.x509, issuer.x509, ocsp.Response{
		Status: status, SerialNumber: c.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour),
		RevokedAt: thisUpdate, RevocationReason: ocsp.KeyCompromise,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerifyOCSP(t *testing.T) {
	p := newTestPKI(t)
	tu := p.now.Add(-time.Hour)
	tests := []struct {
		name string
		resp func(c, issuer *Certificate) ([]byte, error)
		want error
	}{
		{"good", func(c, is *Certificate) ([]byte, error) {
			return ocspResponse(t, p.byCert(is), c, ocsp.Good, tu, false), nil
		}, nil},
		{"revoked leaf", func(c, is *Certificate) ([]byte, error) {
			st := ocsp.Good
			if c == p.devDS.cert {
				st = ocsp.Revoked
			}
			return ocspResponse(t, p.byCert(is), c, st, tu, false), nil
		}, ErrRevoked},
		{"unknown", func(c, is *Certificate) ([]byte, error) {
			return ocspResponse(t, p.byCert(is), c, ocsp.Unknown, tu, false), nil
		}, ErrRevocationUnknown},
		{"forged", func(c, is *Certificate) ([]byte, error) {
			return ocspResponse(t, p.byCert(is), c, ocsp.Good, tu, true), nil
		}, ErrOCSP},
		{"stale", func(c, is *Certificate) ([]byte, error) {
			return ocspResponse(t, p.byCert(is), c, ocsp.Good, p.now.Add(-48*time.Hour), false), nil
		}, ErrOCSP},
		{"wrong serial", func(c, is *Certificate) ([]byte, error) {
			return ocspResponse(t, p.byCert(is), p.devKA.cert, ocsp.Good, tu, false), nil
		}, ErrOCSP},
		{"fetch error", func(c, is *Certificate) ([]byte, error) { return nil, errors.New("responder down") }, ErrOCSP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := p.opts()
			o.OCSP, o.RequireRevocationInfo = tt.resp, true
			_, err := Verify(p.devDS.cert, o)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func (p *testPKI) byCert(c *Certificate) *issued {
	for _, is := range p.all() {
		if is.cert == c {
			return is
		}
	}
	return nil
}

func TestVerifyOCSPDelegatedResponder(t *testing.T) {
	p := newTestPKI(t)
	tu := p.now.Add(-time.Hour)
	responder := func(t *testing.T, eku []x509.ExtKeyUsage) (*x509.Certificate, any) {
		key := newKey(t)
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "ocsp responder"},
			NotBefore: tu, NotAfter: tu.Add(24 * time.Hour), ExtKeyUsage: eku, KeyUsage: x509.KeyUsageDigitalSignature,
		}, p.dca.x509, &key.PublicKey, p.dca.key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	tests := []struct {
		name string
		eku  []x509.ExtKeyUsage
		want error
	}{
		{"OCSP signing", []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, nil},
		{"no OCSP signing", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, ErrOCSP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, rkey := responder(t, tt.eku)
			raw, err := ocsp.CreateResponse(p.dca.x509, rc, ocsp.Response{
				Status: ocsp.Good, SerialNumber: p.devDS.cert.SerialNumber, ThisUpdate: tu, NextUpdate: tu.Add(2 * time.Hour),
				Certificate: rc,
			}, rkey.(crypto.Signer))
			if err != nil {
				t.Fatal(err)
			}
			o := p.opts()
			o.OCSP = func(c, is *Certificate) ([]byte, error) {
				if c == p.devDS.cert {
					return raw, nil
				}
				return nil, nil
			}
			_, err = Verify(p.devDS.cert, o)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}
