package smki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformed is wrapped by every error about bytes that are not the DER
// structure expected; the message names the field.
var ErrMalformed = errors.New("smki: malformed DER")

func derErr(field string) error { return fmt.Errorf("%w: %s", ErrMalformed, field) }

// Certificate is an SMKI certificate as read by ParseCertificate. The raw
// slices alias one private copy of the input.
type Certificate struct {
	Raw                     []byte // the whole certificate, DER
	RawTBS                  []byte // the signed TBSCertificate, DER
	RawSubject              []byte // subject Name, DER
	RawIssuer               []byte // issuer Name, DER
	RawSubjectPublicKeyInfo []byte

	Version      int // 3 for v3
	SerialNumber *big.Int
	// SignatureAlgorithm is the signature algorithm OID, ecdsa-with-SHA256
	// in every certificate the reader accepts.
	SignatureAlgorithm x509.OID
	Signature          []byte // DER ECDSA-Sig-Value

	Issuer    Name
	Subject   Name
	NotBefore time.Time
	NotAfter  time.Time

	// PublicKey is the P-256 subject key; RawPublicKey is the
	// subjectPublicKey BIT STRING value (the uncompressed point).
	PublicKey    *ecdsa.PublicKey
	RawPublicKey []byte

	Kind    Kind      // the place in the hierarchy
	Profile ProfileID // the profile the certificate matched

	// Role is the subject's Remote Party Role (from the OU) for root, OCA
	// and organisation certificates; it is meaningful only when
	// Subject.HasRole (a DCA or device certificate has no role, and Role 0
	// is the root role).
	Role Role
	// EUI is the organisation EUI-64 (x500UniqueIdentifier) or the device
	// EUI-64 (hwSerialNum).
	EUI EUI

	KeyUsage              x509.KeyUsage
	BasicConstraintsValid bool
	IsCA                  bool
	// MaxPathLen is the pathLenConstraint, or -1 when absent.
	MaxPathLen     int
	SubjectKeyID   []byte
	AuthorityKeyID []byte
	Policies       []x509.OID
	// HWType and HWSerial are the hardwareModuleName of a device
	// certificate.
	HWType   x509.OID
	HWSerial []byte

	// Extensions lists every extension in certificate order.
	Extensions []Extension

	// Warnings lists the certificate's deviations from its SMKI profile
	// (from anyProfile's common rules when Kind is KindUnknown), in the
	// order Profile.Review finds them; empty when it is on profile.
	Warnings []Warning

	sigAlgOK bool
	// sigAlgParams holds the parameters element of the signatureAlgorithm
	// (0) and tbsCertificate.signature (1), nil when absent.
	sigAlgParams    [2][]byte
	hasUniqueIDs    bool
	hasHWModuleName bool
	sanOtherNames   int
	notBeforeTag    timeTag
	notAfterTag     timeTag
}

// Extension is one certificate extension.
type Extension struct {
	ID       x509.OID
	Critical bool
	Value    []byte // the extnValue OCTET STRING contents
	oid      []byte
}

// Name returns the extension's short name (e.g. "keyUsage") or its OID.
func (e Extension) Name() string { return oidName(e.ID) }

// Name is a distinguished name as SMKI uses it.
type Name struct {
	CommonName string
	// Role is the OU read as a Remote Party Role; HasRole says an OU held a
	// role code as two upper-case hex digits. The code may be one this
	// package does not know (Role.Valid false): the profile review reports
	// it as WarnUnknownRole.
	Role    Role
	HasRole bool
	// EUI is the x500UniqueIdentifier; HasEUI says one was present and valid.
	EUI        EUI
	HasEUI     bool
	Attributes []Attribute // in DER order
}

// Attribute is one attribute of a Name.
type Attribute struct {
	Type x509.OID
	// Value is the text of a string attribute, the EUI of an
	// x500UniqueIdentifier, else the hex of the DER value.
	Value string

	oid         []byte
	multiValued bool
	problem     string
}

func (n *Name) find(oid string) *Attribute {
	for i := range n.Attributes {
		if string(n.Attributes[i].oid) == oid {
			return &n.Attributes[i]
		}
	}
	return nil
}

// String prints the name in DER order, e.g. "CN=Acme, OU=02,
// x500UniqueIdentifier=90B3D51F30010000", or "" for an empty name.
func (n Name) String() string {
	var parts []string
	for _, a := range n.Attributes {
		k := oidName(a.Type)
		switch string(a.oid) {
		case derCommonName:
			k = "CN"
		case derOU:
			k = "OU"
		}
		parts = append(parts, k+"="+a.Value)
	}
	return strings.Join(parts, ", ")
}

