package repository

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// testPKI is a small SMKI hierarchy made at test time with crypto/x509 in
// the shapes of the SMKI profiles: root (OU=00), OCA (OU=07), DCA, and
// organisation and device end-entity certificates.
type testPKI struct {
	t                 *testing.T
	root, oca, dca    *testCA
	other             *testCA // a CA the repository does not know
	notBefore         time.Time
	nextSerial        int64
	policyOrg, policy asn1.ObjectIdentifier
}

type testCA struct {
	name string
	der  []byte
	cert *x509.Certificate
	key  crypto.Signer
}

var (
	oidOU           = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN           = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidUniqueID     = asn1.ObjectIdentifier{2, 5, 4, 45}
	oidPolicies     = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidSAN          = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidHWModuleName = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}
	oidTestHWType   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}
	oidTestPolicy   = asn1.ObjectIdentifier{1, 2, 826, 0, 1, 8641679, 1, 2, 1, 1}
)

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

// newTestPKI returns one shared hierarchy per test binary (key generation
// is the slow part).
func newTestPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() { pkiVal, pkiErr = buildTestPKI() })
	if pkiErr != nil {
		t.Fatalf("building test PKI: %v", pkiErr)
	}
	return pkiVal
}

func buildTestPKI() (*testPKI, error) {
	p := &testPKI{notBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nextSerial: 0x1000}
	var err error
	if p.root, err = p.makeCA("root", "00", "Test Root", nil, false); err != nil {
		return nil, err
	}
	if p.oca, err = p.makeCA("oca", "07", "Test OCA", p.root, true); err != nil {
		return nil, err
	}
	if p.dca, err = p.makeCA("E357", "", "Test DCA E357", p.root, true); err != nil {
		return nil, err
	}
	otherRoot, err := p.makeCA("other-root", "00", "Other Root", nil, false)
	if err != nil {
		return nil, err
	}
	if p.other, err = p.makeCA("other-oca", "07", "Test OCA", otherRoot, true); err != nil {
		return nil, err
	}
	return p, nil
}

func policiesExt() (pkix.Extension, error) {
	v, err := asn1.Marshal([]struct{ ID asn1.ObjectIdentifier }{{oidTestPolicy}})
	return pkix.Extension{Id: oidPolicies, Critical: true, Value: v}, err
}

func (p *testPKI) serial() *big.Int {
	p.nextSerial++
	return big.NewInt(p.nextSerial)
}

func (p *testPKI) makeCA(name, ou, cn string, parent *testCA, pathLen0 bool) (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pol, err := policiesExt()
	if err != nil {
		return nil, err
	}
	subj := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidCN, Value: cn}}}
	if ou != "" {
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: oidOU, Value: ou})
	}
	tmpl := &x509.Certificate{
		SerialNumber:          p.serial(),
		Subject:               subj,
		NotBefore:             p.notBefore,
		NotAfter:              p.notBefore.AddDate(25, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        pathLen0,
		SubjectKeyId:          smki.KeyID(&key.PublicKey),
		ExtraExtensions:       []pkix.Extension{pol},
	}
	if !pathLen0 {
		tmpl.MaxPathLen = -1
	}
	parentCert, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	} else {
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if _, err := smki.ParseCertificate(der); err != nil {
		return nil, err
	}
	return &testCA{name: name, der: der, cert: cert, key: key}, nil
}

// orgCert issues an organisation certificate (OU=role, x500UniqueIdentifier
// = eui) from ca.
func (p *testPKI) orgCert(t testing.TB, ca *testCA, eui string, role smki.Role, ku x509.KeyUsage) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := smki.MustParseEUI(eui)
	pol, err := policiesExt()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: p.serial(),
		Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidCN, Value: "Org " + eui},
			{Type: oidOU, Value: role.OU()},
			{Type: oidUniqueID, Value: asn1.BitString{Bytes: e[:], BitLength: 64}},
		}},
		NotBefore:       p.notBefore,
		NotAfter:        p.notBefore.AddDate(5, 0, 0),
		KeyUsage:        ku,
		SubjectKeyId:    smki.KeyID(&key.PublicKey),
		ExtraExtensions: []pkix.Extension{pol},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := smki.ParseCertificate(der); err != nil {
		t.Fatalf("test organisation certificate off profile: %v", err)
	}
	return der
}

