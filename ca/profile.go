package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Kind names a certificate profile this package issues. The values are the
// ones recorded in the store (Kind and Usage columns).
type Kind string

// The certificate profiles.
const (
	KindRoot      Kind = "root"       // SMKI Root CA, self-signed, OU=00
	KindOCA       Kind = "oca"        // SMKI Organisation CA, OU=07, pathLen 0
	KindDCA       Kind = "dca"        // SMKI (batch) Device CA, pathLen 0
	KindOrg       Kind = "org"        // SMKI organisation certificate
	KindDevice    Kind = "device"     // SMKI device certificate
	KindTLSRoot   Kind = "dccki-root" // DCCKI root (mutual TLS to the router)
	KindTLSCA     Kind = "dccki-tls"  // DCCKI TLS issuing CA
	KindTLSClient Kind = "tls-client" // DCCKI client certificate of a DCC user
	KindTLSServer Kind = "tls-server" // DCCKI server certificate of a service
	// KindOCSPResponder is a batch's delegated OCSP responder (RFC 6960
	// section 4.2.2.2), certified as the batch closes (decision record 013).
	KindOCSPResponder Kind = "ocsp-responder"
)

// Usage is the key usage of an end-entity SMKI certificate.
type Usage string

// The SMKI key usages: digital signature, key agreement, and the second
// key-agreement key a supplier holds for prepayment top-up (the certificate is
// a key-agreement certificate; the distinction lives in the device's
// trust-anchor cell and in the store).
const (
	UsageDS   Usage = "ds"
	UsageKA   Usage = "ka"
	UsagePPKA Usage = "pp-ka"
)

// ParseUsage accepts ds, ka or pp-ka.
func ParseUsage(s string) (Usage, error) {
	switch u := Usage(s); u {
	case UsageDS, UsageKA, UsagePPKA:
		return u, nil
	}
	return "", fmt.Errorf("%w: usage %q: want ds, ka or pp-ka", ErrRequest, s)
}

func (u Usage) keyUsage() x509.KeyUsage {
	if u == UsageDS {
		return x509.KeyUsageDigitalSignature
	}
	return x509.KeyUsageKeyAgreement
}

// Object identifiers used in SMKI and DCCKI certificates. The SMKI policies
// and the reference meter's hwType are smki's (under the metertrust arc
// 2.25.266775791442633438020620406649511807260, see smki/oid.go).
var (
	// OIDDCCKIPolicy is the certificate policy of this project's DCCKI
	// (mutual TLS) hierarchy: branch .3.1 of the metertrust arc.
	OIDDCCKIPolicy = mustOID("2.25.266775791442633438020620406649511807260.3.1")

	oidX500UniqueIdentifier = asn1.ObjectIdentifier{2, 5, 4, 45}
	oidCommonName           = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrgUnit              = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidOrganization         = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidHardwareModuleName   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}
	oidExtSubjectAltName    = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtCertPolicies      = asn1.ObjectIdentifier{2, 5, 29, 32}
)

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic("ca: bad built-in OID " + s)
	}
	return o
}

// deviceNotAfter is the notAfter of every device certificate: the RFC 5280
// section 4.1.2.5 value for "no well-defined expiration date", as GBCS
// requires. Root and Device CAs use it too, so device paths stay valid.
var deviceNotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// Validity periods of the other profiles (our rule, after the DCC test PKI).
const (
	ocaValidity = 25 * 365 * 24 * time.Hour
	orgValidity = 10 * 365 * 24 * time.Hour
	tlsValidity = 2 * 365 * 24 * time.Hour
	// backdate is subtracted from notBefore to tolerate clock skew.
	backdate = time.Minute
)

// KeyID returns the 8-byte key identifier of pub: RFC 5280 section 4.2.1.2
// method 2, the four bits 0100 followed by the least significant 60 bits of
// the SHA-1 hash of the subjectPublicKey BIT STRING, as SMKI requires for
// subject and authority key identifiers.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is %T, want ECDSA P-256", ErrRequest, pub)
	}
	pt, err := k.Bytes() // uncompressed point: the subjectPublicKey bits
	if err != nil {
		return nil, fmt.Errorf("%w: encoding public key: %v", ErrRequest, err)
	}
	sum := sha1.Sum(pt)
	id := append([]byte(nil), sum[12:]...)
	id[0] = 0x40 | id[0]&0x0f
	return id, nil
}