type timeTag int

const (
	tagUTCTime timeTag = iota + 1
	tagGeneralizedTime
)

// ParseCertificate reads one DER certificate: any well-formed X.509
// certificate with a P-256 key signed with ecdsa-with-SHA256, including the
// SMKI organisation and device forms crypto/x509 refuses. It matches the
// certificate to its SMKI profile (MatchProfile) and records every deviation
// from that profile (Profile.Review) in Certificate.Warnings instead of
// refusing it: real certificates, the DCC's test certificates among them,
// lack authority key identifiers, carry NULL signature parameters or role
// codes outside the known list. A certificate of no profile's shape reads
// with Kind KindUnknown and a WarnNoProfile warning.
//
// It refuses only what security requires: malformed DER or trailing bytes
// (an error wrapping ErrMalformed that names the field and its offset), a
// public key that is not an uncompressed P-256 point on the curve (wrapping
// ErrPublicKey), and a signature algorithm other than ecdsa-with-SHA256, the
// same in the certificate and its TBS, or a repeated extension (a
// *ProfileError naming the rule). The signature is not checked here: Verify
// does that. ParseCertificateStrict also refuses every deviation.
func ParseCertificate(der []byte) (*Certificate, error) {
	c, err := parseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := c.refusal(); err != nil {
		return nil, err
	}
	var ws warnings
	p, err := MatchProfile(c)
	if err != nil {
		ws.add(WarnNoProfile, "%s", profileErrDetail(err))
		p = anyProfile
	} else {
		c.Profile, c.Kind = p.ID, p.Kind
	}
	p.review(c, &ws)
	c.Warnings = ws
	return c, nil
}

func profileErrDetail(err error) string {
	var pe *ProfileError
	if errors.As(err, &pe) {
		return pe.Detail
	}
	return err.Error()
}

// derErrAt is derErr naming the offset of at within base, where at is a
// sub-slice of base (cryptobyte only ever re-slices its input).
func derErrAt(field string, base, at []byte) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, field, offsetIn(base, at))
}

// offsetIn returns the offset of sub within base, for a sub-slice of base,
// or -1 when sub cannot be one.
func offsetIn(base, sub []byte) int {
	off := cap(base) - cap(sub)
	if off < 0 || off > len(base) {
		return -1
	}
	return off
}

