package smki

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// Object identifiers the SMKI profiles use. The standard ones come from RFC
// 5280 (extensions), RFC 5480 (EC keys), RFC 5758 (ecdsa-with-SHA256), RFC
// 4519 (x500UniqueIdentifier), RFC 4108 (hardwareModuleName) and RFC 2985
// (extensionRequest).
var (
	OIDCommonName           = asn1.ObjectIdentifier{2, 5, 4, 3}
	OIDOrganizationalUnit   = asn1.ObjectIdentifier{2, 5, 4, 11}
	OIDX500UniqueIdentifier = asn1.ObjectIdentifier{2, 5, 4, 45}
	OIDExtSubjectKeyID      = asn1.ObjectIdentifier{2, 5, 29, 14}
	OIDExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 15}
	OIDExtSubjectAltName    = asn1.ObjectIdentifier{2, 5, 29, 17}
	OIDExtBasicConstraints  = asn1.ObjectIdentifier{2, 5, 29, 19}
	OIDExtCertificatePolicy = asn1.ObjectIdentifier{2, 5, 29, 32}
	OIDExtAuthorityKeyID    = asn1.ObjectIdentifier{2, 5, 29, 35}
	OIDHardwareModuleName   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4}
	OIDECDSAWithSHA256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECPublicKey          = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	OIDNamedCurveP256       = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	OIDExtensionRequest     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	// OIDGBSMKIArc is the arc under which the GB SMKI Certificate Policies
	// name their policies.
	OIDGBSMKIArc = asn1.ObjectIdentifier{1, 2, 826, 0, 1, 8641679}
)

// The metertrust OID arc. The GB SMKI Certificate Policies name their
// policies under 1.2.826.0.1.8641679 (OIDGBSMKIArc), but their exact policy
// OIDs are not in any public material this project could check, and that arc
// is not ours to allocate from. metertrust therefore uses an arc of its own,
// minted without registration as ITU-T X.667 / ISO/IEC 9834-8 allow
// ("2.25.<UUID as a decimal integer>", UUID c8b32605-417c-492a-a6c8-d890eb01091c):
//
//	2.25.266775791442633438020620406649511807260   metertrust
//	  .1.1  organisation certificate policy (root, OCA, organisation certificates)
//	  .1.2  device certificate policy (DCA and device certificates)
//	  .2.1  hwType of the metertrust reference meter
//
// The arc is 128 bits wide, which encoding/asn1.ObjectIdentifier cannot hold,
// so these are crypto/x509.OID values, as are all OIDs the reader returns.
// Certificates of other issuers keep their own policy OIDs: the reader and
// path validation require a policy to be present, not that it be ours.
var (
	OIDPolicyOrganisation   = mustOID(metertrustArc + ".1.1")
	OIDPolicyDevice         = mustOID(metertrustArc + ".1.2")
	OIDHWTypeReferenceMeter = mustOID(metertrustArc + ".2.1")
)

const metertrustArc = "2.25.266775791442633438020620406649511807260"

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(fmt.Sprintf("smki: bad built-in OID %s: %v", s, err))
	}
	return o
}

// oidDER returns the content octets of an OID's DER encoding, the form the
// reader compares against.
func oidDER(o asn1.ObjectIdentifier) string {
	b, err := asn1.Marshal(o)
	if err != nil || len(b) < 2 {
		panic(fmt.Sprintf("smki: bad built-in OID %v", o))
	}
	return string(b[2:])
}

var (
	derCommonName      = oidDER(OIDCommonName)
	derOU              = oidDER(OIDOrganizationalUnit)
	derX500UniqueID    = oidDER(OIDX500UniqueIdentifier)
	derSKI             = oidDER(OIDExtSubjectKeyID)
	derKeyUsage        = oidDER(OIDExtKeyUsage)
	derSAN             = oidDER(OIDExtSubjectAltName)
	derBasicConstr     = oidDER(OIDExtBasicConstraints)
	derPolicies        = oidDER(OIDExtCertificatePolicy)
	derAKI             = oidDER(OIDExtAuthorityKeyID)
	derHWModuleName    = oidDER(OIDHardwareModuleName)
	derECDSAWithSHA256 = oidDER(OIDECDSAWithSHA256)
	derECPublicKey     = oidDER(OIDECPublicKey)
	derP256            = oidDER(OIDNamedCurveP256)
	derExtRequest      = oidDER(OIDExtensionRequest)
)

// oidFromDER turns DER content octets into an x509.OID.
func oidFromDER(b []byte) (x509.OID, error) {
	var o x509.OID
	if err := o.UnmarshalBinary(b); err != nil {
		return x509.OID{}, err
	}
	return o, nil
}

// oidName returns a short name for the OIDs the package knows, else the
// dotted form.
func oidName(o x509.OID) string {
	b, err := o.MarshalBinary()
	if err == nil {
		if n, ok := knownOIDNames[string(b)]; ok {
			return n
		}
	}
	return o.String()
}

var knownOIDNames = map[string]string{
	derCommonName:   "commonName",
	derOU:           "organizationalUnitName",
	derX500UniqueID: "x500UniqueIdentifier",
	derSKI:          "subjectKeyIdentifier",
	derKeyUsage:     "keyUsage",
	derSAN:          "subjectAltName",
	derBasicConstr:  "basicConstraints",
	derPolicies:     "certificatePolicies",
	derAKI:          "authorityKeyIdentifier",
	derHWModuleName: "hardwareModuleName",
}
