package smki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/internal/testenv"
)

func TestParseCertificateEveryProfile(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		id       ProfileID
		want     ProfileID // what the reader matches
		kind     Kind
		role     Role
		eui      EUI
		usage    x509.KeyUsage
		isCA     bool
		pathLen  int
		subject  string
		x509Read bool
	}{
		{ProfileRoot, ProfileRoot, KindRoot, RoleRoot, EUI{}, x509.KeyUsageCertSign | x509.KeyUsageCRLSign, true, -1, "CN=metertrust test root, OU=00", true},
		{ProfileOCA, ProfileOCA, KindOCA, RoleIssuingAuthority, EUI{}, x509.KeyUsageCertSign | x509.KeyUsageCRLSign, true, 0, "CN=metertrust test OCA, OU=07", true},
		{ProfileDCA, ProfileDCA, KindDCA, 0, EUI{}, x509.KeyUsageCertSign | x509.KeyUsageCRLSign, true, 0, "CN=metertrust test DCA 0001", true},
		{ProfileOrgDS, ProfileOrgDS, KindOrganisation, RoleSupplier, orgEUI, x509.KeyUsageDigitalSignature, false, -1, "CN=Acme Energy, OU=02, x500UniqueIdentifier=90B3D51F30010000", false},
		{ProfileOrgKA, ProfileOrgKA, KindOrganisation, RoleSupplier, orgEUI, x509.KeyUsageKeyAgreement, false, -1, "CN=Acme Energy, OU=02, x500UniqueIdentifier=90B3D51F30010000", false},
		{ProfileOrgPrepaymentKA, ProfileOrgKA, KindOrganisation, RoleSupplier, orgEUI, x509.KeyUsageKeyAgreement, false, -1, "CN=Acme Energy, OU=02, x500UniqueIdentifier=90B3D51F30010000", false},
		{ProfileDeviceDS, ProfileDeviceDS, KindDevice, 0, devEUI, x509.KeyUsageDigitalSignature, false, -1, "", true},
		{ProfileDeviceKA, ProfileDeviceKA, KindDevice, 0, devEUI, x509.KeyUsageKeyAgreement, false, -1, "", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.id), func(t *testing.T) {
			is := p.all()[tt.id]
			c, err := ParseCertificate(is.der)
			if err != nil {
				t.Fatal(err)
			}
			if c.Profile != tt.want || c.Kind != tt.kind {
				t.Errorf("profile %s kind %s, want %s %s", c.Profile, c.Kind, tt.want, tt.kind)
			}
			if err := Profiles[tt.id].Check(c); err != nil {
				t.Errorf("Check against %s: %v", tt.id, err)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings on a certificate our CA made: %v", c.Warnings)
			}
			if _, err := ParseCertificateStrict(is.der); err != nil {
				t.Errorf("ParseCertificateStrict: %v", err)
			}
			if c.Role != tt.role || c.EUI != tt.eui {
				t.Errorf("role %s EUI %s, want %s %s", c.Role, c.EUI, tt.role, tt.eui)
			}
			if c.KeyUsage != tt.usage || c.IsCA != tt.isCA || c.MaxPathLen != tt.pathLen {
				t.Errorf("usage %s CA %t pathLen %d, want %s %t %d", KeyUsageString(c.KeyUsage), c.IsCA, c.MaxPathLen, KeyUsageString(tt.usage), tt.isCA, tt.pathLen)
			}
			if got := c.Subject.String(); got != tt.subject {
				t.Errorf("subject %q, want %q", got, tt.subject)
			}
			if !bytes.Equal(c.SubjectKeyID, KeyID(c.PublicKey)) || len(c.SubjectKeyID) != 8 || c.SubjectKeyID[0]>>4 != 4 {
				t.Errorf("SKI %X, want method-2 %X", c.SubjectKeyID, KeyID(c.PublicKey))
			}
			if tt.kind != KindRoot && len(c.AuthorityKeyID) != 8 {
				t.Errorf("AKI %X: want 8 bytes", c.AuthorityKeyID)
			}
			if len(c.Policies) == 0 {
				t.Error("no policies")
			}
			if tt.kind == KindDevice {
				if !c.HWType.Equal(OIDHWTypeReferenceMeter) || !bytes.Equal(c.HWSerial, devEUI[:]) || !c.NotAfter.Equal(NeverExpires) {
					t.Errorf("hwType %s serial %X notAfter %s", c.HWType, c.HWSerial, c.NotAfter)
				}
			}
			if !bytes.Equal(c.Raw, is.der) || !bytes.Contains(c.Raw, c.RawTBS) || !bytes.Contains(c.RawTBS, c.RawSubject) {
				t.Error("raw slices do not match the input")
			}
			_, xerr := x509.ParseCertificate(is.der)
			if (xerr == nil) != tt.x509Read {
				t.Errorf("crypto/x509.ParseCertificate error %v; want readable=%t", xerr, tt.x509Read)
			}
		})
	}
}

