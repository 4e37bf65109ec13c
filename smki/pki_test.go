package smki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

// testPKI is a small in-test SMKI: a root, an OCA and a DCA, and one
// certificate of every end-entity profile, built from the package's own
// profiles and templates with crypto/x509.CreateCertificate.
type testPKI struct {
	now                                   time.Time
	root, oca, dca                        *issued
	orgDS, orgKA, orgPrepay, devDS, devKA *issued
}

type issued struct {
	der  []byte
	cert *Certificate
	key  *ecdsa.PrivateKey
	x509 *x509.Certificate // nil for certificates crypto/x509 refuses
}

var (
	orgEUI = MustParseEUI("90B3D51F30010000")
	devEUI = MustParseEUI("00-DB-12-34-56-78-90-A0")
)

var testSerial int64 = 1000

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue builds a certificate of profile id from req, signed by parent (nil:
// self-signed). mutate, if set, may alter the template before signing.
func issue(t testing.TB, id ProfileID, req TemplateRequest, parent *issued, mutate func(*x509.Certificate)) *issued {
	t.Helper()
	der, key := issueDER(t, id, req, parent, mutate)
	c, err := ParseCertificate(der)
	if err != nil {
		t.Fatalf("reading back %s: %v", id, err)
	}
	out := &issued{der: der, cert: c, key: key}
	out.x509, _ = x509.ParseCertificate(der)
	return out
}

func issueDER(t testing.TB, id ProfileID, req TemplateRequest, parent *issued, mutate func(*x509.Certificate)) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	if req.PublicKey == nil {
		req.PublicKey = &key.PublicKey
	}
	if req.SerialNumber == nil {
		testSerial++
		req.SerialNumber = big.NewInt(testSerial)
	}
	tmpl, err := Profiles[id].Template(req)
	if err != nil {
		t.Fatalf("template %s: %v", id, err)
	}
	if mutate != nil {
		mutate(tmpl)
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		if parent.x509 == nil {
			t.Fatalf("parent of %s unreadable by crypto/x509", id)
		}
		parentCert, signer = parent.x509, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, req.PublicKey, signer)
	if err != nil {
		t.Fatalf("creating %s: %v", id, err)
	}
	return der, key
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p := &testPKI{now: now}
	nb := now.Add(-24 * time.Hour)
	p.root = issue(t, ProfileRoot, TemplateRequest{NotBefore: nb, CommonName: "metertrust test root"}, nil, nil)
	p.oca = issue(t, ProfileOCA, TemplateRequest{NotBefore: nb, CommonName: "metertrust test OCA"}, p.root, nil)
	p.dca = issue(t, ProfileDCA, TemplateRequest{NotBefore: nb, CommonName: "metertrust test DCA 0001"}, p.root, nil)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme Energy", Role: RoleSupplier, EUI: orgEUI}
	p.orgDS = issue(t, ProfileOrgDS, org, p.oca, nil)
	p.orgKA = issue(t, ProfileOrgKA, org, p.oca, nil)
	p.orgPrepay = issue(t, ProfileOrgPrepaymentKA, org, p.oca, nil)
	dev := TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}
	p.devDS = issue(t, ProfileDeviceDS, dev, p.dca, nil)
	p.devKA = issue(t, ProfileDeviceKA, dev, p.dca, nil)
	return p
}

func (p *testPKI) all() map[ProfileID]*issued {
	return map[ProfileID]*issued{
		ProfileRoot: p.root, ProfileOCA: p.oca, ProfileDCA: p.dca,
		ProfileOrgDS: p.orgDS, ProfileOrgKA: p.orgKA, ProfileOrgPrepaymentKA: p.orgPrepay,
		ProfileDeviceDS: p.devDS, ProfileDeviceKA: p.devKA,
	}
}

func (p *testPKI) opts() VerifyOptions {
	return VerifyOptions{
		Roots:         []*Certificate{p.root.cert},
		Intermediates: []*Certificate{p.oca.cert, p.dca.cert},
		At:            p.now,
	}
}