// caSubject encodes OU=<role>, CN=<name> for SMKI CA subjects (or CN only).
func caSubject(role *smki.Role, cn string) ([]byte, error) {
	var rdn pkix.RDNSequence
	if role != nil {
		rdn = append(rdn, pkix.RelativeDistinguishedNameSET{{Type: oidOrgUnit, Value: role.OU()}})
	}
	rdn = append(rdn, pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: cn}})
	return asn1.Marshal(rdn)
}

// orgSubject encodes an SMKI organisation subject: CN=<name> (optional),
// OU=<role as two hex digits>, x500UniqueIdentifier=<EUI-64 as a 64-bit BIT
// STRING>.
func orgSubject(name string, role smki.Role, eui smki.EUI) ([]byte, error) {
	var rdn pkix.RDNSequence
	if name != "" {
		rdn = append(rdn, pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: name}})
	}
	rdn = append(rdn,
		pkix.RelativeDistinguishedNameSET{{Type: oidOrgUnit, Value: role.OU()}},
		pkix.RelativeDistinguishedNameSET{{Type: oidX500UniqueIdentifier, Value: asn1.BitString{Bytes: eui[:], BitLength: 64}}},
	)
	return asn1.Marshal(rdn)
}

// emptySubject is the DER of an empty Name (device certificates).
var emptySubject = []byte{0x30, 0x00}

// hardwareModuleNameSAN encodes a critical subjectAltName holding one
// otherName hardwareModuleName (RFC 4108 section 5): hwType, hwSerialNum =
// the device EUI-64.
func hardwareModuleNameSAN(hwType x509.OID, eui smki.EUI) (pkix.Extension, error) {
	hw, err := hwType.MarshalBinary()
	if err != nil || len(hw) == 0 {
		return pkix.Extension{}, fmt.Errorf("%w: hwType %v is not a valid OID", ErrRequest, hwType)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { // otherName
			b.AddASN1ObjectIdentifier(oidHardwareModuleName)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(hw) })
					b.AddASN1OctetString(eui[:])
				})
			})
		})
	})
	v, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("%w: encoding hardwareModuleName: %v", ErrRequest, err)
	}
	return pkix.Extension{Id: oidExtSubjectAltName, Critical: true, Value: v}, nil
}

// policiesExt encodes a critical certificatePolicies extension (SMKI
// requires it critical; crypto/x509 would write it non-critical).
func policiesExt(oids ...x509.OID) (pkix.Extension, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, o := range oids {
			der, err := o.MarshalBinary()
			if err != nil || len(der) == 0 {
				b.SetError(fmt.Errorf("policy %v is not a valid OID", o))
				return
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(der) })
			})
		}
	})
	v, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("%w: encoding certificatePolicies: %v", ErrRequest, err)
	}
	return pkix.Extension{Id: oidExtCertPolicies, Critical: true, Value: v}, nil
}

// TLSUserURI returns the URI subject alternative name that carries a DCC
// user's identity in a DCCKI client certificate:
// urn:metertrust:user:<EUI>:<user role>.
func TLSUserURI(eui smki.EUI, role smki.UserRole) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: "metertrust:user:" + eui.String() + ":" + string(role)}
}

// TLSUser reads the DCC user identity from a DCCKI client certificate (for
// the router, after crypto/tls has verified the chain): the URI SAN
// urn:metertrust:user:<EUI>:<role>, which must agree with the subject
// (CN = EUI, OU = role).
func TLSUser(cert *x509.Certificate) (smki.EUI, smki.UserRole, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == "urn" && len(u.Opaque) > len("metertrust:user:") && u.Opaque[:len("metertrust:user:")] == "metertrust:user:" {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return smki.EUI{}, "", fmt.Errorf("%w: client certificate has %d metertrust user URIs, want 1", ErrRequest, len(found))
	}
	rest := found[0].Opaque[len("metertrust:user:"):]
	if len(rest) < 18 || rest[16] != ':' {
		return smki.EUI{}, "", fmt.Errorf("%w: malformed user URI %q", ErrRequest, found[0])
	}
	eui, err := smki.ParseEUI(rest[:16])
	if err != nil {
		return smki.EUI{}, "", fmt.Errorf("%w: user URI: %w", ErrRequest, err)
	}
	role, err := smki.ParseUserRole(rest[17:])
	if err != nil {
		return smki.EUI{}, "", fmt.Errorf("%w: user URI: %w", ErrRequest, err)
	}
	if cert.Subject.CommonName != eui.String() || len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != string(role) {
		return smki.EUI{}, "", fmt.Errorf("%w: client certificate subject %q disagrees with %s", ErrRequest, cert.Subject, found[0])
	}
	return eui, role, nil
}

