// Package commands is the byte-exact GBCS security layer: it parses and builds
// the messages GB smart meters exchange with remote parties, and computes and
// checks the cryptography around them.
//
// It follows the GB Smart Metering Equipment Technical Specifications
// Companion Specification (GBCS): the general-signing block inside a DLMS
// general-ciphering MAC header (GBCS section 4.3), the Remote Party signature
// (ECDSA P-256/SHA-256, raw r||s, section 4.3.3), the access control broker's
// MAC (static-static ECDH, the NIST SP 800-56A single-step KDF and AES-128-GMAC
// with a 12-byte tag, section 5), encryption of sensitive payloads under the
// transport key (section 6), unknown remote parties (section 8) and the CS02
// security credential payloads (section 9, use cases CS02a to CS02d). The
// GBCS section 18.4 test vector is reproduced by the package tests.
//
// Where GBCS leaves an encoding open the package chooses one and says so in
// the doc comment of the type concerned and in docs/gbcs.md; those encodings
// are marked "(our rule)".
//
// Keys are reached through small interfaces (crypto.Signer for signatures,
// KeyAgreement for ECDH) so the same code runs on key files and on an HSM.
// Nothing in this package logs or returns private keys, shared secrets (Z)
// or derived keys except DeriveKey, whose output the caller owns.
package commands
