package smki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/metertrust/metertrust/internal/certtest"
)

// The ecdsa-with-SHA256 AlgorithmIdentifier as the profile wants it, with
// the NULL parameters some issuers add, and ecdsa-with-SHA384.
var (
	algECDSASHA256     = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSASHA256Null = certtest.ECDSAWithSHA256NULL
	algECDSASHA384     = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
)

// reissue and nullParams make the deviating certificates (package
// certtest, shared with the keystore's, the command line's and the meter's
// tests).
var (
	reissue    = certtest.Reissue
	nullParams = certtest.NullParameters
)

// TBS element positions for reissue (a v3 certificate: version present).
const (
	tbsSignature = 2
	tbsSPKI      = 6
)

// withoutSKI returns a copy of parent whose certificate, handed to
// crypto/x509 as the parent, makes it write no authority key identifier.
func withoutSKI(parent *issued) *issued {
	x := *parent.x509
	x.SubjectKeyId = nil
	cp := *parent
	cp.x509 = &x
	return &cp
}

func codes(ws []Warning) []WarningCode {
	var out []WarningCode
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

func TestParseCertificateWarnings(t *testing.T) {
	p := newTestPKI(t)
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	dev := TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}
	dca := TemplateRequest{NotBefore: nb, CommonName: "DCA"}
	tests := []struct {
		name    string
		id      ProfileID
		req     TemplateRequest
		parent  *issued
		mutate  func(*x509.Certificate)
		edit    func(tbs [][]byte, outer *[]byte) // re-signed with the parent's key
		want    []WarningCode                     // exactly these, in order
		profile ProfileID
	}{
		{name: "no authority key id", id: ProfileOrgDS, req: org, parent: withoutSKI(p.oca),
			want: []WarningCode{WarnMissingAuthorityKeyID}, profile: ProfileOrgDS},
		{name: "device without authority key id", id: ProfileDeviceDS, req: dev, parent: withoutSKI(p.dca),
			want: []WarningCode{WarnMissingAuthorityKeyID}, profile: ProfileDeviceDS},
		{name: "NULL parameters in both places", id: ProfileOrgKA, req: org, parent: p.oca, edit: nullParams,
			want: []WarningCode{WarnSignatureAlgorithmParameters, WarnSignatureAlgorithmParameters}, profile: ProfileOrgKA},
		{name: "NULL parameters in the TBS only", id: ProfileDeviceKA, req: dev, parent: p.dca,
			edit: func(tbs [][]byte, _ *[]byte) { tbs[tbsSignature] = algECDSASHA256Null },
			want: []WarningCode{WarnSignatureAlgorithmParameters}, profile: ProfileDeviceKA},
		{name: "OID parameters on the outer algorithm", id: ProfileOrgDS, req: org, parent: p.oca,
			edit: func(_ [][]byte, outer *[]byte) {
				*outer = []byte{0x30, 0x0f, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x06, 0x03, 0x2a, 0x03, 0x04}
			},
			want: []WarningCode{WarnSignatureAlgorithmParameters}, profile: ProfileOrgDS},
		{name: "unknown role 2A", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject, _ = NameSpec{CommonName: "Acme", Role: 0x2A, HasRole: true, EUI: orgEUI, HasEUI: true}.MarshalDER()
		}, want: []WarningCode{WarnUnknownRole}, profile: ProfileOrgDS},
		{name: "20-byte key identifiers", id: ProfileOrgDS, req: org, parent: func() *issued {
			cp := withoutSKI(p.oca)
			cp.x509.SubjectKeyId = bytes.Repeat([]byte{7}, 20)
			return cp
		}(), mutate: func(c *x509.Certificate) { c.SubjectKeyId = bytes.Repeat([]byte{1}, 20) },
			want: []WarningCode{WarnKeyIDLength, WarnKeyIDLength}, profile: ProfileOrgDS},
		{name: "wrong SKI", id: ProfileDCA, req: dca, parent: p.root, mutate: func(c *x509.Certificate) {
			c.SubjectKeyId = []byte{0x40, 1, 2, 3, 4, 5, 6, 7}
		}, want: []WarningCode{WarnSubjectKeyIDMethod}, profile: ProfileDCA},
		{name: "non-critical key usage", id: ProfileOrgKA, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			kuv, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x08}, BitLength: 5})
			c.KeyUsage = 0
			c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: OIDExtKeyUsage, Value: kuv})
		}, want: []WarningCode{WarnKeyUsageNotCritical}, profile: ProfileOrgKA},
		{name: "non-critical policies", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.ExtraExtensions[0].Critical = false
		}, want: []WarningCode{WarnPoliciesNotCritical}, profile: ProfileOrgDS},
		{name: "no policies", id: ProfileOrgKA, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.ExtraExtensions = nil
		}, want: []WarningCode{WarnMissingPolicies}, profile: ProfileOrgKA},
		{name: "digitalSignature and contentCommitment", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.KeyUsage |= x509.KeyUsageContentCommitment
		}, want: []WarningCode{WarnKeyUsage}, profile: ProfileOrgDS},
		{name: "two key usages", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
		}, want: []WarningCode{WarnNoProfile}},
		{name: "DCA with OU 02", id: ProfileDCA, req: dca, parent: p.root, mutate: func(c *x509.Certificate) {
			c.RawSubject, _ = NameSpec{CommonName: "DCA", Role: RoleSupplier, HasRole: true}.MarshalDER()
		}, want: []WarningCode{WarnNoProfile}},
		{name: "device with expiry", id: ProfileDeviceDS, req: dev, parent: p.dca, mutate: func(c *x509.Certificate) {
			c.NotAfter = nb.Add(24 * time.Hour)
		}, want: []WarningCode{WarnValidityPeriod}, profile: ProfileDeviceDS},
		{name: "validity reversed", id: ProfileOrgKA, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.NotAfter = nb.Add(-time.Hour)
		}, want: []WarningCode{WarnValidityOrder}, profile: ProfileOrgKA},
		{name: "device SAN not critical", id: ProfileDeviceKA, req: dev, parent: p.dca, mutate: func(c *x509.Certificate) {
			c.ExtraExtensions[1].Critical = false
		}, want: []WarningCode{WarnExtensionCriticality}, profile: ProfileDeviceKA},
		{name: "device without SAN", id: ProfileDeviceKA, req: dev, parent: p.dca, mutate: func(c *x509.Certificate) {
			c.ExtraExtensions = c.ExtraExtensions[:1]
		}, want: []WarningCode{WarnMissingExtension, WarnHardwareModuleName}, profile: ProfileDeviceKA},
		{name: "device with extra DNS name", id: ProfileDeviceKA, req: dev, parent: p.dca, mutate: func(c *x509.Certificate) {
			v, _ := asn1.Marshal([]asn1.RawValue{{Class: 2, Tag: 2, Bytes: []byte("meter.example")}})
			c.ExtraExtensions = append(c.ExtraExtensions[:1], pkix.Extension{Id: OIDExtSubjectAltName, Critical: true, Value: v})
		}, want: []WarningCode{WarnHardwareModuleName}, profile: ProfileDeviceKA},
		{name: "org role root", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject, _ = NameSpec{Role: RoleRoot, HasRole: true, EUI: orgEUI, HasEUI: true}.MarshalDER()
		}, want: []WarningCode{WarnRoleNotAllowed}, profile: ProfileOrgDS},
		{name: "org without EUI", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject, _ = NameSpec{CommonName: "Acme", Role: RoleSupplier, HasRole: true}.MarshalDER()
		}, want: []WarningCode{WarnSubjectForm}, profile: ProfileOrgDS},
		{name: "org EUI as string", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject = nil
			c.Subject = pkix.Name{OrganizationalUnit: []string{"02"}, ExtraNames: []pkix.AttributeTypeAndValue{{Type: OIDX500UniqueIdentifier, Value: "90B3D51F30010000"}}}
		}, want: []WarningCode{WarnSubjectForm}, profile: ProfileOrgDS},
		{name: "org OU a name", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject = nil
			c.Subject = pkix.Name{OrganizationalUnit: []string{"supplier"}, ExtraNames: []pkix.AttributeTypeAndValue{{Type: OIDX500UniqueIdentifier, Value: asn1.BitString{Bytes: orgEUI[:], BitLength: 64}}}}
		}, want: []WarningCode{WarnSubjectForm}, profile: ProfileOrgDS},
		{name: "org with country", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.RawSubject = nil
			c.Subject = pkix.Name{Country: []string{"GB"}, OrganizationalUnit: []string{"02"}, ExtraNames: []pkix.AttributeTypeAndValue{{Type: OIDX500UniqueIdentifier, Value: asn1.BitString{Bytes: orgEUI[:], BitLength: 64}}}}
		}, want: []WarningCode{WarnSubjectForm}, profile: ProfileOrgDS},
		{name: "OCA pathLen 1", id: ProfileOCA, req: TemplateRequest{NotBefore: nb, CommonName: "OCA"}, parent: p.root, mutate: func(c *x509.Certificate) {
			c.MaxPathLen, c.MaxPathLenZero = 1, false
		}, want: []WarningCode{WarnBasicConstraints}, profile: ProfileOCA},
		{name: "unknown critical extension", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}})
		}, want: []WarningCode{WarnUnknownCriticalExtension}, profile: ProfileOrgDS},
		{name: "SAN on an organisation", id: ProfileOrgDS, req: org, parent: p.oca, mutate: func(c *x509.Certificate) {
			c.DNSNames = []string{"acme.example"}
		}, want: []WarningCode{WarnForbiddenExtension}, profile: ProfileOrgDS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, _ := issueDER(t, tt.id, tt.req, tt.parent, tt.mutate)
			if tt.edit != nil {
				der = reissue(t, der, tt.parent.key, tt.edit)
			}
			c, err := ParseCertificate(der)
			if err != nil {
				t.Fatalf("ParseCertificate: %v", err)
			}
			if got := codes(c.Warnings); !slices.Equal(got, tt.want) {
				t.Errorf("warnings %v, want %v", c.Warnings, tt.want)
			}
			if c.Profile != tt.profile {
				t.Errorf("profile %q, want %q", c.Profile, tt.profile)
			}
			if (c.Kind == KindUnknown) != (tt.profile == "") {
				t.Errorf("kind %s for profile %q", c.Kind, tt.profile)
			}
			for _, w := range c.Warnings {
				if w.Message == "" {
					t.Errorf("warning %s without a message", w.Code)
				}
			}
			_, err = ParseCertificateStrict(der)
			var pe *ProfileError
			if !errors.Is(err, ErrDeviation) || !errors.As(err, &pe) || pe.Code != tt.want[0] {
				t.Errorf("ParseCertificateStrict: %v, want ErrDeviation with code %s", err, tt.want[0])
			}
			if p := Profiles[c.Profile]; p != nil {
				if err := p.Check(c); !errors.As(err, &pe) || pe.Code != tt.want[0] {
					t.Errorf("Check: %v, want code %s", err, tt.want[0])
				}
			}
		})
	}
}