// template describes one certificate to issue, before serial and signing.
type template struct {
	kind      Kind
	usage     string // store usage: ds, ka, pp-ka, ca, tls
	eui       smki.EUI
	hasEUI    bool
	role      int // remote party role, -1 for none
	userRole  string
	cert      *x509.Certificate
	extraExts []pkix.Extension

	// name and hwType are the organisation certificate's CN and the
	// device certificate's hwType, kept so that the fast sign path
	// (tbs.go) can rebuild the profile's template with placeholders.
	name   string
	hwType x509.OID
}

func newTemplate(kind Kind, pub crypto.PublicKey, notBefore, notAfter time.Time, rawSubject []byte) (*template, error) {
	ski, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &template{kind: kind, role: -1, cert: &x509.Certificate{
		PublicKey:          pub,
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		RawSubject:         rawSubject,
		NotBefore:          notBefore.Add(-backdate).UTC().Truncate(time.Second),
		NotAfter:           notAfter.UTC().Truncate(time.Second),
		SubjectKeyId:       ski,
		SerialNumber:       big.NewInt(1), // replaced at issuance
	}}, nil
}

func (t *template) asCA(pathLen int, policies ...x509.OID) error {
	t.usage = "ca"
	t.cert.IsCA = true
	t.cert.BasicConstraintsValid = true
	t.cert.MaxPathLen = pathLen
	t.cert.MaxPathLenZero = pathLen == 0
	t.cert.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	return t.addPolicies(policies...)
}

func (t *template) addPolicies(oids ...x509.OID) error {
	ext, err := policiesExt(oids...)
	if err != nil {
		return err
	}
	t.extraExts = append(t.extraExts, ext)
	return nil
}

// rootTemplate: SMKI Root CA, OU=00, CN=name, self-signed, no path length
// limit, no AKI.
func rootTemplate(pub crypto.PublicKey, name string, now time.Time) (*template, error) {
	r := smki.RoleRoot
	subj, err := caSubject(&r, name)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindRoot, pub, now, deviceNotAfter, subj)
	if err != nil {
		return nil, err
	}
	t.role = int(smki.RoleRoot)
	return t, t.asCA(-1, smki.OIDPolicyOrganisation, smki.OIDPolicyDevice)
}

// ocaTemplate: SMKI Organisation CA, OU=07, CN=name, pathLen 0.
func ocaTemplate(pub crypto.PublicKey, name string, now time.Time) (*template, error) {
	r := smki.RoleIssuingAuthority
	subj, err := caSubject(&r, name)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindOCA, pub, now, now.Add(ocaValidity), subj)
	if err != nil {
		return nil, err
	}
	t.role = int(smki.RoleIssuingAuthority)
	return t, t.asCA(0, smki.OIDPolicyOrganisation)
}

// dcaTemplate: SMKI Device CA, CN=name, pathLen 0.
func dcaTemplate(pub crypto.PublicKey, name string, now time.Time) (*template, error) {
	subj, err := caSubject(nil, name)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindDCA, pub, now, deviceNotAfter, subj)
	if err != nil {
		return nil, err
	}
	return t, t.asCA(0, smki.OIDPolicyDevice)
}

// orgTemplate: SMKI organisation certificate.
func orgTemplate(pub crypto.PublicKey, name string, role smki.Role, eui smki.EUI, usage Usage, now time.Time) (*template, error) {
	subj, err := orgSubject(name, role, eui)
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindOrg, pub, now, now.Add(orgValidity), subj)
	if err != nil {
		return nil, err
	}
	t.usage, t.eui, t.hasEUI, t.role, t.name = string(usage), eui, true, int(role), name
	t.cert.KeyUsage = usage.keyUsage()
	return t, t.addPolicies(smki.OIDPolicyOrganisation)
}

// deviceTemplate: SMKI device certificate, empty subject, critical
// hardwareModuleName SAN, notAfter 99991231235959Z.
func deviceTemplate(pub crypto.PublicKey, hwType x509.OID, eui smki.EUI, usage Usage, now time.Time) (*template, error) {
	t, err := newTemplate(KindDevice, pub, now, deviceNotAfter, emptySubject)
	if err != nil {
		return nil, err
	}
	san, err := hardwareModuleNameSAN(hwType, eui)
	if err != nil {
		return nil, err
	}
	t.usage, t.eui, t.hasEUI, t.hwType = string(usage), eui, true, hwType
	t.cert.KeyUsage = usage.keyUsage()
	t.extraExts = append(t.extraExts, san)
	return t, t.addPolicies(smki.OIDPolicyDevice)
}

