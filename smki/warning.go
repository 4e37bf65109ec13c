package smki

import (
	"errors"
	"fmt"
)

// WarningCode names one kind of deviation from the SMKI certificate
// profiles: something the profile forbids or requires that real
// certificates (the DCC test PKI among them) get wrong without harm to
// security. The codes are stable: tools match on them and `metertrust smki
// show` prints them.
type WarningCode string

// The deviations the reader reports. Each constant's comment says which
// rule of the GBCS security notes section 2 (or RFC 5280) is broken.
const (
	// WarnMissingAuthorityKeyID: a certificate that is not self-signed has
	// no authorityKeyIdentifier (or one without keyIdentifier); path
	// validation then chains by name and signature alone.
	WarnMissingAuthorityKeyID WarningCode = "missing-authority-key-id"
	// WarnSignatureAlgorithmParameters: ecdsa-with-SHA256 carries
	// parameters (typically NULL, 05 00) in the certificate's
	// signatureAlgorithm or in tbsCertificate.signature; RFC 5758 section
	// 3.2 says they must be absent.
	WarnSignatureAlgorithmParameters WarningCode = "signature-algorithm-parameters"
	// WarnUnknownRole: the subject OU is a role code (two upper-case hex
	// digits) outside the Remote Party Roles this package knows.
	WarnUnknownRole WarningCode = "unknown-role"
	// WarnRoleNotAllowed: the subject OU is a known role that the profile
	// does not allow (OU=00 on an organisation certificate, say).
	WarnRoleNotAllowed WarningCode = "role-not-allowed"
	// WarnKeyIDLength: a subject or authority key identifier is not the 8
	// bytes of RFC 5280 section 4.2.1.2 method 2 (often the 20-byte
	// method 1).
	WarnKeyIDLength WarningCode = "key-id-length"
	// WarnSubjectKeyIDMethod: an 8-byte subject key identifier that is not
	// method 2 over the subject public key.
	WarnSubjectKeyIDMethod WarningCode = "subject-key-id-method"
	// WarnMissingSubjectKeyID: no subjectKeyIdentifier extension.
	WarnMissingSubjectKeyID WarningCode = "missing-subject-key-id"
	// WarnRootAuthorityKeyID: a root's authority key identifier differs
	// from its subject key identifier.
	WarnRootAuthorityKeyID WarningCode = "root-authority-key-id"
	// WarnKeyUsageNotCritical: keyUsage is present but not critical.
	WarnKeyUsageNotCritical WarningCode = "key-usage-not-critical"
	// WarnPoliciesNotCritical: certificatePolicies is present but not
	// critical.
	WarnPoliciesNotCritical WarningCode = "certificate-policies-not-critical"
	// WarnMissingPolicies: no certificatePolicies extension, or one
	// without a policy.
	WarnMissingPolicies WarningCode = "missing-certificate-policies"
	// WarnKeyUsage: the key usage bits are not exactly the profile's.
	WarnKeyUsage WarningCode = "key-usage"
	// WarnBasicConstraints: basicConstraints does not have the profile's
	// cA flag or pathLenConstraint.
	WarnBasicConstraints WarningCode = "basic-constraints"
	// WarnExtensionCriticality: a known extension other than keyUsage and
	// certificatePolicies has the wrong criticality.
	WarnExtensionCriticality WarningCode = "extension-criticality"
	// WarnMissingExtension: a required extension other than the key
	// identifiers and certificatePolicies is absent.
	WarnMissingExtension WarningCode = "missing-extension"
	// WarnForbiddenExtension: an extension the profile forbids (a
	// subjectAltName on a CA or organisation certificate).
	WarnForbiddenExtension WarningCode = "forbidden-extension"
	// WarnUnknownCriticalExtension: a critical extension this package does
	// not know. The certificate reads, but path validation refuses it
	// (RFC 5280 section 6.1.3).
	WarnUnknownCriticalExtension WarningCode = "unknown-critical-extension"
	// WarnSubjectForm: the subject name does not have the profile's shape
	// (attributes missing, extra, repeated, multi-valued or of the wrong
	// ASN.1 type).
	WarnSubjectForm WarningCode = "subject-form"
	// WarnRootNotSelfSigned: a root-shaped certificate whose issuer is not
	// its subject.
	WarnRootNotSelfSigned WarningCode = "root-not-self-signed"
	// WarnHardwareModuleName: a device certificate's subjectAltName is not
	// exactly one hardwareModuleName with an 8-byte hwSerialNum.
	WarnHardwareModuleName WarningCode = "hardware-module-name"
	// WarnVersion: not an X.509 v3 certificate.
	WarnVersion WarningCode = "version"
	// WarnSerialNumber: a serial number that is not positive or is longer
	// than 20 octets (RFC 5280 section 4.1.2.2).
	WarnSerialNumber WarningCode = "serial-number"
	// WarnUniqueIdentifiers: issuerUniqueID or subjectUniqueID present
	// (RFC 5280 section 4.1.2.8).
	WarnUniqueIdentifiers WarningCode = "unique-identifiers"
	// WarnValidityEncoding: a time not encoded as RFC 5280 section 4.1.2.5
	// says (UTCTime through 2049, GeneralizedTime from 2050).
	WarnValidityEncoding WarningCode = "validity-encoding"
	// WarnValidityOrder: notBefore is not before notAfter.
	WarnValidityOrder WarningCode = "validity-order"
	// WarnValidityPeriod: notAfter is not the profile's (99991231235959Z
	// for a device) or the period exceeds the profile's maximum.
	WarnValidityPeriod WarningCode = "validity-period"
	// WarnNoProfile: the certificate has the shape of no SMKI profile (a
	// CA whose OU is neither 00 nor 07, an end-entity certificate with
	// both or neither of digitalSignature and keyAgreement). It reads with
	// Kind KindUnknown, and path validation refuses it.
	WarnNoProfile WarningCode = "no-matching-profile"
)

// Warning is one deviation from the SMKI profile that the reader accepted.
type Warning struct {
	Code    WarningCode `json:"code"`
	Message string      `json:"message"`
}

// String returns "code: message".
func (w Warning) String() string { return string(w.Code) + ": " + w.Message }

// ErrDeviation is wrapped, with a *ProfileError naming the warning's code,
// by what strict mode returns for a certificate that deviates from its
// profile: ParseCertificateStrict and Verify with VerifyOptions.Strict.
var ErrDeviation = errors.New("smki: certificate deviates from the SMKI profile")

// ParseCertificateStrict is ParseCertificate that refuses any deviation from
// the SMKI profile: the first warning becomes an error wrapping ErrDeviation
// and a *ProfileError whose Code and Rule are the warning's code. The CA
// reads back what it issues with it.
func ParseCertificateStrict(der []byte) (*Certificate, error) {
	c, err := ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := c.strictErr(); err != nil {
		return nil, err
	}
	return c, nil
}

// strictErr returns the strict-mode error for c's first warning, or nil.
func (c *Certificate) strictErr() error {
	if len(c.Warnings) == 0 {
		return nil
	}
	w := c.Warnings[0]
	return fmt.Errorf("%w: %w", ErrDeviation, w.profileError(c.Profile))
}

func (w Warning) profileError(p ProfileID) *ProfileError {
	return &ProfileError{Profile: p, Rule: string(w.Code), Code: w.Code, Detail: w.Message}
}

// warnings collects deviations in the order they are found.
type warnings []Warning

func (ws *warnings) add(code WarningCode, format string, args ...any) {
	*ws = append(*ws, Warning{Code: code, Message: fmt.Sprintf(format, args...)})
}
