package smki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"testing"
)

func TestCSRRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    CSRTemplate
		profile ProfileID
		subject string
	}{
		{"org DS", CSRTemplate{Kind: KindOrganisation, CommonName: "Acme Energy", Role: RoleSupplier, EUI: orgEUI, KeyUsage: x509.KeyUsageDigitalSignature}, ProfileOrgDS, "CN=Acme Energy, OU=02, x500UniqueIdentifier=90B3D51F30010000"},
		{"org KA no CN", CSRTemplate{Kind: KindOrganisation, Role: RoleAccessControlBroker, EUI: orgEUI, KeyUsage: x509.KeyUsageKeyAgreement}, ProfileOrgKA, "OU=04, x500UniqueIdentifier=90B3D51F30010000"},
		{"device DS", CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageDigitalSignature, HWType: OIDHWTypeReferenceMeter}, ProfileDeviceDS, ""},
		{"device KA", CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageKeyAgreement, HWType: OIDHWTypeReferenceMeter}, ProfileDeviceKA, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey(t)
			der, err := CreateCSR(rand.Reader, &tt.tmpl, key)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ParseCSR(der)
			if err != nil {
				t.Fatal(err)
			}
			if r.Profile() != tt.profile || r.Kind != tt.tmpl.Kind || r.EUI != tt.tmpl.EUI || r.KeyUsage != tt.tmpl.KeyUsage {
				t.Errorf("got %s %s %s %s", r.Profile(), r.Kind, r.EUI, KeyUsageString(r.KeyUsage))
			}
			if r.Subject.String() != tt.subject || r.CommonName != tt.tmpl.CommonName {
				t.Errorf("subject %q, want %q", r.Subject.String(), tt.subject)
			}
			if tt.tmpl.Kind == KindOrganisation && r.Role != tt.tmpl.Role {
				t.Errorf("role %s, want %s", r.Role, tt.tmpl.Role)
			}
			if tt.tmpl.Kind == KindDevice && (!r.HWType.Equal(OIDHWTypeReferenceMeter) || !bytes.Equal(r.HWSerial, devEUI[:])) {
				t.Errorf("hwType %s serial %X", r.HWType, r.HWSerial)
			}
			if !r.PublicKey.Equal(&key.PublicKey) {
				t.Error("public key differs")
			}
			for _, e := range r.Extensions {
				if !e.Critical {
					t.Errorf("requested %s not critical", e.Name())
				}
			}
			// crypto/x509 agrees on the signature where it can read the request.
			if xr, err := x509.ParseCertificateRequest(der); err == nil {
				if err := xr.CheckSignature(); err != nil {
					t.Errorf("crypto/x509 rejects the signature: %v", err)
				}
			} else if tt.tmpl.Kind == KindDevice {
				t.Errorf("crypto/x509 cannot read a device CSR: %v", err)
			}
		})
	}
}

// TestParseCSRFromCryptoX509 reads a device request written by crypto/x509,
// as a device or another tool might produce it.
func TestParseCSRFromCryptoX509(t *testing.T) {
	key := newKey(t)
	san, err := HardwareModuleNameExtension(OIDHWTypeReferenceMeter, devEUI)
	if err != nil {
		t.Fatal(err)
	}
	ku, err := keyUsageExtension(x509.KeyUsageKeyAgreement)
	if err != nil {
		t.Fatal(err)
	}
	var kuExt pkix.Extension
	kuExt.Id, kuExt.Critical = OIDExtKeyUsage, true
	kuExt.Value = ku[len(ku)-4:] // 03 02 03 08
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject: []byte{0x30, 0}, ExtraExtensions: []pkix.Extension{kuExt, san},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile() != ProfileDeviceKA || r.EUI != devEUI {
		t.Errorf("got %s %s", r.Profile(), r.EUI)
	}
}