// tlsCATemplate: DCCKI root (pathLen 1) or TLS issuing CA (pathLen 0),
// subject O=metertrust DCCKI, CN=name.
func tlsCATemplate(kind Kind, pub crypto.PublicKey, name string, now time.Time) (*template, error) {
	subj, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oidOrganization, Value: "metertrust DCCKI"}},
		{{Type: oidCommonName, Value: name}},
	})
	if err != nil {
		return nil, err
	}
	pathLen, validity := 0, ocaValidity
	if kind == KindTLSRoot {
		pathLen, validity = 1, 2*ocaValidity
	}
	t, err := newTemplate(kind, pub, now, now.Add(validity), subj)
	if err != nil {
		return nil, err
	}
	return t, t.asCA(pathLen, OIDDCCKIPolicy)
}

// tlsClientTemplate: DCCKI client certificate of a DCC user. The identity
// is carried twice, checked by TLSUser: subject CN = EUI (16 hex digits),
// OU = DCC user role, O = metertrust DCCKI users; and the URI SAN
// urn:metertrust:user:<EUI>:<role>.
func tlsClientTemplate(pub crypto.PublicKey, eui smki.EUI, role smki.UserRole, now time.Time) (*template, error) {
	subj, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oidOrganization, Value: "metertrust DCCKI users"}},
		{{Type: oidOrgUnit, Value: string(role)}},
		{{Type: oidCommonName, Value: eui.String()}},
	})
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindTLSClient, pub, now, now.Add(tlsValidity), subj)
	if err != nil {
		return nil, err
	}
	t.usage, t.eui, t.hasEUI, t.userRole = "tls", eui, true, string(role)
	t.cert.KeyUsage = x509.KeyUsageDigitalSignature
	t.cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	t.cert.URIs = []*url.URL{TLSUserURI(eui, role)}
	return t, t.addPolicies(OIDDCCKIPolicy)
}

// tlsServerTemplate: DCCKI server certificate for a service, with DNS and IP
// SANs; CN = the first DNS name (or IP).
func tlsServerTemplate(pub crypto.PublicKey, dns []string, ips []net.IP, now time.Time) (*template, error) {
	if len(dns) == 0 && len(ips) == 0 {
		return nil, fmt.Errorf("%w: a server certificate needs at least one DNS name or IP address", ErrRequest)
	}
	cn := ""
	if len(dns) > 0 {
		cn = dns[0]
	} else {
		cn = ips[0].String()
	}
	subj, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: oidOrganization, Value: "metertrust DCCKI services"}},
		{{Type: oidCommonName, Value: cn}},
	})
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindTLSServer, pub, now, now.Add(tlsValidity), subj)
	if err != nil {
		return nil, err
	}
	t.usage = "tls"
	t.cert.KeyUsage = x509.KeyUsageDigitalSignature
	t.cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	t.cert.DNSNames = dns
	t.cert.IPAddresses = ips
	return t, t.addPolicies(OIDDCCKIPolicy)
}

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 section 4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// responderTemplate: the delegated OCSP responder of batch name (RFC 6960
// section 4.2.2.2), issued by the batch itself: CN="<name> OCSP responder",
// digitalSignature, id-kp-OCSPSigning only, id-pkix-ocsp-nocheck (its status
// is not checked: it could only be answered by itself), and notAfter
// 99991231235959Z like the device certificates whose status it signs
// (decision record 013: once the batch key is destroyed nobody can certify
// another).
func responderTemplate(pub crypto.PublicKey, name string, now time.Time) (*template, error) {
	subj, err := caSubject(nil, name+" OCSP responder")
	if err != nil {
		return nil, err
	}
	t, err := newTemplate(KindOCSPResponder, pub, now, deviceNotAfter, subj)
	if err != nil {
		return nil, err
	}
	t.usage = store.UsageOCSP
	t.cert.KeyUsage = x509.KeyUsageDigitalSignature
	t.cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	t.extraExts = append(t.extraExts, pkix.Extension{Id: oidOCSPNoCheck, Value: asn1.NullBytes})
	return t, nil
}