// deviceCert issues a device certificate (empty subject, critical
// hardwareModuleName SAN, notAfter 9999-12-31) from ca.
func (p *testPKI) deviceCert(t testing.TB, ca *testCA, eui string, ku x509.KeyUsage) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := smki.MustParseEUI(eui)
	// SubjectAltName ::= GeneralNames holding one otherName [0] of type
	// hardwareModuleName whose value [0] EXPLICIT is
	// SEQUENCE { hwType OID, hwSerialNum OCTET STRING } (RFC 4108).
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidHWModuleName)
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidTestHWType)
					b.AddASN1OctetString(e[:])
				})
			})
		})
	})
	san, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policiesExt()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    p.serial(),
		NotBefore:       p.notBefore,
		NotAfter:        smki.NeverExpires,
		KeyUsage:        ku,
		SubjectKeyId:    smki.KeyID(&key.PublicKey),
		ExtraExtensions: []pkix.Extension{pol, {Id: oidSAN, Critical: true, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := smki.ParseCertificate(der); err != nil {
		t.Fatalf("test device certificate off profile: %v", err)
	}
	return der
}

// storeCA is the store row of a test CA.
func (c *testCA) storeCA(kind, parent string) store.CA {
	return store.CA{Name: c.name, Kind: kind, Parent: parent, CertDER: c.der, KeyURI: "pkcs11:token=secret;object=" + c.name + "?pin-value=1234",
		State: store.CAStateActive, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// fakeStore is an in-memory CertificateFinder, CAFinder, CRLFinder,
// Auditor and Publisher.
type fakeStore struct {
	mu       sync.Mutex
	certs    []store.Certificate
	cas      []store.CA
	crls     map[string]store.CRL
	audit    []store.AuditEvent
	failWith error // returned by every call when set
	auditErr error // returned by AppendAudit when set
	lastQ    store.CertQuery
}

func (f *fakeStore) FindCertificates(_ context.Context, q store.CertQuery) ([]store.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQ = q
	if f.failWith != nil {
		return nil, f.failWith
	}
	var out []store.Certificate
	for _, c := range f.certs {
		switch {
		case c.ID <= q.AfterID,
			q.EUI != "" && c.EUI != q.EUI,
			q.Role != nil && c.Role != *q.Role,
			q.Usage != "" && c.Usage != q.Usage,
			q.Kind != "" && c.Kind != q.Kind,
			q.CA != "" && c.CA != q.CA,
			q.UserRole != "" && c.UserRole != q.UserRole,
			q.Serial != nil && !bytes.Equal(c.Serial, q.Serial):
			continue
		}
		out = append(out, c)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func (f *fakeStore) Certificate(_ context.Context, ca string, serial []byte) (store.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return store.Certificate{}, f.failWith
	}
	for _, c := range f.certs {
		if c.CA == ca && bytes.Equal(c.Serial, serial) {
			return c, nil
		}
	}
	return store.Certificate{}, store.ErrNotFound
}

func (f *fakeStore) CA(_ context.Context, name string) (store.CA, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return store.CA{}, f.failWith
	}
	for _, c := range f.cas {
		if c.Name == name {
			return c, nil
		}
	}
	return store.CA{}, store.ErrNotFound
}

func (f *fakeStore) CAs(context.Context) ([]store.CA, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return nil, f.failWith
	}
	return slices.Clone(f.cas), nil
}

func (f *fakeStore) LatestCRL(_ context.Context, ca string) (store.CRL, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return store.CRL{}, f.failWith
	}
	c, ok := f.crls[ca]
	if !ok {
		return store.CRL{}, store.ErrNotFound
	}
	return c, nil
}

func (f *fakeStore) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auditErr != nil {
		return store.AuditEvent{}, f.auditErr
	}
	e.Seq = int64(len(f.audit) + 1)
	f.audit = append(f.audit, e)
	return e, nil
}

func (f *fakeStore) PutCertificates(_ context.Context, certs ...store.Certificate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	for _, c := range certs {
		for _, o := range f.certs {
			if o.CA == c.CA && bytes.Equal(o.Serial, c.Serial) {
				return fmt.Errorf("storing certificate %s/%X: %w", c.CA, c.Serial, store.ErrExists)
			}
		}
	}
	for _, c := range certs {
		c.ID = int64(len(f.certs) + 1)
		f.certs = append(f.certs, c)
	}
	return nil
}

func (f *fakeStore) events() []store.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.audit)
}

// fakeResponder answers OCSP requests with a fixed response, or an error.
type fakeResponder struct {
	resp []byte
	err  error
	got  [][]byte
	mu   sync.Mutex
}

func (r *fakeResponder) Respond(_ context.Context, der []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, slices.Clone(der))
	return r.resp, r.err
}

var errBoom = errors.New("disk on fire")

func hasAudit(events []store.AuditEvent, actor, action, outcome, detailPart string) bool {
	for _, e := range events {
		if e.Actor == actor && e.Action == action && e.Outcome == outcome && strings.Contains(fmt.Sprint(e.Details), detailPart) {
			return true
		}
	}
	return false
}
