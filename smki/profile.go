package smki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the place of a certificate in the SMKI hierarchy.
type Kind int

// The kinds of SMKI certificate.
const (
	KindUnknown Kind = iota
	KindRoot
	KindOCA
	KindDCA
	KindOrganisation
	KindDevice
)

var kindNames = [...]string{"unknown", "root", "oca", "dca", "organisation", "device"}

// String returns the kind's lower-case name.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ProfileID names one of the SMKI certificate profiles.
type ProfileID string

// The SMKI certificate profiles.
const (
	ProfileRoot            ProfileID = "root"
	ProfileOCA             ProfileID = "oca"
	ProfileDCA             ProfileID = "dca"
	ProfileOrgDS           ProfileID = "org-ds"
	ProfileOrgKA           ProfileID = "org-ka"
	ProfileOrgPrepaymentKA ProfileID = "org-prepayment-ka"
	ProfileDeviceDS        ProfileID = "device-ds"
	ProfileDeviceKA        ProfileID = "device-ka"
)

// Presence says whether a subject attribute or an extension must, may or
// must not appear.
type Presence int

// Presence values.
const (
	Forbidden Presence = iota
	Optional
	Required
)

// SubjectForm is the shape of a profile's subject distinguished name. Every
// attribute sits in its own single-valued RDN and appears at most once; CN
// and OU are UTF8String or PrintableString; the OU is a Remote Party Role as
// two upper-case hex digits; x500UniqueIdentifier is a 64-bit BIT STRING
// holding an EUI-64. Any other attribute is off profile.
type SubjectForm struct {
	CommonName Presence
	OU         Presence
	UniqueID   Presence
	// Role, when RoleFixed is set, is the only role the OU may carry.
	Role      Role
	RoleFixed bool
	// Roles, when not empty, lists the roles the OU may carry.
	Roles []Role
}

// ExtensionRule says whether an extension must, may or must not appear
// and with which criticality.
type ExtensionRule struct {
	Name     string
	OID      string // DER content octets of the extension's OID
	Presence Presence
	Critical bool
	// AnyCriticality lets the extension be critical or not (basicConstraints
	// on an end-entity certificate, RFC 5280 4.2.1.9).
	AnyCriticality bool
}

// Profile is one SMKI certificate profile as data: the CA builds templates
// from it (Template) and lints what it signs against it (Check); the reader
// checks every certificate it parses against the profile it matches.
type Profile struct {
	ID          ProfileID
	Kind        Kind
	Description string
	Subject     SubjectForm
	// KeyUsage is the exact key usage the certificate carries; the extension
	// is always critical.
	KeyUsage x509.KeyUsage
	// IsCA is the cA flag of basicConstraints (critical when present; present
	// on every CA certificate).
	IsCA bool
	// MaxPathLen is the pathLenConstraint a CA certificate must carry, or -1
	// when the profile does not constrain it.
	MaxPathLen int
	// Policies are the certificate policy OIDs our CA writes into the
	// critical certificatePolicies extension. Check requires at least one
	// policy, not these ones, so that other issuers' certificates read.
	Policies []x509.OID
	// DefaultValidity is what Template uses when no notAfter is given.
	DefaultValidity time.Duration
	// MaxValidity, when not zero, bounds notAfter - notBefore.
	MaxValidity time.Duration
	// FixedNotAfter, when not zero, is the only notAfter allowed (device
	// certificates: 99991231235959Z, no well-defined expiry, RFC 5280
	// section 4.1.2.5).
	FixedNotAfter time.Time
	// SelfSigned marks the root: issuer equals subject, the authority key
	// identifier is optional and, if present, equals the subject key
	// identifier.
	SelfSigned bool
	// Extensions lists every extension the profile knows. An extension not
	// listed may appear only non-critical.
	Extensions []ExtensionRule
	// KeyIDMethod describes how subject and authority key identifiers are
	// made: always RFC 5280 section 4.2.1.2 method 2 with 8 bytes (KeyID).
	KeyIDMethod string
}

// NeverExpires is the notAfter of device certificates, 99991231235959Z.
var NeverExpires = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

