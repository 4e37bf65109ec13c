// Package smki reads and checks certificates of the GB Smart Metering Key
// Infrastructure (SMKI): EUI-64 identities, Remote Party Roles and DCC User
// Roles, the certificate profiles of the SMKI Certificate Policies (root,
// OCA, DCA, organisation and device certificates) as data, a DER reader
// built on cryptobyte for the forms crypto/x509 refuses, PKCS#10 requests
// in the organisation and device forms, and profile-aware path validation
// with CRL and OCSP revocation.
//
// It follows the GB Companion Specification (GBCS) and the SMKI Interface
// Design Specification as summarised in the project's GBCS security notes,
// sections 1 and 2, with RFC 5280 (certificates, method-2 key
// identifiers), RFC 5480 (P-256 keys), RFC 4108 (hardwareModuleName) and
// RFC 2986 (PKCS#10).
//
// The profiles are the one definition of "on profile": ParseCertificate
// reviews every certificate it reads against the profile it matches
// (Profile.Review) and records each deviation as a typed Warning on the
// certificate instead of refusing it, because real certificates (the DCC's
// test PKI among them) lack authority key identifiers, carry NULL signature
// parameters or role codes outside the known list. The reader refuses only
// what security requires: malformed DER, a key that is not an uncompressed
// P-256 point on the curve (ParsePublicKeyInfo, the one SPKI reader), a
// signature algorithm other than ecdsa-with-SHA256. Strict mode
// (ParseCertificateStrict, VerifyOptions.Strict, Profile.Check) refuses
// every deviation; the CA builds its templates with Profile.Template and
// reads back what it signs strictly. Policy OIDs are under the metertrust
// arc described with OIDPolicyOrganisation; other issuers' policies are
// accepted.
package smki
