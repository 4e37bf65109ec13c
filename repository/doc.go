// Package repository is the SMKI certificate repository service: an HTTP
// API, in the manner of the SMKI Repository Interface Design Specification
// (SMKI RID) of the GB Smart Energy Code, through which anyone may find the
// certificates of GB smart metering by EUI-64, Remote Party Role, DCC User
// Role, key usage, kind and serial (GBCS section 2; the project's GBCS
// security notes, sections 1 and 2), fetch CA certificates and the latest
// CRLs (RFC 5280 section 5), and ask for certificate status by OCSP
// (RFC 6960, with the caching profile of RFC 5019). OCSP is answered with the
// responses the CAs signed ahead of time into the store (StoredOCSP): the
// repository holds no key for it.
//
// The repository holds no private key at all: it neither signs nor revokes.
// Revocation is done by the CA service, metertrust serve ca (POST
// /v1/revocations there), which signs the "revoked" OCSP response into the
// store at once; the CAs sign their CRLs into the same store, and the
// repository serves both from there.
//
// Reads are open. The one write (publishing a certificate issued
// elsewhere) needs an operator bearer token; the server keeps only the
// SHA-256 of each token and compares digests in constant time, through
// package operator's credentials, in the one credentials file format every
// metertrust service shares (LoadOperators reads it with operator.ParseFile;
// the repository's former spelling is read until the next release, with a
// warning). Every write is written to the audit log before it is attempted
// and after it ends, and every refused write is audited.
//
// Errors are answered with RFC 9457 problem details
// (application/problem+json) by one error handler (package problem) that
// maps each error kind (the Err sentinels) to its HTTP status. The OpenAPI
// 3.1 description of the API is docs/api/repository.yaml in the source tree.
//
// The package declares the small interfaces it consumes (CertificateFinder,
// CAFinder, CRLFinder, Auditor, Publisher, Responder, OCSPSource); the
// store satisfies them.
package repository
