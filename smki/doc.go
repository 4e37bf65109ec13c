// Package smki reads and checks certificates of the GB Smart Metering Key
// Infrastructure (SMKI): EUI-64 identities, Remote Party Roles and DCC User
// Roles, the certificate profiles of the SMKI Certificate Policy (root, OCA,
// DCA, organisation and device certificates), a DER reader for the forms
// crypto/x509 refuses, and profile-aware path validation.
//
// It follows the GB Companion Specification (GBCS) and the SMKI Interface
// Design Specification as summarised in the project's GBCS security notes,
// sections 1 and 2.
package smki