func TestUnknownRoleIsPrintedByNumber(t *testing.T) {
	p := newTestPKI(t)
	org := TemplateRequest{NotBefore: p.now.Add(-time.Hour), CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	der, _ := issueDER(t, ProfileOrgDS, org, p.oca, func(c *x509.Certificate) {
		c.RawSubject, _ = NameSpec{CommonName: "Acme", Role: 0x2A, HasRole: true, EUI: orgEUI, HasEUI: true}.MarshalDER()
	})
	c, err := ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Subject.HasRole || c.Role != 0x2A || c.Role.Valid() {
		t.Fatalf("role %d (has %t)", c.Role, c.Subject.HasRole)
	}
	s := c.Summary()
	if s.Role != "42" || s.RoleCode == nil || *s.RoleCode != 42 {
		t.Errorf("summary role %q code %v", s.Role, s.RoleCode)
	}
	if len(s.Warnings) != 1 || s.Warnings[0].Message != "OU 2A: role code 42 is not a known Remote Party Role" {
		t.Errorf("summary warnings %v", s.Warnings)
	}
}

func TestParseCertificateRefusals(t *testing.T) {
	p := newTestPKI(t)
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	good, _ := issueDER(t, ProfileOrgDS, org, p.oca, nil)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// foreignKey issues org with a public key crypto/x509 accepts and SMKI
	// does not.
	foreignKey := func(pub any) []byte {
		tmpl, err := Profiles[ProfileOrgDS].Template(TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI,
			SerialNumber: bigOne(), PublicKey: &p.oca.key.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SubjectKeyId = []byte{0x40, 1, 2, 3, 4, 5, 6, 7}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.oca.x509, pub, p.oca.key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	spki := func(edit func(s []byte) []byte) []byte {
		return reissue(t, good, p.oca.key, func(tbs [][]byte, _ *[]byte) { tbs[tbsSPKI] = edit(slices.Clone(tbs[tbsSPKI])) })
	}
	tests := []struct {
		name string
		der  []byte
		rule string // a *ProfileError with this rule; empty: want is the sentinel
		want error
	}{
		{"ecdsa-with-SHA384", reissue(t, good, p.oca.key, func(tbs [][]byte, outer *[]byte) {
			tbs[tbsSignature], *outer = algECDSASHA384, algECDSASHA384
		}), "signatureAlgorithm", ErrProfile},
		{"algorithm fields disagree", reissue(t, good, p.oca.key, func(_ [][]byte, outer *[]byte) { *outer = algECDSASHA384 }),
			"signatureAlgorithm.match", ErrProfile},
		{"repeated extension", reissue(t, good, p.oca.key, func(tbs [][]byte, _ *[]byte) {
			// Extensions [3] { SEQUENCE { ext, ext... } }: repeat the first.
			in := cryptobyte.String(tbs[len(tbs)-1])
			var exts, list, first cryptobyte.String
			if !in.ReadASN1(&exts, cbasn1.Tag(3).Constructed().ContextSpecific()) || !exts.ReadASN1(&list, cbasn1.SEQUENCE) ||
				!list.ReadASN1Element(&first, cbasn1.SEQUENCE) {
				t.Fatal("extensions")
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddBytes(first)
					b.AddBytes(first)
					b.AddBytes(list)
				})
			})
			tbs[len(tbs)-1] = b.BytesOrPanic()
		}), "extensions.duplicate", ErrProfile},
		{"two holders named", func() []byte {
			der, _ := issueDER(t, ProfileDeviceDS, TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}, p.dca,
				func(c *x509.Certificate) { c.RawSubject, _ = NameSpec{EUI: orgEUI, HasEUI: true}.MarshalDER() })
			return der
		}(), "", ErrProfile},
		{"P-384 key", foreignKey(&p384.PublicKey), "", ErrPublicKey},
		{"Ed25519 key", foreignKey(edPub), "", ErrPublicKey},
		{"compressed point", spki(func(s []byte) []byte {
			pt := s[len(s)-65:]
			x := slices.Clone(pt[1:33])
			head := slices.Clone(s[:len(s)-65-3])
			head[1] -= 32 // SEQUENCE length
			return append(append(head, 0x03, 0x22, 0x00, 0x02|pt[64]&1), x...)
		}), "", ErrPublicKey},
		{"point off the curve", spki(func(s []byte) []byte { s[len(s)-1] ^= 1; return s }), "", ErrPublicKey},
		{"NULL and junk after the signature algorithm", reissue(t, good, p.oca.key, func(tbs [][]byte, _ *[]byte) {
			tbs[tbsSignature] = []byte{0x30, 0x0e, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00, 0x05, 0x00}
		}), "", ErrMalformed},
		{"junk after the namedCurve", spki(func(s []byte) []byte {
			// SEQUENCE { SEQUENCE { ecPublicKey, prime256v1, NULL }, BIT STRING }
			out := []byte{0x30, s[1] + 2, 0x30, s[3] + 2}
			out = append(out, s[4:4+int(s[3])]...)
			out = append(out, 0x05, 0x00)
			return append(out, s[4+int(s[3]):]...)
		}), "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCertificate(tt.der)
			if err == nil {
				t.Fatalf("accepted, with warnings %v", c.Warnings)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			var pe *ProfileError
			if tt.rule != "" && (!errors.As(err, &pe) || pe.Rule != tt.rule || pe.Code != "") {
				t.Errorf("error %v, want rule %s", err, tt.rule)
			}
			if errors.Is(err, ErrDeviation) {
				t.Errorf("refusal %v wraps ErrDeviation", err)
			}
		})
	}
}