const keyIDMethod2 = "RFC 5280 4.2.1.2 method 2: 0100 || least significant 60 bits of SHA-1(subjectPublicKey), 8 bytes"

func extRules(kind Kind) []ExtensionRule {
	r := []ExtensionRule{
		{Name: "keyUsage", OID: derKeyUsage, Presence: Required, Critical: true},
		{Name: "subjectKeyIdentifier", OID: derSKI, Presence: Required},
		{Name: "certificatePolicies", OID: derPolicies, Presence: Required, Critical: true},
	}
	switch kind {
	case KindRoot:
		r = append(r,
			ExtensionRule{Name: "basicConstraints", OID: derBasicConstr, Presence: Required, Critical: true},
			ExtensionRule{Name: "authorityKeyIdentifier", OID: derAKI, Presence: Optional},
			ExtensionRule{Name: "subjectAltName", OID: derSAN, Presence: Forbidden})
	case KindOCA, KindDCA:
		r = append(r,
			ExtensionRule{Name: "basicConstraints", OID: derBasicConstr, Presence: Required, Critical: true},
			ExtensionRule{Name: "authorityKeyIdentifier", OID: derAKI, Presence: Required},
			ExtensionRule{Name: "subjectAltName", OID: derSAN, Presence: Forbidden})
	case KindOrganisation:
		r = append(r,
			ExtensionRule{Name: "basicConstraints", OID: derBasicConstr, Presence: Optional, AnyCriticality: true},
			ExtensionRule{Name: "authorityKeyIdentifier", OID: derAKI, Presence: Required},
			ExtensionRule{Name: "subjectAltName", OID: derSAN, Presence: Forbidden})
	case KindDevice:
		r = append(r,
			ExtensionRule{Name: "basicConstraints", OID: derBasicConstr, Presence: Optional, AnyCriticality: true},
			ExtensionRule{Name: "authorityKeyIdentifier", OID: derAKI, Presence: Required},
			ExtensionRule{Name: "subjectAltName", OID: derSAN, Presence: Required, Critical: true})
	case KindUnknown:
		r = append(r,
			ExtensionRule{Name: "basicConstraints", OID: derBasicConstr, Presence: Optional, AnyCriticality: true},
			ExtensionRule{Name: "authorityKeyIdentifier", OID: derAKI, Presence: Optional},
			ExtensionRule{Name: "subjectAltName", OID: derSAN, Presence: Optional, AnyCriticality: true})
	}
	return r
}

// orgRoles are the roles an organisation certificate may carry: every
// Remote Party Role but root (0) and issuing authority (7), which belong
// to CA certificates, plus the DCC interface signing roles.
var orgRoles = []Role{RoleRecovery, RoleSupplier, RoleNetworkOperator, RoleAccessControlBroker,
	RoleTransitionalCoS, RoleWANProvider, RoleLoadController, RoleOther,
	RoleDCCInterfaceSigning, RoleDCCInterfaceSigning2}

const year = 365*24*time.Hour + 6*time.Hour

func newProfile(id ProfileID, kind Kind, desc string, ku x509.KeyUsage) *Profile {
	p := &Profile{ID: id, Kind: kind, Description: desc, KeyUsage: ku, MaxPathLen: -1,
		Extensions: extRules(kind), KeyIDMethod: keyIDMethod2}
	switch kind {
	case KindRoot:
		p.Subject = SubjectForm{CommonName: Required, OU: Required, Role: RoleRoot, RoleFixed: true}
		p.IsCA, p.SelfSigned = true, true
		p.Policies = []x509.OID{OIDPolicyOrganisation, OIDPolicyDevice}
		p.DefaultValidity = 25 * year
	case KindOCA:
		p.Subject = SubjectForm{CommonName: Required, OU: Required, Role: RoleIssuingAuthority, RoleFixed: true}
		p.IsCA, p.MaxPathLen = true, 0
		p.Policies = []x509.OID{OIDPolicyOrganisation}
		p.DefaultValidity = 25 * year
	case KindDCA:
		p.Subject = SubjectForm{CommonName: Required}
		p.IsCA, p.MaxPathLen = true, 0
		p.Policies = []x509.OID{OIDPolicyDevice}
		p.DefaultValidity = 25 * year
	case KindOrganisation:
		p.Subject = SubjectForm{CommonName: Optional, OU: Required, UniqueID: Required, Roles: orgRoles}
		p.Policies = []x509.OID{OIDPolicyOrganisation}
		p.DefaultValidity = 5 * year
	case KindDevice:
		p.Policies = []x509.OID{OIDPolicyDevice}
		p.FixedNotAfter = NeverExpires
	}
	return p
}