func parseCertificate(der []byte) (*Certificate, error) {
	raw := bytes.Clone(der)
	c := &Certificate{Raw: raw, MaxPathLen: -1}
	in := cryptobyte.String(raw)
	var cert cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) {
		return nil, derErr("certificate: not a DER SEQUENCE")
	}
	if !in.Empty() {
		return nil, derErr("certificate: trailing data")
	}
	var tbsRaw, tbs cryptobyte.String
	if !cert.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) {
		return nil, derErr("tbsCertificate")
	}
	c.RawTBS = tbsRaw
	tbs = tbsRaw
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, derErr("tbsCertificate")
	}
	var outerAlg cryptobyte.String
	if !cert.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) {
		return nil, derErr("signatureAlgorithm")
	}
	sig, err := readBitStringBytes(&cert, "signatureValue")
	if err != nil {
		return nil, err
	}
	c.Signature = sig
	if !cert.Empty() {
		return nil, derErr("certificate: data after signatureValue")
	}

	c.Version = 1
	if tbs.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var v cryptobyte.String
		var n int64
		if !tbs.ReadASN1(&v, cbasn1.Tag(0).Constructed().ContextSpecific()) || !v.ReadASN1Integer(&n) || !v.Empty() || n < 0 || n > 2 {
			return nil, derErr("version")
		}
		if n == 0 {
			// v1 is the DEFAULT: DER leaves it out (X.690 11.5).
			return nil, derErr("version: v1 encoded explicitly")
		}
		c.Version = int(n) + 1
	}
	c.SerialNumber = new(big.Int)
	if !tbs.ReadASN1Integer(c.SerialNumber) {
		return nil, derErr("serialNumber")
	}
	var innerAlg cryptobyte.String
	if !tbs.ReadASN1Element(&innerAlg, cbasn1.SEQUENCE) {
		return nil, derErrAt("tbsCertificate.signature", raw, tbs)
	}
	if err := c.parseSignatureAlgorithms(raw, outerAlg, innerAlg); err != nil {
		return nil, err
	}

	var issuer, subject cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, derErr("issuer")
	}
	c.RawIssuer = issuer
	if c.Issuer, err = parseName(issuer, "issuer"); err != nil {
		return nil, err
	}
	var validity cryptobyte.String
	if !tbs.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return nil, derErr("validity")
	}
	if c.NotBefore, c.notBeforeTag, err = readTime(&validity, "validity.notBefore"); err != nil {
		return nil, err
	}
	if c.NotAfter, c.notAfterTag, err = readTime(&validity, "validity.notAfter"); err != nil {
		return nil, err
	}
	if !validity.Empty() {
		return nil, derErr("validity: trailing data")
	}
	if !tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return nil, derErr("subject")
	}
	c.RawSubject = subject
	if c.Subject, err = parseName(subject, "subject"); err != nil {
		return nil, err
	}
	var spki cryptobyte.String
	if !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, derErr("subjectPublicKeyInfo")
	}
	c.RawSubjectPublicKeyInfo = spki
	if c.PublicKey, err = ParsePublicKeyInfo(spki); err != nil {
		return nil, fmt.Errorf("subjectPublicKeyInfo at offset %d: %w", offsetIn(raw, spki), err)
	}
	c.RawPublicKey, _ = c.PublicKey.Bytes()
	for _, t := range []cbasn1.Tag{cbasn1.Tag(1).ContextSpecific(), cbasn1.Tag(2).ContextSpecific()} {
		for _, tt := range []cbasn1.Tag{t, t.Constructed()} {
			if tbs.PeekASN1Tag(tt) {
				if !tbs.SkipASN1(tt) {
					return nil, derErr("uniqueIdentifier")
				}
				c.hasUniqueIDs = true
			}
		}
	}
	if tbs.PeekASN1Tag(cbasn1.Tag(3).Constructed().ContextSpecific()) {
		if c.Version != 3 {
			return nil, derErr("extensions: in a v" + strconv.Itoa(c.Version) + " certificate (RFC 5280 4.1.2.9: v3 only)")
		}
		var exts cryptobyte.String
		if !tbs.ReadASN1(&exts, cbasn1.Tag(3).Constructed().ContextSpecific()) || !exts.ReadASN1(&exts, cbasn1.SEQUENCE) {
			return nil, derErr("extensions")
		}
		if err := c.parseExtensions(exts); err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, derErr("tbsCertificate: trailing data")
	}
	c.Role, c.EUI = c.Subject.Role, c.Subject.EUI
	if c.hasHWModuleName && len(c.HWSerial) == 8 {
		var hw EUI
		copy(hw[:], c.HWSerial)
		// A certificate that names its holder twice, in the subject's
		// x500UniqueIdentifier and in a hardwareModuleName, must name one
		// holder: whoever compares c.EUI must not be shown the other.
		if !c.Subject.EUI.IsZero() && c.Subject.EUI != hw {
			return nil, fmt.Errorf("%w: subject x500UniqueIdentifier %s and subjectAltName hwSerialNum %s name different holders", ErrProfile, c.Subject.EUI, hw)
		}
		c.EUI = hw
	}
	return c, nil
}

// parseSignatureAlgorithms reads the certificate's signatureAlgorithm and
// its tbsCertificate.signature. Both must name ecdsa-with-SHA256; the
// parameters each carries (which RFC 5758 says must be absent, and which
// some issuers write as NULL) are kept for the profile review.
func (c *Certificate) parseSignatureAlgorithms(raw, outer, inner []byte) error {
	outerOID, outerParams, err := parseAlgorithm(outer, "signatureAlgorithm")
	if err != nil {
		return fmt.Errorf("%w at offset %d", err, offsetIn(raw, outer))
	}
	innerOID, innerParams, err := parseAlgorithm(inner, "tbsCertificate.signature")
	if err != nil {
		return fmt.Errorf("%w at offset %d", err, offsetIn(raw, inner))
	}
	c.SignatureAlgorithm, _ = oidFromDER(outerOID)
	if !bytes.Equal(outerOID, innerOID) {
		inOID, _ := oidFromDER(innerOID)
		return perr("", "signatureAlgorithm.match", "signatureAlgorithm %s differs from tbsCertificate.signature %s (RFC 5280 4.1.1.2)", oidName(c.SignatureAlgorithm), oidName(inOID))
	}
	if string(outerOID) != derECDSAWithSHA256 {
		return perr("", "signatureAlgorithm", "signature algorithm %s: only ecdsa-with-SHA256 is accepted", oidName(c.SignatureAlgorithm))
	}
	c.sigAlgOK = true
	c.sigAlgParams = [2][]byte{outerParams, innerParams}
	return nil
}