func TestParsePublicKeyInfo(t *testing.T) {
	k := newKey(t)
	good, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDer, _ := x509.MarshalPKIXPublicKey(edPub)
	for _, tt := range spkiCases(good, p384der, edDer) {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := ParsePublicKeyInfo(tt.der)
			if tt.want == nil {
				if err != nil || !pub.Equal(&k.PublicKey) {
					t.Fatalf("ParsePublicKeyInfo: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || pub != nil {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

type spkiCase struct {
	name string
	der  []byte
	want error // nil: accepted
}

// spkiCases derives SubjectPublicKeyInfo variants from good (a P-256 key
// as crypto/x509 writes it: 30 59 30 13 06 07 <ecPublicKey> 06 08
// <prime256v1> 03 42 00 04 X Y).
func spkiCases(good, p384, ed25519 []byte) []spkiCase {
	edit := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	return []spkiCase{
		{"P-256", good, nil},
		{"P-384", p384, ErrPublicKey},
		{"Ed25519", ed25519, ErrPublicKey},
		{"trailing byte", append(slices.Clone(good), 0), ErrMalformed},
		{"junk after the namedCurve", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] + 2, 0x30, b[3] + 2}
			out = append(out, b[4:4+int(b[3])]...)
			out = append(out, 0x05, 0x00)
			return append(out, b[4+int(b[3]):]...)
		}), ErrMalformed},
		{"no curve", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] - 10, 0x30, b[3] - 10}
			out = append(out, b[4:13]...)
			return append(out, b[23:]...)
		}), ErrPublicKey},
		{"NULL instead of the curve", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] - 8, 0x30, b[3] - 8}
			out = append(out, b[4:13]...)
			out = append(out, 0x05, 0x00)
			return append(out, b[23:]...)
		}), ErrPublicKey},
		{"other curve OID", edit(func(b []byte) []byte { b[22] = 0x06; return b }), ErrPublicKey},
		{"hybrid point", edit(func(b []byte) []byte { b[26] = 0x06; return b }), ErrPublicKey},
		{"point off the curve", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrPublicKey},
		{"unused bits", edit(func(b []byte) []byte { b[25] = 1; return b }), ErrMalformed},
		{"compressed point", edit(func(b []byte) []byte {
			out := []byte{0x30, b[1] - 32}
			out = append(out, b[2:23]...)
			out = append(out, 0x03, 0x22, 0x00, 0x02|b[len(b)-1]&1)
			return append(out, b[27:59]...)
		}), ErrPublicKey},
		{"empty", nil, ErrMalformed},
	}
}