// Profiles holds every SMKI certificate profile by ID. Treat it as read-only.
var Profiles = map[ProfileID]*Profile{
	ProfileRoot: newProfile(ProfileRoot, KindRoot,
		"SMKI Root CA: OU=00, CN=<name>, self-signed, keyCertSign and cRLSign", x509.KeyUsageCertSign|x509.KeyUsageCRLSign),
	ProfileOCA: newProfile(ProfileOCA, KindOCA,
		"Organisation CA: OU=07, CN=<name>, CA pathLen 0, keyCertSign and cRLSign", x509.KeyUsageCertSign|x509.KeyUsageCRLSign),
	ProfileDCA: newProfile(ProfileDCA, KindDCA,
		"Device CA: CN=<name>, CA pathLen 0, keyCertSign and cRLSign", x509.KeyUsageCertSign|x509.KeyUsageCRLSign),
	ProfileOrgDS: newProfile(ProfileOrgDS, KindOrganisation,
		"organisation digital signature: [CN], OU=<role>, x500UniqueIdentifier=<EUI>", x509.KeyUsageDigitalSignature),
	ProfileOrgKA: newProfile(ProfileOrgKA, KindOrganisation,
		"organisation key agreement: [CN], OU=<role>, x500UniqueIdentifier=<EUI>", x509.KeyUsageKeyAgreement),
	ProfileOrgPrepaymentKA: func() *Profile {
		p := newProfile(ProfileOrgPrepaymentKA, KindOrganisation,
			"supplier prepayment top-up key agreement: [CN], OU=02, x500UniqueIdentifier=<EUI>", x509.KeyUsageKeyAgreement)
		p.Subject.Roles = []Role{RoleSupplier}
		return p
	}(),
	ProfileDeviceDS: newProfile(ProfileDeviceDS, KindDevice,
		"device digital signature: empty subject, critical hardwareModuleName SAN, notAfter 99991231235959Z", x509.KeyUsageDigitalSignature),
	ProfileDeviceKA: newProfile(ProfileDeviceKA, KindDevice,
		"device key agreement: empty subject, critical hardwareModuleName SAN, notAfter 99991231235959Z", x509.KeyUsageKeyAgreement),
}

// anyProfile holds the rules common to every SMKI profile. ParseCertificate
// reviews a certificate that matches no profile against it.
var anyProfile = &Profile{Kind: KindUnknown, Description: "rules common to every SMKI profile",
	Subject:    SubjectForm{CommonName: Optional, OU: Optional, UniqueID: Optional},
	MaxPathLen: -1, Extensions: extRules(KindUnknown), KeyIDMethod: keyIDMethod2}

// ProfileIDs lists the profiles in hierarchy order.
var ProfileIDs = []ProfileID{ProfileRoot, ProfileOCA, ProfileDCA, ProfileOrgDS, ProfileOrgKA,
	ProfileOrgPrepaymentKA, ProfileDeviceDS, ProfileDeviceKA}

// ErrProfile is wrapped by every ProfileError.
var ErrProfile = errors.New("smki: certificate does not match its SMKI profile")

// ProfileError says which rule of which profile a certificate or CSR breaks.
// A refusal that no profile could lift (a key that is not P-256, a signature
// algorithm other than ecdsa-with-SHA256) has an empty Profile and Code; a
// deviation refused by strict mode has the warning's code as Code and Rule.
type ProfileError struct {
	Profile ProfileID // the profile checked against; empty if none matched
	Rule    string    // the rule broken, e.g. "signatureAlgorithm" or "key-usage-not-critical"
	// Code is the WarningCode of a deviation refused in strict mode, empty
	// for a refusal.
	Code   WarningCode
	Detail string
}