// parseAlgorithm reads an AlgorithmIdentifier element and returns its OID
// (DER content) and its parameters element, nil when absent. Anything after
// one parameters element is malformed.
func parseAlgorithm(el cryptobyte.String, field string) ([]byte, []byte, error) {
	var seq, oid cryptobyte.String
	if !el.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, nil, derErr(field)
	}
	if _, err := oidFromDER(oid); err != nil {
		return nil, nil, derErr(field + ": object identifier")
	}
	if seq.Empty() {
		return oid, nil, nil
	}
	var params cryptobyte.String
	var tag cbasn1.Tag
	if !seq.ReadAnyASN1Element(&params, &tag) || !seq.Empty() {
		return nil, nil, derErr(field + ": parameters")
	}
	return oid, params, nil
}

func readBitStringBytes(s *cryptobyte.String, field string) ([]byte, error) {
	var bs cryptobyte.String
	if !s.ReadASN1(&bs, cbasn1.BIT_STRING) || len(bs) == 0 || bs[0] != 0 {
		return nil, derErr(field + ": want a BIT STRING of whole octets")
	}
	return bs[1:], nil
}

func readTime(s *cryptobyte.String, field string) (time.Time, timeTag, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, 0, derErr(field + ": UTCTime")
		}
		return t.UTC(), tagUTCTime, nil
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, 0, derErr(field + ": GeneralizedTime")
		}
		return t.UTC(), tagGeneralizedTime, nil
	}
	return t, 0, derErr(field + ": want UTCTime or GeneralizedTime")
}

// parseName reads a Name element (SEQUENCE OF RDN). Unusual values do not
// fail the parse; they mark the attribute for Profile.Check.
func parseName(el cryptobyte.String, field string) (Name, error) {
	var n Name
	var rdns cryptobyte.String
	if !el.ReadASN1(&rdns, cbasn1.SEQUENCE) {
		return n, derErr(field)
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) || set.Empty() {
			return n, derErr(field + ": RelativeDistinguishedName")
		}
		first := len(n.Attributes)
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return n, derErr(field + ": AttributeTypeAndValue")
			}
			typ, err := oidFromDER(oid)
			if err != nil {
				return n, derErr(field + ": attribute type")
			}
			a := Attribute{Type: typ, oid: oid}
			switch string(oid) {
			case derCommonName, derOU:
				if tag != cbasn1.UTF8String && tag != cbasn1.PrintableString {
					a.problem = fmt.Sprintf("%s has ASN.1 tag %d: want UTF8String or PrintableString", oidName(typ), tag)
					a.Value = hex.EncodeToString(val)
					break
				}
				if !utf8.Valid(val) || (tag == cbasn1.PrintableString && !printable(val)) {
					a.problem = fmt.Sprintf("%s is not a valid string", oidName(typ))
					a.Value = hex.EncodeToString(val)
					break
				}
				a.Value = string(val)
				if string(oid) == derCommonName {
					n.CommonName = a.Value
				} else if r, ok := roleCode(a.Value); ok {
					n.Role, n.HasRole = r, true
				} else {
					a.problem = fmt.Sprintf("OU %q is not a Remote Party Role code as two upper-case hex digits", a.Value)
				}
			case derX500UniqueID:
				if tag != cbasn1.BIT_STRING || len(val) != 9 || val[0] != 0 {
					a.problem = "x500UniqueIdentifier must be a 64-bit BIT STRING holding the EUI-64"
					a.Value = hex.EncodeToString(val)
					break
				}
				copy(n.EUI[:], val[1:])
				n.HasEUI = true
				a.Value = n.EUI.String()
			default:
				a.Value = "#" + hex.EncodeToString(val)
			}
			n.Attributes = append(n.Attributes, a)
		}
		if len(n.Attributes)-first > 1 {
			for i := first; i < len(n.Attributes); i++ {
				n.Attributes[i].multiValued = true
			}
		}
	}
	return n, nil
}

