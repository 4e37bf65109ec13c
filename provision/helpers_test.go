package provision_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/provision/provisiontest"
	"github.com/metertrust/metertrust/smki"
)

var (
	manufacturerEUI = smki.MustParseEUI("90B3D51F300A0001")
	firstDevice     = smki.MustParseEUI("00DB123456780001")
	created         = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
)

// orgCert returns an organisation certificate of the given key usage for
// eui, with its key, issued by a throwaway CA (the reader records the
// deviations of such a path as warnings; Verify does not validate paths).
func orgCert(t testing.TB, eui smki.EUI, ku x509.KeyUsage) (*smki.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caKey, key := newKey(t), newKey(t)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	caT, err := smki.Profiles[smki.ProfileOCA].Template(smki.TemplateRequest{SerialNumber: big.NewInt(1), NotBefore: now,
		CommonName: "test OCA", PublicKey: &caKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	id := smki.ProfileOrgDS
	if ku == x509.KeyUsageKeyAgreement {
		id = smki.ProfileOrgKA
	}
	tmpl, err := smki.Profiles[id].Template(smki.TemplateRequest{SerialNumber: big.NewInt(2), NotBefore: now,
		CommonName: "Meters Ltd", Role: smki.RoleOther, EUI: eui, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caT, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smki.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fileLines returns a file of n devices as its lines, without LFs.
func fileLines(t testing.TB, n int) []string {
	t.Helper()
	devs, err := provisiontest.Devices(n, firstDevice)
	if err != nil {
		t.Fatal(err)
	}
	b, err := provisiontest.File(manufacturerEUI, created, devs)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func join(lines []string) string { return strings.Join(lines, "\n") + "\n" }

func sign(t testing.TB, data []byte, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	sig, err := provision.Sign(rand.Reader, data, key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