func TestCSRRefused(t *testing.T) {
	key := newKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageKeyAgreement, HWType: OIDHWTypeReferenceMeter}
	devDER, err := CreateCSR(rand.Reader, &good, key)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte{}, devDER...)
	tampered[len(tampered)-3] ^= 1
	x509Req := func(t *testing.T, tmpl *x509.CertificateRequest, k any) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	tests := []struct {
		name string
		der  func(t *testing.T) []byte
		want error
	}{
		{"tampered signature", func(*testing.T) []byte { return tampered }, ErrCSR},
		{"truncated", func(*testing.T) []byte { return devDER[:len(devDER)-2] }, ErrMalformed},
		{"garbage", func(*testing.T) []byte { return []byte{0x30, 0x03, 0x02, 0x01, 0x00} }, ErrMalformed},
		{"P-384 key", func(t *testing.T) []byte {
			return x509Req(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, p384)
		}, ErrCSR},
		{"no key usage", func(t *testing.T) []byte {
			san, _ := HardwareModuleNameExtension(OIDHWTypeReferenceMeter, devEUI)
			return x509Req(t, &x509.CertificateRequest{RawSubject: []byte{0x30, 0}, ExtraExtensions: []pkix.Extension{san}}, key)
		}, ErrCSR},
		{"device without SAN", func(t *testing.T) []byte {
			ku, _ := keyUsageExtension(x509.KeyUsageDigitalSignature)
			return x509Req(t, &x509.CertificateRequest{RawSubject: []byte{0x30, 0}, ExtraExtensions: []pkix.Extension{{Id: OIDExtKeyUsage, Critical: true, Value: ku[len(ku)-4:]}}}, key)
		}, ErrCSR},
		{"org with unknown OU", func(t *testing.T) []byte {
			ku, _ := keyUsageExtension(x509.KeyUsageDigitalSignature)
			return x509Req(t, &x509.CertificateRequest{Subject: pkix.Name{OrganizationalUnit: []string{"supplier"}}, ExtraExtensions: []pkix.Extension{{Id: OIDExtKeyUsage, Critical: true, Value: ku[len(ku)-4:]}}}, key)
		}, ErrProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSR(tt.der(t))
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
	bad := []struct {
		name string
		tmpl CSRTemplate
		p384 bool
	}{
		{"both usages", CSRTemplate{Kind: KindOrganisation, Role: RoleSupplier, EUI: orgEUI, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement}, false},
		{"root role", CSRTemplate{Kind: KindOrganisation, Role: RoleRoot, EUI: orgEUI, KeyUsage: x509.KeyUsageDigitalSignature}, false},
		{"no EUI", CSRTemplate{Kind: KindDevice, KeyUsage: x509.KeyUsageDigitalSignature, HWType: OIDHWTypeReferenceMeter}, false},
		{"device no hwType", CSRTemplate{Kind: KindDevice, EUI: devEUI, KeyUsage: x509.KeyUsageDigitalSignature}, false},
		{"CA kind", CSRTemplate{Kind: KindOCA, EUI: devEUI, KeyUsage: x509.KeyUsageDigitalSignature}, false},
		{"P-384", good, true},
	}
	for _, tt := range bad {
		t.Run("create "+tt.name, func(t *testing.T) {
			var err error
			if tt.p384 {
				_, err = CreateCSR(rand.Reader, &tt.tmpl, p384)
			} else {
				_, err = CreateCSR(rand.Reader, &tt.tmpl, key)
			}
			if !errors.Is(err, ErrCSR) {
				t.Errorf("error %v, want ErrCSR", err)
			}
		})
	}
}

func TestParseCSRs(t *testing.T) {
	key := newKey(t)
	der, err := CreateCSR(rand.Reader, &CSRTemplate{Kind: KindOrganisation, Role: RoleSupplier, EUI: orgEUI, KeyUsage: x509.KeyUsageKeyAgreement}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{der, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})} {
		rs, err := ParseCSRs(in)
		if err != nil || len(rs) != 1 || rs[0].Profile() != ProfileOrgKA {
			t.Errorf("ParseCSRs: %v %v", rs, err)
		}
	}
	if _, err := ParseCSRs(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err == nil {
		t.Error("read a CERTIFICATE block as a CSR")
	}
}