// roleCode reads an OU as a role code: exactly two upper-case hex digits,
// whether or not the role is one this package knows.
func roleCode(s string) (Role, bool) {
	if len(s) != 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 8)
	if err != nil || Role(v).OU() != s {
		return 0, false
	}
	return Role(v), true
}

func printable(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" '()+,-./:=?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (c *Certificate) parseExtensions(exts cryptobyte.String) error {
	if exts.Empty() {
		return derErr("extensions: empty SEQUENCE")
	}
	for !exts.Empty() {
		var ext, oid, val cryptobyte.String
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return derErr("extension")
		}
		id, err := oidFromDER(oid)
		if err != nil {
			return derErr("extension: object identifier")
		}
		for _, prev := range c.Extensions {
			if bytes.Equal(prev.oid, oid) {
				return perr("", "extensions.duplicate", "extension %s appears twice (RFC 5280 4.2)", oidName(id))
			}
		}
		e := Extension{ID: id, oid: oid}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.Critical) {
			return derErr("extension " + id.String() + ": critical")
		}
		if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return derErr("extension " + id.String() + ": extnValue")
		}
		e.Value = val
		c.Extensions = append(c.Extensions, e)
		if err := c.parseExtension(e); err != nil {
			return err
		}
	}
	return nil
}

func (c *Certificate) parseExtension(e Extension) error {
	v := cryptobyte.String(e.Value)
	switch string(e.oid) {
	case derKeyUsage:
		ku, err := parseKeyUsage(v)
		if err != nil {
			return err
		}
		c.KeyUsage = ku
	case derBasicConstr:
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return derErr("basicConstraints")
		}
		if seq.PeekASN1Tag(cbasn1.BOOLEAN) && !seq.ReadASN1Boolean(&c.IsCA) {
			return derErr("basicConstraints.cA")
		}
		if seq.PeekASN1Tag(cbasn1.INTEGER) {
			var n int64
			if !seq.ReadASN1Integer(&n) || n < 0 || n > 1<<20 {
				return derErr("basicConstraints.pathLenConstraint")
			}
			c.MaxPathLen = int(n)
		}
		if !seq.Empty() {
			return derErr("basicConstraints: trailing data")
		}
		c.BasicConstraintsValid = true
	case derSKI:
		var id cryptobyte.String
		if !v.ReadASN1(&id, cbasn1.OCTET_STRING) || !v.Empty() {
			return derErr("subjectKeyIdentifier")
		}
		c.SubjectKeyID = id
	case derAKI:
		var seq, id cryptobyte.String
		var has bool
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() ||
			!seq.ReadOptionalASN1(&id, &has, cbasn1.Tag(0).ContextSpecific()) {
			return derErr("authorityKeyIdentifier")
		}
		if has {
			c.AuthorityKeyID = append([]byte{}, id...)
		}
	case derPolicies:
		var seq cryptobyte.String
		if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
			return derErr("certificatePolicies")
		}
		for !seq.Empty() {
			var pi, oid cryptobyte.String
			if !seq.ReadASN1(&pi, cbasn1.SEQUENCE) || !pi.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
				return derErr("certificatePolicies.policyIdentifier")
			}
			if !pi.Empty() && (!pi.SkipASN1(cbasn1.SEQUENCE) || !pi.Empty()) {
				return derErr("certificatePolicies.policyQualifiers")
			}
			o, err := oidFromDER(oid)
			if err != nil {
				return derErr("certificatePolicies.policyIdentifier")
			}
			c.Policies = append(c.Policies, o)
		}
	case derSAN:
		typ, serial, others, err := parseSAN(v)
		if err != nil {
			return err
		}
		c.sanOtherNames = others
		if serial != nil {
			c.HWType, c.HWSerial, c.hasHWModuleName = typ, serial, true
		}
	}
	return nil
}

func parseKeyUsage(v cryptobyte.String) (x509.KeyUsage, error) {
	var bs cryptobyte.String
	if !v.ReadASN1(&bs, cbasn1.BIT_STRING) || !v.Empty() || len(bs) < 1 || bs[0] > 7 || (len(bs) == 1 && bs[0] != 0) {
		return 0, derErr("keyUsage")
	}
	var ku x509.KeyUsage
	for i, b := range bs[1:] {
		for j := 0; j < 8; j++ {
			if b&(0x80>>j) != 0 {
				if i*8+j > 8 {
					return 0, derErr("keyUsage: unknown bit")
				}
				ku |= 1 << (i*8 + j)
			}
		}
	}
	return ku, nil
}