// Error implements error.
func (e *ProfileError) Error() string {
	p := string(e.Profile)
	if p == "" {
		p = "smki"
	}
	return fmt.Sprintf("smki: off profile %s: rule %s: %s", p, e.Rule, e.Detail)
}

// Unwrap makes errors.Is(err, ErrProfile) hold, and errors.Is(err,
// ErrDeviation) for a deviation (Code set).
func (e *ProfileError) Unwrap() []error {
	if e.Code != "" {
		return []error{ErrProfile, ErrDeviation}
	}
	return []error{ErrProfile}
}

func perr(p ProfileID, rule, format string, args ...any) error {
	return &ProfileError{Profile: p, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// KeyID returns the 8-byte key identifier of pub by RFC 5280 section
// 4.2.1.2 method 2, as the SMKI profiles require: the 4-bit type field 0100
// followed by the least significant 60 bits of the SHA-1 hash of the
// subjectPublicKey BIT STRING value (the uncompressed point). It returns nil
// for a key that is not a valid P-256 point.
func KeyID(pub *ecdsa.PublicKey) []byte {
	if pub == nil {
		return nil
	}
	pt, err := pub.Bytes()
	if err != nil || len(pt) != 65 {
		return nil
	}
	return keyIDFromPoint(pt)
}

func keyIDFromPoint(pt []byte) []byte {
	h := sha1.Sum(pt)
	id := append([]byte(nil), h[len(h)-8:]...)
	id[0] = 0x40 | id[0]&0x0f
	return id
}

// MatchProfile returns the profile whose shape c has: CA certificates by
// their subject role (OU=00 root, OU=07 OCA, no OU a DCA), end-entity
// certificates by subject (empty: device; otherwise organisation) and by
// which one of digitalSignature and keyAgreement the key usage holds (other
// bits are a deviation Review reports). A supplier's prepayment top-up KA
// certificate has the same shape as its KA certificate and matches
// ProfileOrgKA; check it against ProfileOrgPrepaymentKA explicitly.
func MatchProfile(c *Certificate) (*Profile, error) {
	if c == nil {
		return nil, perr("", "certificate", "nil certificate")
	}
	hasDS := c.KeyUsage&x509.KeyUsageDigitalSignature != 0
	hasKA := c.KeyUsage&x509.KeyUsageKeyAgreement != 0
	ds, ka := hasDS && !hasKA, hasKA && !hasDS
	switch {
	case c.IsCA:
		ou := c.Subject.find(derOU)
		switch {
		case ou == nil:
			return Profiles[ProfileDCA], nil
		case ou.Value == RoleRoot.OU():
			return Profiles[ProfileRoot], nil
		case ou.Value == RoleIssuingAuthority.OU():
			return Profiles[ProfileOCA], nil
		}
		return nil, perr("", "subject.caRole", "CA certificate with OU %q: want 00 (root), 07 (OCA) or no OU (DCA)", ou.Value)
	case len(c.Subject.Attributes) == 0:
		switch {
		case ds:
			return Profiles[ProfileDeviceDS], nil
		case ka:
			return Profiles[ProfileDeviceKA], nil
		}
		return nil, perr(ProfileDeviceDS, "keyUsage.exactlyOne", "device certificate key usage %s: want exactly one of digitalSignature or keyAgreement", KeyUsageString(c.KeyUsage))
	default:
		switch {
		case ds:
			return Profiles[ProfileOrgDS], nil
		case ka:
			return Profiles[ProfileOrgKA], nil
		}
		return nil, perr(ProfileOrgDS, "keyUsage.exactlyOne", "organisation certificate key usage %s: want exactly one of digitalSignature or keyAgreement", KeyUsageString(c.KeyUsage))
	}
}

// Check reports the first deviation from p that c has, or the first rule
// it breaks that security requires, as a *ProfileError (for a deviation
// its Code is the warning's code and it also wraps ErrDeviation), or nil
// when c is on profile. It is strict: the CA lints what it signs with it.
// Review gives every deviation instead.
func (p *Profile) Check(c *Certificate) error {
	ws, err := p.Review(c)
	if err != nil {
		return err
	}
	if len(ws) > 0 {
		return ws[0].profileError(p.ID)
	}
	return nil
}

// Review checks c against p and returns every deviation from the profile
// c has, in the order found, as warnings. It is the one definition of "on
// profile": the reader attaches its result to each certificate it parses
// (Certificate.Warnings), Check and strict mode refuse any. What security
// requires (ecdsa-with-SHA256, a P-256 key, no repeated extension) the
// reader refuses before a profile applies; Review checks it again, for
// certificates built by hand, and returns such a refusal as a
// *ProfileError.
func (p *Profile) Review(c *Certificate) ([]Warning, error) {
	if p == nil || c == nil {
		return nil, perr("", "certificate", "nil profile or certificate")
	}
	if err := c.refusal(); err != nil {
		return nil, err
	}
	var ws warnings
	p.review(c, &ws)
	return ws, nil
}

// refusal returns what makes c unacceptable whatever the profile: a
// signature algorithm other than ecdsa-with-SHA256, no valid P-256 key, an
// extension that appears twice.
func (c *Certificate) refusal() error {
	if !c.sigAlgOK {
		return perr("", "signatureAlgorithm", "signature algorithm %s: only ecdsa-with-SHA256 is accepted, the same OID in the certificate and its TBS", c.SignatureAlgorithm)
	}
	if c.PublicKey == nil || KeyID(c.PublicKey) == nil {
		return perr("", "subjectPublicKeyInfo", "no valid P-256 public key")
	}
	seen := map[string]bool{}
	for _, e := range c.Extensions {
		k := string(e.oid)
		if k == "" {
			if b, err := e.ID.MarshalBinary(); err == nil {
				k = string(b)
			}
		}
		if seen[k] {
			return perr("", "extensions.duplicate", "extension %s appears twice (RFC 5280 4.2)", oidName(e.ID))
		}
		seen[k] = true
	}
	return nil
}

func (p *Profile) review(c *Certificate, ws *warnings) {
	if c.Version != 3 {
		ws.add(WarnVersion, "version %d: want v3", c.Version)
	}
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 {
		ws.add(WarnSerialNumber, "serial number is not a positive integer (RFC 5280 4.1.2.2)")
	} else if n := len(c.SerialNumber.Bytes()); n > 20 {
		ws.add(WarnSerialNumber, "serial number of %d octets: at most 20 (RFC 5280 4.1.2.2)", n)
	}
	for i, field := range [2]string{"signatureAlgorithm", "tbsCertificate.signature"} {
		if c.sigAlgParams[i] != nil {
			ws.add(WarnSignatureAlgorithmParameters, "%s ecdsa-with-SHA256 carries parameters %X: want none (RFC 5758 3.2)", field, c.sigAlgParams[i])
		}
	}
	if c.hasUniqueIDs {
		ws.add(WarnUniqueIdentifiers, "issuerUniqueID or subjectUniqueID present: must be absent (RFC 5280 4.1.2.8)")
	}
	p.reviewValidity(c, ws)
	p.reviewName(&c.Subject, ws)
	if p.SelfSigned && !bytes.Equal(c.RawIssuer, c.RawSubject) {
		ws.add(WarnRootNotSelfSigned, "root issuer %q differs from its subject %q", c.Issuer.String(), c.Subject.String())
	}
	p.reviewExtensions(c, ws)
	if p.KeyUsage != 0 && c.KeyUsage != p.KeyUsage {
		ws.add(WarnKeyUsage, "key usage %s: want exactly %s", KeyUsageString(c.KeyUsage), KeyUsageString(p.KeyUsage))
	}
	if p.Kind != KindUnknown && (c.BasicConstraintsValid || p.IsCA) {
		switch {
		case c.IsCA != p.IsCA:
			ws.add(WarnBasicConstraints, "cA is %t: want %t", c.IsCA, p.IsCA)
		case !p.IsCA && c.MaxPathLen >= 0:
			ws.add(WarnBasicConstraints, "end-entity certificate with pathLenConstraint %d", c.MaxPathLen)
		case p.MaxPathLen >= 0 && c.MaxPathLen != p.MaxPathLen:
			ws.add(WarnBasicConstraints, "pathLenConstraint %s: want %d", pathLenString(c.MaxPathLen), p.MaxPathLen)
		}
	}
	if c.SubjectKeyID != nil {
		if len(c.SubjectKeyID) != 8 {
			ws.add(WarnKeyIDLength, "subject key identifier of %d bytes: want 8 (RFC 5280 4.2.1.2 method 2)", len(c.SubjectKeyID))
		} else if want := keyIDFromPoint(c.RawPublicKey); !bytes.Equal(c.SubjectKeyID, want) {
			ws.add(WarnSubjectKeyIDMethod, "subject key identifier %X: want %X (method 2 over the subject public key)", c.SubjectKeyID, want)
		}
	}
	selfSigned := p.SelfSigned || (p.Kind == KindUnknown && bytes.Equal(c.RawIssuer, c.RawSubject))
	switch {
	case c.AuthorityKeyID == nil:
		if !selfSigned {
			ws.add(WarnMissingAuthorityKeyID, "no authority key identifier: the issuer is found by name and signature only")
		}
	case len(c.AuthorityKeyID) != 8:
		ws.add(WarnKeyIDLength, "authority key identifier of %d bytes: want 8 (RFC 5280 4.2.1.2 method 2)", len(c.AuthorityKeyID))
	case p.SelfSigned && !bytes.Equal(c.AuthorityKeyID, c.SubjectKeyID):
		ws.add(WarnRootAuthorityKeyID, "root authority key identifier %X differs from its subject key identifier %X", c.AuthorityKeyID, c.SubjectKeyID)
	}
	if len(c.Policies) == 0 {
		ws.add(WarnMissingPolicies, "no certificate policy: want a critical certificatePolicies with at least one")
	}
	if p.Kind == KindDevice {
		switch {
		case !c.hasHWModuleName:
			ws.add(WarnHardwareModuleName, "subjectAltName does not hold a hardwareModuleName otherName: the device EUI-64 is unknown")
		case c.sanOtherNames != 0:
			ws.add(WarnHardwareModuleName, "subjectAltName holds %d names besides hardwareModuleName", c.sanOtherNames)
		case len(c.HWSerial) != 8:
			ws.add(WarnHardwareModuleName, "hwSerialNum of %d bytes: want the 8-byte device EUI-64", len(c.HWSerial))
		}
	}
}

func pathLenString(n int) string {
	if n < 0 {
		return "absent"
	}
	return fmt.Sprint(n)
}

func (p *Profile) reviewValidity(c *Certificate, ws *warnings) {
	for _, t := range []struct {
		name string
		v    time.Time
		tag  timeTag
	}{{"notBefore", c.NotBefore, c.notBeforeTag}, {"notAfter", c.NotAfter, c.notAfterTag}} {
		if t.tag == 0 {
			continue // built by hand, not read
		}
		wantUTC := t.v.Year() < 2050
		if wantUTC != (t.tag == tagUTCTime) {
			ws.add(WarnValidityEncoding, "%s %s: RFC 5280 4.1.2.5 wants UTCTime through 2049 and GeneralizedTime from 2050", t.name, t.v.Format(time.RFC3339))
		}
	}
	if !c.NotBefore.Before(c.NotAfter) {
		ws.add(WarnValidityOrder, "notBefore %s is not before notAfter %s", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	if !p.FixedNotAfter.IsZero() && !c.NotAfter.Equal(p.FixedNotAfter) {
		ws.add(WarnValidityPeriod, "notAfter %s: want 99991231235959Z", c.NotAfter.Format(time.RFC3339))
	}
	if p.MaxValidity > 0 && c.NotAfter.Sub(c.NotBefore) > p.MaxValidity {
		ws.add(WarnValidityPeriod, "validity %s exceeds %s", c.NotAfter.Sub(c.NotBefore), p.MaxValidity)
	}
}

// reviewName checks a subject name against the profile's subject form.
func (p *Profile) reviewName(n *Name, ws *warnings) {
	f := p.Subject
	seen := map[string]bool{}
	multi := false
	for _, a := range n.Attributes {
		if a.multiValued && !multi {
			multi = true
			ws.add(WarnSubjectForm, "subject has a multi-valued RDN")
		}
		k := string(a.oid)
		if seen[k] {
			ws.add(WarnSubjectForm, "subject repeats %s", oidName(a.Type))
		}
		seen[k] = true
		pres := Forbidden
		switch k {
		case derCommonName:
			pres = f.CommonName
		case derOU:
			pres = f.OU
		case derX500UniqueID:
			pres = f.UniqueID
		}
		if pres == Forbidden {
			ws.add(WarnSubjectForm, "subject attribute %s not allowed in a %s certificate", oidName(a.Type), p.Kind)
		} else if a.problem != "" {
			ws.add(WarnSubjectForm, "%s", a.problem)
		}
	}
	for _, need := range []struct {
		oid  string
		name string
		pres Presence
	}{{derCommonName, "commonName", f.CommonName}, {derOU, "organizationalUnitName", f.OU}, {derX500UniqueID, "x500UniqueIdentifier", f.UniqueID}} {
		if need.pres == Required && !seen[need.oid] {
			ws.add(WarnSubjectForm, "subject lacks %s", need.name)
		}
	}
	if n.HasRole {
		r := n.Role
		switch {
		case !r.Valid():
			ws.add(WarnUnknownRole, "OU %s: role code %d is not a known Remote Party Role", r.OU(), int(r))
		case f.OU == Forbidden:
		case f.RoleFixed && r != f.Role:
			ws.add(WarnRoleNotAllowed, "OU %s: want %s", r.OU(), f.Role.OU())
		case len(f.Roles) > 0 && !containsRole(f.Roles, r):
			ws.add(WarnRoleNotAllowed, "role %s (OU %s) not allowed in a %s certificate", r, r.OU(), profileName(p))
		}
	}
	if f.CommonName != Forbidden && seen[derCommonName] && strings.TrimSpace(n.CommonName) == "" {
		ws.add(WarnSubjectForm, "empty commonName")
	}
}

func profileName(p *Profile) string {
	if p.ID == "" {
		return p.Kind.String()
	}
	return string(p.ID)
}

func containsRole(rs []Role, r Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (p *Profile) reviewExtensions(c *Certificate, ws *warnings) {
	known := map[string]ExtensionRule{}
	for _, r := range p.Extensions {
		known[r.OID] = r
	}
	seen := map[string]bool{}
	for _, e := range c.Extensions {
		k := string(e.oid)
		seen[k] = true
		r, ok := known[k]
		if !ok {
			if e.Critical {
				ws.add(WarnUnknownCriticalExtension, "unknown critical extension %s", e.ID)
			}
			continue
		}
		if r.Presence == Forbidden {
			ws.add(WarnForbiddenExtension, "%s not allowed in a %s certificate", r.Name, p.Kind)
			continue
		}
		if e.Critical == r.Critical || r.AnyCriticality {
			continue
		}
		switch {
		case k == derKeyUsage && !e.Critical:
			ws.add(WarnKeyUsageNotCritical, "keyUsage is not critical")
		case k == derPolicies && !e.Critical:
			ws.add(WarnPoliciesNotCritical, "certificatePolicies is not critical")
		default:
			ws.add(WarnExtensionCriticality, "%s critical is %t: want %t", r.Name, e.Critical, r.Critical)
		}
	}
	for _, r := range p.Extensions {
		if r.Presence != Required || seen[r.OID] {
			continue
		}
		switch r.OID {
		case derAKI, derPolicies:
			// Reported by the key identifier and policy rules.
		case derSKI:
			ws.add(WarnMissingSubjectKeyID, "no subject key identifier")
		default:
			ws.add(WarnMissingExtension, "%s missing", r.Name)
		}
	}
}

// KeyUsageString names the bits of a key usage, e.g. "digitalSignature".
func KeyUsageString(ku x509.KeyUsage) string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}