// TestOrganisationRefusedByCryptoX509 pins the reason this reader exists.
func TestOrganisationRefusedByCryptoX509(t *testing.T) {
	p := newTestPKI(t)
	if _, err := x509.ParseCertificate(p.orgDS.der); err == nil {
		t.Fatal("crypto/x509 now reads organisation certificates; the reader may be simplified")
	}
	c, err := ParseCertificate(p.orgDS.der)
	if err != nil {
		t.Fatal(err)
	}
	if c.EUI != orgEUI || c.Role != RoleSupplier {
		t.Errorf("EUI %s role %s", c.EUI, c.Role)
	}
	x, err := x509.ParseCertificate(p.devDS.der)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.UnhandledCriticalExtensions) != 1 || !x.UnhandledCriticalExtensions[0].Equal(OIDExtSubjectAltName) {
		t.Errorf("crypto/x509 unhandled critical extensions %v, want the SAN", x.UnhandledCriticalExtensions)
	}
}

func TestOpenSSLShowsOrganisationFields(t *testing.T) {
	bin := testenv.LookPath(t, "openssl")
	p := newTestPKI(t)
	cmd := exec.Command(bin, "x509", "-inform", "DER", "-noout", "-text", "-nameopt", "RFC2253")
	cmd.Stdin = bytes.NewReader(p.orgDS.der)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"OU=02", "x500UniqueIdentifier=#03090090B3D51F30010000", "Digital Signature", "Key Usage: critical", "Policies: critical"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, text)
		}
	}
}

func TestKeyID(t *testing.T) {
	p := newTestPKI(t)
	for id, is := range p.all() {
		t.Run(string(id), func(t *testing.T) {
			id := KeyID(is.cert.PublicKey)
			if len(id) != 8 || id[0]&0xf0 != 0x40 {
				t.Fatalf("KeyID %X: want 8 bytes starting with type 0100", id)
			}
			if !bytes.Equal(id, is.cert.SubjectKeyID) {
				t.Errorf("KeyID %X, certificate SKI %X", id, is.cert.SubjectKeyID)
			}
		})
	}
	if KeyID(nil) != nil {
		t.Error("KeyID(nil) not nil")
	}
}

// TestKeyIDVector checks the method-2 computation against a value worked
// out by hand with openssl: the GBCS 18.4 supplier DS public key.
func TestKeyIDVector(t *testing.T) {
	pt := mustHex(t, "04"+"76628E1C84EF7935548AE5D62C7BB3AD28964CF794F0387A697EEC19CDD98F46"+
		"0A4D5E19087EF7216ED89C29831A6EE838C8DE88EF34F11D3F41F36D80B2A5D5")
	got := keyIDFromPoint(pt)
	// sha1(point) computed with `openssl dgst -sha1`; see testdata/README.md.
	want := mustHex(t, keyIDVector)
	if !bytes.Equal(got, want) {
		t.Errorf("keyID %X, want %X", got, want)
	}
}

func TestCheckWrongProfile(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		cert *issued
		id   ProfileID
		code WarningCode
	}{
		{p.devDS, ProfileDeviceKA, WarnKeyUsage},
		{p.orgKA, ProfileOrgDS, WarnKeyUsage},
		{p.orgDS, ProfileDeviceDS, WarnValidityPeriod},
		{p.oca, ProfileDCA, WarnSubjectForm},
		{p.dca, ProfileRoot, WarnSubjectForm},
	}
	for _, tt := range tests {
		t.Run(string(tt.cert.cert.Profile)+"-as-"+string(tt.id), func(t *testing.T) {
			err := Profiles[tt.id].Check(tt.cert.cert)
			var pe *ProfileError
			if !errors.As(err, &pe) || pe.Code != tt.code || pe.Rule != string(tt.code) || pe.Profile != tt.id {
				t.Errorf("Check: %v, want code %s of %s", err, tt.code, tt.id)
			}
			if !errors.Is(err, ErrDeviation) || !errors.Is(err, ErrProfile) {
				t.Errorf("Check: %v does not wrap ErrDeviation and ErrProfile", err)
			}
			ws, err := Profiles[tt.id].Review(tt.cert.cert)
			if err != nil || len(ws) == 0 || ws[0].Code != tt.code {
				t.Errorf("Review: %v, %v; want first %s", ws, err, tt.code)
			}
		})
	}
	// A prepayment top-up certificate must be a supplier's.
	org := TemplateRequest{NotBefore: p.now, CommonName: "Grid Co", Role: RoleNetworkOperator, EUI: orgEUI}
	no := issue(t, ProfileOrgKA, org, p.oca, nil)
	var pe *ProfileError
	if err := Profiles[ProfileOrgPrepaymentKA].Check(no.cert); !errors.As(err, &pe) || pe.Code != WarnRoleNotAllowed {
		t.Errorf("network operator as prepayment KA: %v", err)
	}
}