// parseSAN reads GeneralNames and returns the hardwareModuleName, if any,
// and the count of other names.
func parseSAN(v cryptobyte.String) (x509.OID, []byte, int, error) {
	var names cryptobyte.String
	var typ x509.OID
	var serial []byte
	others := 0
	if !v.ReadASN1(&names, cbasn1.SEQUENCE) || !v.Empty() || names.Empty() {
		return typ, nil, 0, derErr("subjectAltName")
	}
	otherName := cbasn1.Tag(0).Constructed().ContextSpecific()
	for !names.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return typ, nil, 0, derErr("subjectAltName.GeneralName")
		}
		if tag != otherName {
			others++
			continue
		}
		var typeID, val cryptobyte.String
		if !gn.ReadASN1(&typeID, cbasn1.OBJECT_IDENTIFIER) || !gn.ReadASN1(&val, cbasn1.Tag(0).Constructed().ContextSpecific()) || !gn.Empty() {
			return typ, nil, 0, derErr("subjectAltName.otherName")
		}
		if string(typeID) != derHWModuleName || serial != nil {
			others++
			continue
		}
		var hmn, hwType, hwSerial cryptobyte.String
		if !val.ReadASN1(&hmn, cbasn1.SEQUENCE) || !val.Empty() ||
			!hmn.ReadASN1(&hwType, cbasn1.OBJECT_IDENTIFIER) || !hmn.ReadASN1(&hwSerial, cbasn1.OCTET_STRING) || !hmn.Empty() {
			return typ, nil, 0, derErr("subjectAltName.hardwareModuleName")
		}
		t, err := oidFromDER(hwType)
		if err != nil {
			return typ, nil, 0, derErr("subjectAltName.hardwareModuleName.hwType")
		}
		typ, serial = t, append([]byte{}, hwSerial...)
	}
	return typ, serial, others, nil
}

// CheckSignatureFrom reports whether parent's key signed c (ECDSA P-256 with
// SHA-256 over the TBSCertificate).
func (c *Certificate) CheckSignatureFrom(parent *Certificate) error {
	if parent == nil || parent.PublicKey == nil {
		return fmt.Errorf("%w: issuer has no P-256 key", ErrSignature)
	}
	if !c.sigAlgOK {
		return fmt.Errorf("%w: algorithm %s is not ecdsa-with-SHA256", ErrSignature, c.SignatureAlgorithm)
	}
	h := sha256.Sum256(c.RawTBS)
	if !ecdsa.VerifyASN1(parent.PublicKey, h[:], c.Signature) {
		return fmt.Errorf("%w: certificate serial %X is not signed by %q", ErrSignature, c.SerialNumber, parent.Subject.String())
	}
	return nil
}

// ParseCertificates reads certificates from PEM ("CERTIFICATE" blocks) or
// from one or more concatenated DER certificates.
func ParseCertificates(data []byte) ([]*Certificate, error) {
	return parseAll(data, "certificate", []string{"CERTIFICATE"}, ParseCertificate)
}

// parseAll reads items from PEM blocks of one of types or, without PEM,
// from concatenated DER, and parses each with parse. Errors give the
// item's position; what names a DER item ("certificate") and types[0] the
// PEM type expected.
func parseAll[T any](data []byte, what string, types []string, parse func([]byte) (T, error)) ([]T, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		var out []T
		rest := data
		for i := 1; ; i++ {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if !slices.Contains(types, b.Type) {
				return nil, fmt.Errorf("smki: PEM block %d is %q, not %s", i, b.Type, types[0])
			}
			v, err := parse(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", i, err)
			}
			out = append(out, v)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: no PEM %s block", ErrMalformed, types[0])
		}
		return out, nil
	}
	ders, err := splitDER(data)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ders))
	for i, d := range ders {
		v, err := parse(d)
		if err != nil {
			return nil, fmt.Errorf("DER %s %d: %w", what, i+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func splitDER(data []byte) ([][]byte, error) {
	s := cryptobyte.String(data)
	var out [][]byte
	for !s.Empty() {
		var el cryptobyte.String
		if !s.ReadASN1Element(&el, cbasn1.SEQUENCE) {
			return nil, derErr(fmt.Sprintf("object %d: not a DER SEQUENCE (nor PEM)", len(out)+1))
		}
		out = append(out, el)
	}
	if len(out) == 0 {
		return nil, derErr("empty input")
	}
	return out, nil
}
