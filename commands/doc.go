// Package commands is the byte-exact GBCS layer: it parses and builds the
// messages GB smart meters exchange with remote parties, in every form they
// take, and computes and checks the cryptography around them.
//
// It follows the GB Smart Metering Equipment Technical Specifications
// Companion Specification (GBCS) as the project's notes state it
// (gbcs-security.md, gbcs-payloads.md, both checked against the DCC's
// reference test data): the general-signing block inside an optional DLMS
// general-ciphering MAC header, in the forms of a pre-command, a signed
// pre-command, MAC'd critical and non-critical commands and signed or MAC'd
// responses and alerts (payloads section 1), with the five forms of the
// other-information field; the Remote Party signature (ECDSA P-256/SHA-256,
// raw r||s); the access control broker's MAC (static-static ECDH, the NIST
// SP 800-56A single-step KDF and AES-128-GMAC with a 12-byte tag); the
// encryption of sensitive content in ciphered blocks inside DLMS and GBZ
// payloads (payloads section 2); and table E, the catalogue of every message
// code with the forms its messages take (payloads section 9). The GBCS
// section 18.4 vector and 25 constructed vectors in every form are
// reproduced by the package tests.
//
// The payloads themselves are read and written by the subpackages dlms
// (DLMS COSEM), gbz (GBZ and ZCL) and asn (the CS02 family and the other
// ASN.1 use cases); ReadPayload and ParsePayload choose between them as the
// DCC's parser does.
//
// Keys are reached through small interfaces (crypto.Signer for signatures,
// KeyAgreement for ECDH) so the same code runs on key files and on an HSM.
// Nothing in this package logs or returns private keys or shared secrets (Z);
// DeriveKey and EncryptionKey return a derived key to a caller that owns it.
package commands
