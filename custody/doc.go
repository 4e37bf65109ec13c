// Package custody is metertrust's one key custody: the only package that
// touches private key material, whether key files or objects in a PKCS#11
// token (DESIGN.md, "Keys and issuance"; decision record 009). Everything
// else holds private keys only as crypto.Signer or Agreement values obtained
// here.
//
// Keys are P-256 (GBCS section 2 and the SMKI certificate profiles) and are
// named by URI:
//
//	softkms:path=keys/NAME.key             a PEM key file (relative to a data directory)
//	pkcs11:id=0x...;object=NAME            a key in the token of a Custody
//	pkcs11:module-path=...;token=...;object=NAME?pin-source=FILE
//	                                       a key in a token, named in full
//
// It has three parts: the software backend (Generate, ParsePEM, ReadFile,
// WriteFile: in-memory keys and the PEM files we accept, PKCS#8 "PRIVATE
// KEY" and SEC 1 "EC PRIVATE KEY"); Token, a key in a PKCS#11 token that
// both signs and derives (CKM_ECDH1_DERIVE, decision record 003); and
// Custody, the key manager of the CAs and of the in-process system, which
// creates, hands out and destroys named keys in files or a token (signing
// keys on a token through go.step.sm/crypto/kms/pkcs11).
//
// Errors never quote key material or a PIN.
package custody

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
)

var (
	// ErrKey is wrapped by errors about a key that cannot be created,
	// read, loaded or destroyed, or that is not a P-256 key.
	ErrKey = errors.New("custody: key custody")
	// ErrExists is wrapped when creating a key would overwrite one.
	ErrExists = errors.New("custody: key already exists")
	// ErrConfig is wrapped by errors in a key's URI or a token's set-up.
	ErrConfig = errors.New("custody: bad key configuration")
)

// Agreement is a P-256 static key-agreement private key (SP 800-56A ECDH,
// GBCS section 5). ECDH returns the shared secret Z, the x coordinate of
// the shared point, which callers must neither log nor keep longer than
// they need it. Software and Token keys satisfy it, and so do the
// key-agreement interfaces of packages commands, device and router.
type Agreement interface {
	ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error)
	PublicKey() *ecdh.PublicKey
}

// Key is a private key that both signs and agrees, as a new key-agreement
// key must in order to sign its own certificate request. Software and Token
// keys satisfy it.
type Key interface {
	crypto.Signer
	Agreement
}
