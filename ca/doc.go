// Package ca is the issuing side of the metertrust SMKI: the ceremonies that
// create the Root, Organisation CA (OCA), batch Device CAs (DCA) and the
// separate DCCKI hierarchy for the router's mutual TLS, with their keys in
// the key custody of package keys (key files or PKCS#11), issuance of
// organisation and device certificates from PKCS#10 requests with
// pre-issuance linting, bulk device issuance for simulations and from
// manufacturers' provisioning files (ImportDevices), revocation,
// CRLs, and OCSP responses signed ahead of time (at issuance, at revocation
// and by RefreshOCSP before they expire) for the repository to serve.
//
// Certificates follow the SMKI certificate profiles of the GB Smart Metering
// Key Infrastructure Certificate Policy and GBCS (Great Britain Companion
// Specification) section 4.3, as summarised in the project's GBCS security
// notes, section 2: X.509 v3, P-256 keys, ecdsa-with-SHA256, critical key
// usage and certificate policies, 8-byte key identifiers (RFC 5280 section
// 4.2.1.2 method 2), organisation subjects carrying the EUI-64 as an
// x500UniqueIdentifier BIT STRING and device certificates with an empty
// subject and a critical hardwareModuleName subject alternative name (RFC
// 4108). CRLs follow RFC 5280 section 5, OCSP responses RFC 6960.
//
// Issuance runs in two steps, as Let's Encrypt Boulder's issuance package
// does: the certificate is first built and signed with a throwaway key of the
// same algorithm and linted (zlint's RFC 5280 and RFC 5480 lints plus the
// SMKI profile lints of this package); only then is it signed with the CA key,
// and the result is read back with the SMKI reader and its signature checked
// before it is stored.
//
// Batch Device CAs (a project rule): a DCA is opened for a fixed quota;
// every device certificate it signs counts one against the quota (reserved
// in the store before signing), so a meter with a DS and a KA certificate
// counts two. When the quota is used up, or when the batch is closed, its
// private key is destroyed in the key store and the destruction audited,
// while the CA certificate stays published so device certificates keep
// validating. Before its key is destroyed the batch certifies a delegated
// OCSP responder (RFC 6960 section 4.2.2.2, decision record 013), whose key
// signs the OCSP responses about the batch's certificates from then on: a
// closed batch's certificates can still be revoked (by OCSP alone: its
// final CRL does not change) and their responses are refreshed. A batch
// closed before responders existed can sign nothing: its certificates'
// responses are served until they expire, then its final CRL is their
// status.
//
// Trust levels: roots sign only in ceremonies (Init, OpenBatch, and a
// root's CRL); the online issuers are the OCA, open batch DCAs and the DCCKI
// TLS CA, whose keys an Authority loads on first use.
//
// DCCKI identities (our rule): a DCC user's client certificate for mutual
// TLS to the router carries the user's EUI-64 and DCC User Role twice, in
// the subject (O=metertrust DCCKI users, OU=<role>, CN=<EUI as 16 hex
// digits>) and in a URI subject alternative name
// urn:metertrust:user:<EUI>:<role>; TLSUser reads and cross-checks both.
// Server certificates carry DNS and IP SANs. Both are ordinary X.509 that
// crypto/tls reads, issued by the DCCKI TLS CA under the DCCKI root.
//
// Linting: zlint runs its RFC 5280 and RFC 5480 sources only (the Web PKI
// sources do not apply). Excused: e_subject_dn_not_printable_characters for
// organisation certificates (the BIT STRING EUI is the GB profile) and
// e_ext_authority_key_identifier_no_key_identifier for self-signed roots
// (the throwaway signature hides self-signedness from zlint). zlint's parser
// cannot read the metertrust 2.25.<UUID> policy OIDs (arcs beyond 63 bits),
// so the copy zlint sees carries anyPolicy in their place; the exact copy is
// checked by the SMKI reader, and the final certificate must have the same
// TBSCertificate as that exact copy.
package ca