func TestParseCertificateMalformed(t *testing.T) {
	p := newTestPKI(t)
	der := p.orgDS.der
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not DER", []byte("hello")},
		{"truncated", der[:len(der)-1]},
		{"trailing byte", append(append([]byte{}, der...), 0)},
		{"tbs only", p.orgDS.cert.RawTBS},
		{"bare sequence", []byte{0x30, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCertificate(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v: want ErrMalformed", err)
			}
		})
	}
}

func TestParseCertificates(t *testing.T) {
	p := newTestPKI(t)
	var pemData []byte
	for _, is := range []*issued{p.root, p.orgDS, p.devKA} {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.der})...)
	}
	derData := append(append(append([]byte{}, p.root.der...), p.orgDS.der...), p.devKA.der...)
	tests := []struct {
		name    string
		in      []byte
		want    []ProfileID
		wantErr error
	}{
		{"pem", pemData, []ProfileID{ProfileRoot, ProfileOrgDS, ProfileDeviceKA}, nil},
		{"der", derData, []ProfileID{ProfileRoot, ProfileOrgDS, ProfileDeviceKA}, nil},
		{"pem key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), nil, nil},
		{"garbage", []byte{0xff, 0xff}, nil, ErrMalformed},
		{"empty", nil, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ParseCertificates(tt.in)
			if tt.want == nil {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != len(tt.want) {
				t.Fatalf("%d certificates, want %d", len(cs), len(tt.want))
			}
			for i, c := range cs {
				if c.Profile != tt.want[i] {
					t.Errorf("certificate %d: %s, want %s", i, c.Profile, tt.want[i])
				}
			}
		})
	}
}

func TestTemplateRefusesBadRequests(t *testing.T) {
	k := newKey(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := TemplateRequest{NotBefore: now, PublicKey: &k.PublicKey, SerialNumber: bigOne(), CommonName: "x", Role: RoleSupplier, EUI: orgEUI, HWType: OIDHWTypeReferenceMeter}
	tests := []struct {
		name string
		id   ProfileID
		edit func(*TemplateRequest)
	}{
		{"no serial", ProfileOrgDS, func(r *TemplateRequest) { r.SerialNumber = nil }},
		{"no key", ProfileOrgDS, func(r *TemplateRequest) { r.PublicKey = nil }},
		{"no notBefore", ProfileOrgDS, func(r *TemplateRequest) { r.NotBefore = time.Time{} }},
		{"root role for org", ProfileOrgDS, func(r *TemplateRequest) { r.Role = RoleRoot }},
		{"prepayment for NO", ProfileOrgPrepaymentKA, func(r *TemplateRequest) { r.Role = RoleNetworkOperator }},
		{"org without EUI", ProfileOrgKA, func(r *TemplateRequest) { r.EUI = EUI{} }},
		{"device with CN", ProfileDeviceDS, func(r *TemplateRequest) {}},
		{"device without hwType", ProfileDeviceDS, func(r *TemplateRequest) { r.CommonName = ""; r.HWType = x509.OID{} }},
		{"device expiring", ProfileDeviceDS, func(r *TemplateRequest) { r.CommonName = ""; r.NotAfter = now.Add(time.Hour) }},
		{"DCA without CN", ProfileDCA, func(r *TemplateRequest) { r.CommonName = "" }},
		{"reversed validity", ProfileOCA, func(r *TemplateRequest) { r.NotAfter = now.Add(-time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.edit(&r)
			if _, err := Profiles[tt.id].Template(r); !errors.Is(err, ErrTemplate) {
				t.Errorf("error %v: want ErrTemplate", err)
			}
		})
	}
}
