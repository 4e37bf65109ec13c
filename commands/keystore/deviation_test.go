package keystore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/certtest"
	"github.com/metertrust/metertrust/smki"
)

// supplier is the signer of testdata/vector-02-ecs43-signed-precommand.hex.
var supplier = smki.MustParseEUI("90B3D51F30010001")

var algECDSASHA256Null = []byte{0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00}

// testCA is a root and an OCA made with the smki templates.
type testCA struct {
	now        time.Time
	root, oca  *x509.Certificate
	rootKey    *ecdsa.PrivateKey
	ocaKey     *ecdsa.PrivateKey
	rootSMKI   *smki.Certificate
	ocaSMKI    *smki.Certificate
	serialNext int64
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (ca *testCA) create(t *testing.T, id smki.ProfileID, req smki.TemplateRequest, parent *x509.Certificate, signer *ecdsa.PrivateKey) []byte {
	t.Helper()
	ca.serialNext++
	req.SerialNumber = big.NewInt(ca.serialNext)
	req.NotBefore = ca.now.Add(-24 * time.Hour)
	tmpl, err := smki.Profiles[id].Template(req)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, req.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), rootKey: newKey(t), ocaKey: newKey(t), serialNext: 100}
	rootDER := ca.create(t, smki.ProfileRoot, smki.TemplateRequest{CommonName: "keystore test root", PublicKey: &ca.rootKey.PublicKey}, nil, ca.rootKey)
	var err error
	if ca.root, err = x509.ParseCertificate(rootDER); err != nil {
		t.Fatal(err)
	}
	ocaDER := ca.create(t, smki.ProfileOCA, smki.TemplateRequest{CommonName: "keystore test OCA", PublicKey: &ca.ocaKey.PublicKey}, ca.root, ca.rootKey)
	if ca.oca, err = x509.ParseCertificate(ocaDER); err != nil {
		t.Fatal(err)
	}
	if ca.rootSMKI, err = smki.ParseCertificateStrict(rootDER); err != nil {
		t.Fatal(err)
	}
	if ca.ocaSMKI, err = smki.ParseCertificateStrict(ocaDER); err != nil {
		t.Fatal(err)
	}
	return ca
}

// orgDS issues a supplier DS certificate for pub; noAKI leaves out the
// authority key identifier.
func (ca *testCA) orgDS(t *testing.T, eui smki.EUI, pub *ecdsa.PublicKey, noAKI bool) []byte {
	t.Helper()
	parent := ca.oca
	if noAKI {
		cp := *ca.oca
		cp.SubjectKeyId = nil // crypto/x509 then writes no authority key identifier
		parent = &cp
	}
	return ca.create(t, smki.ProfileOrgDS, smki.TemplateRequest{CommonName: "Supplier", Role: smki.RoleSupplier, EUI: eui, PublicKey: pub}, parent, ca.ocaKey)
}