// TestVerifyDeviating validates a path through each deviating certificate:
// accepted with the deviations as warnings, refused in strict mode.
func TestVerifyDeviating(t *testing.T) {
	p := newTestPKI(t)
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	dev := TemplateRequest{NotBefore: nb, EUI: devEUI, HWType: OIDHWTypeReferenceMeter}
	read := func(der []byte) *Certificate {
		c, err := ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	noAKI := issue(t, ProfileOrgDS, org, withoutSKI(p.oca), nil)
	devNoAKI := issue(t, ProfileDeviceDS, dev, withoutSKI(p.dca), nil)
	nullDER, _ := issueDER(t, ProfileOrgKA, org, p.oca, nil)
	null := read(reissue(t, nullDER, p.oca.key, nullParams))
	role2A := issue(t, ProfileOrgDS, org, p.oca, func(c *x509.Certificate) {
		c.RawSubject, _ = NameSpec{CommonName: "Acme", Role: 0x2A, HasRole: true, EUI: orgEUI, HasEUI: true}.MarshalDER()
	})
	ocaNullDER := reissue(t, p.oca.der, p.root.key, nullParams)
	ocaNull := read(ocaNullDER)
	tests := []struct {
		name  string
		leaf  *Certificate
		inter []*Certificate
		want  []PathWarning
	}{
		{"organisation without AKI", noAKI.cert, nil, []PathWarning{{Index: 0, Warning: Warning{Code: WarnMissingAuthorityKeyID}}}},
		{"device without AKI", devNoAKI.cert, nil, []PathWarning{{Index: 0, Warning: Warning{Code: WarnMissingAuthorityKeyID}}}},
		{"NULL parameters", null, nil, []PathWarning{{Index: 0, Warning: Warning{Code: WarnSignatureAlgorithmParameters}}, {Index: 0, Warning: Warning{Code: WarnSignatureAlgorithmParameters}}}},
		{"role 2A", role2A.cert, nil, []PathWarning{{Index: 0, Warning: Warning{Code: WarnUnknownRole}}}},
		{"OCA with NULL parameters", p.orgDS.cert, []*Certificate{ocaNull}, []PathWarning{{Index: 1, Warning: Warning{Code: WarnSignatureAlgorithmParameters}}, {Index: 1, Warning: Warning{Code: WarnSignatureAlgorithmParameters}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := p.opts()
			if tt.inter != nil {
				opts.Intermediates = tt.inter
			}
			v, err := VerifyPath(tt.leaf, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Path) != 3 {
				t.Errorf("path of %d", len(v.Path))
			}
			if len(v.Warnings) != len(tt.want) {
				t.Fatalf("warnings %+v, want %+v", v.Warnings, tt.want)
			}
			for i, w := range v.Warnings {
				if w.Index != tt.want[i].Index || w.Code != tt.want[i].Code || w.Certificate != describe(v.Path[w.Index]) {
					t.Errorf("warning %d: %+v, want %+v", i, w, tt.want[i])
				}
			}
			opts.Strict = true
			_, err = VerifyPath(tt.leaf, opts)
			var pe *ProfileError
			if !errors.Is(err, ErrDeviation) || !errors.As(err, &pe) || pe.Code != tt.want[0].Code {
				t.Errorf("strict: %v, want ErrDeviation with %s", err, tt.want[0].Code)
			}
		})
	}
	if _, err := VerifyPath(p.orgDS.cert, VerifyOptions{Roots: []*Certificate{p.root.cert}, Intermediates: []*Certificate{p.oca.cert}, At: p.now, Strict: true}); err != nil {
		t.Errorf("strict on a path without deviations: %v", err)
	}
}

// TestVerifyChainsByNameWithoutAKI checks that a certificate without an
// authority key identifier finds, among two CAs of the same name, the one
// whose key signed it, and that a forged one fails on its signature.
func TestVerifyChainsByNameWithoutAKI(t *testing.T) {
	p := newTestPKI(t)
	nb := p.now.Add(-time.Hour)
	org := TemplateRequest{NotBefore: nb, CommonName: "Acme", Role: RoleSupplier, EUI: orgEUI}
	twin := issue(t, ProfileOCA, TemplateRequest{NotBefore: nb.Add(-time.Hour), CommonName: "metertrust test OCA"}, p.root, nil)
	leaf := issue(t, ProfileOrgDS, org, withoutSKI(p.oca), nil)
	fromTwin := issue(t, ProfileOrgDS, org, withoutSKI(twin), nil)
	opts := p.opts()
	opts.Intermediates = []*Certificate{twin.cert, p.oca.cert}
	for _, c := range []struct {
		leaf *issued
		ca   *issued
	}{{leaf, p.oca}, {fromTwin, twin}} {
		path, err := Verify(c.leaf.cert, opts)
		if err != nil {
			t.Fatal(err)
		}
		if path[1] != c.ca.cert {
			t.Errorf("issuer %X, want %X", path[1].SerialNumber, c.ca.cert.SerialNumber)
		}
	}
	forged := *leaf.cert
	forged.Signature = fromTwin.cert.Signature
	if _, err := Verify(&forged, opts); !errors.Is(err, ErrSignature) {
		t.Errorf("forged: %v, want ErrSignature", err)
	}
	// A certificate of no profile cannot be placed on a path.
	both, _ := issueDER(t, ProfileOrgDS, org, p.oca, func(c *x509.Certificate) {
		c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	})
	c, err := ParseCertificate(both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(c, p.opts()); !errors.Is(err, ErrPathShape) {
		t.Errorf("no profile: %v, want ErrPathShape", err)
	}
}
