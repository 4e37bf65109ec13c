package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// testCA is an organisation CA for test certificates, made once.
var testCA = sync.OnceValues(func() (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl, err := smki.Profiles[smki.ProfileOCA].Template(smki.TemplateRequest{
		SerialNumber: big.NewInt(1), NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		CommonName: "metertrust device tests OCA", PublicKey: &key.PublicKey})
	if err != nil {
		panic(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c, key
})

var serial struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(1000 + serial.n)
}

// issue makes an SMKI certificate of profile p for pub, signed by the test
// OCA, and returns its DER.
func issue(t testing.TB, p smki.ProfileID, role smki.Role, eui smki.EUI, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	ca, caKey := testCA()
	tmpl, err := smki.Profiles[p].Template(smki.TemplateRequest{
		SerialNumber: nextSerial(), NotBefore: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Role: role, EUI: eui, HWType: smki.OIDHWTypeReferenceMeter, PublicKey: pub})
	if err != nil {
		t.Fatalf("template %s: %v", p, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatalf("issuing %s: %v", p, err)
	}
	if _, err := smki.ParseCertificate(der); err != nil {
		t.Fatalf("reading back %s: %v", p, err)
	}
	return der
}