func readVector(t *testing.T) (*commands.Message, *custody.Software) {
	t.Helper()
	h, err := os.ReadFile(filepath.Join("testdata", "vector-02-ecs43-signed-precommand.hex"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(string(bytes.TrimSpace(h)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(filepath.Join("testdata", "vector-supplier-ds-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKeyPEM(kb)
	if err != nil {
		t.Fatal(err)
	}
	if m.Originator != supplier || !m.Signed() {
		t.Fatalf("vector from %s, signed %t", m.Originator, m.Signed())
	}
	return m, key
}

// TestDeviatingCertificatesVerify checks the vector's signature through a
// keystore holding the signer's key in certificates that deviate from the
// SMKI profile as real ones do: the verdict is valid, the certificate's
// path validates with the deviation as a warning, and strict validation
// refuses it.
func TestDeviatingCertificatesVerify(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t)
	m, key := readVector(t)
	tests := []struct {
		name string
		der  []byte
		want []smki.WarningCode
	}{
		{"on profile", ca.orgDS(t, supplier, key.Public().(*ecdsa.PublicKey), false), nil},
		{"no authority key id", ca.orgDS(t, supplier, key.Public().(*ecdsa.PublicKey), true), []smki.WarningCode{smki.WarnMissingAuthorityKeyID}},
		{"NULL signature parameters", certtest.Reissue(t, ca.orgDS(t, supplier, key.Public().(*ecdsa.PublicKey), false), ca.ocaKey, func(tbs [][]byte, outer *[]byte) {
			tbs[2], *outer = algECDSASHA256Null, algECDSASHA256Null
		}), []smki.WarningCode{smki.WarnSignatureAlgorithmParameters, smki.WarnSignatureAlgorithmParameters}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, supplier.String()+"-ds.pem", "CERTIFICATE", tt.der)
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			r := commands.Check(ctx, d, m, nil)
			if r.SignatureVerdict != commands.VerdictValid {
				t.Fatalf("signature %s: %s", r.SignatureVerdict, r.SignatureReason)
			}
			c, err := smki.ParseCertificate(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			var got []smki.WarningCode
			for _, w := range c.Warnings {
				got = append(got, w.Code)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings %v, want %v", c.Warnings, tt.want)
			}
			opts := smki.VerifyOptions{Roots: []*smki.Certificate{ca.rootSMKI}, Intermediates: []*smki.Certificate{ca.ocaSMKI}, At: ca.now}
			v, err := smki.VerifyPath(c, opts)
			if err != nil {
				t.Fatalf("VerifyPath: %v", err)
			}
			if len(v.Warnings) != len(tt.want) {
				t.Errorf("path warnings %v, want %v", v.Warnings, tt.want)
			}
			opts.Strict = true
			if _, err := smki.VerifyPath(c, opts); (err != nil) != (tt.want != nil) || (err != nil && !errors.Is(err, smki.ErrDeviation)) {
				t.Errorf("strict VerifyPath: %v", err)
			}
		})
	}
}

// TestUnusableKeyIsNoKey checks that a certificate file that is missing,
// corrupt or holds no usable key makes the signature check "no-key", with
// an error naming the file that wraps ErrNoKey and not
// commands.ErrSignature.
func TestUnusableKeyIsNoKey(t *testing.T) {
	ctx := context.Background()
	m, _ := readVector(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384der, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	name := supplier.String() + "-ds.pem"
	tests := []struct {
		name  string
		setup func(dir string)
		is    error
	}{
		{"missing", func(string) {}, ErrNotFound},
		{"not PEM", func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("not PEM"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrBadKey},
		{"corrupt certificate", func(dir string) { write(t, dir, name, "CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01}) }, ErrBadKey},
		{"P-384 public key", func(dir string) { write(t, dir, name, "PUBLIC KEY", p384der) }, ErrBadKey},
		{"a directory in the way", func(dir string) {
			if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
				t.Fatal(err)
			}
		}, ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(dir)
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.SignatureKey(ctx, supplier)
			if !errors.Is(err, tt.is) || !errors.Is(err, ErrNoKey) || !errors.Is(err, commands.ErrNoKey) || errors.Is(err, commands.ErrSignature) {
				t.Fatalf("SignatureKey: %v, want %v and ErrNoKey", err, tt.is)
			}
			if tt.is != ErrNotFound && !bytes.Contains([]byte(err.Error()), []byte(name)) {
				t.Errorf("error %q does not name %s", err, name)
			}
			if r := commands.Check(ctx, d, m, nil); r.SignatureVerdict != commands.VerdictNoKey {
				t.Errorf("signature %s (%s), want %s", r.SignatureVerdict, r.SignatureReason, commands.VerdictNoKey)
			}
		})
	}
}

// TestKeystoreAndReaderAgreeOnKeys feeds the same SubjectPublicKeyInfo
// variants to smki.ParsePublicKeyInfo, to the keystore as a PUBLIC KEY and
// inside a certificate, and to smki.ParseCertificate: all four accept or
// all four refuse.
func TestKeystoreAndReaderAgreeOnKeys(t *testing.T) {
	ca := newTestCA(t)
	k := newKey(t)
	good, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDer, _ := x509.MarshalPKIXPublicKey(edPub)
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := []struct {
		name   string
		spki   []byte
		accept bool
	}{
		{"P-256", good, true},
		{"P-384", p384der, false},
		{"Ed25519", edDer, false},
		{"junk after the namedCurve", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] + 2, 0x30, b[3] + 2}
			out = append(out, b[4:4+int(b[3])]...)
			out = append(out, 0x05, 0x00)
			return append(out, b[4+int(b[3]):]...)
		}), false},
		{"other curve OID", edit(func(b []byte) []byte { b[22] = 0x06; return b }), false},
		{"hybrid point", edit(func(b []byte) []byte { b[26] = 0x06; return b }), false},
		{"point off the curve", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), false},
		{"compressed point", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] - 32}
			out = append(out, b[2:23]...)
			out = append(out, 0x03, 0x22, 0x00, 0x02|b[len(b)-1]&1)
			return append(out, b[27:59]...)
		}), false},
	}
	base := ca.orgDS(t, supplier, &k.PublicKey, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := certtest.Reissue(t, base, ca.ocaKey, func(tbs [][]byte, _ *[]byte) { tbs[6] = tt.spki })
			_, e1 := smki.ParsePublicKeyInfo(tt.spki)
			_, e2 := ParsePublicPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: tt.spki}), supplier, DS)
			_, e3 := ParsePublicPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), supplier, DS)
			_, e4 := smki.ParseCertificate(cert)
			for i, err := range []error{e1, e2, e3, e4} {
				if (err == nil) != tt.accept {
					t.Errorf("reader %d: error %v, want accepted %t", i+1, err, tt.accept)
				}
			}
		})
	}
}
