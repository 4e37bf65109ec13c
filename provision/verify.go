package provision

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// Verify checks a detached signature over the exact bytes of a file: sig
// is the base64 of an ASN.1 DER ECDSA-Sig-Value (what `openssl dgst -sha256
// -sign key.pem FILE | base64` prints; whitespace and line breaks in it are
// ignored) by the key of manufacturer, which must be an SMKI organisation
// certificate for digital signing. A key-agreement certificate is refused
// with ErrCertificate: its key derives shared secrets and never signs. Verify
// checks neither the certificate's path nor its revocation; the caller does,
// against its own trust anchors.
func Verify(data, sig []byte, manufacturer *smki.Certificate) error {
	if err := CheckSigner(manufacturer); err != nil {
		return err
	}
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(sig), nil)))
	if err != nil {
		return fmt.Errorf("%w: not base64: %v", ErrSignature, err)
	}
	if len(der) == 0 {
		return fmt.Errorf("%w: empty signature", ErrSignature)
	}
	digest := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(manufacturer.PublicKey, digest[:], der) {
		return fmt.Errorf("%w: not by the key of the organisation certificate %s (serial %X) over these %d bytes",
			ErrSignature, manufacturer.EUI, manufacturer.SerialNumber, len(data))
	}
	return nil
}

// CheckSigner reports whether c can sign provisioning files: an SMKI
// organisation certificate whose key usage is digitalSignature.
func CheckSigner(c *smki.Certificate) error {
	switch {
	case c == nil || c.PublicKey == nil:
		return fmt.Errorf("%w: no certificate", ErrCertificate)
	case c.Kind != smki.KindOrganisation:
		return fmt.Errorf("%w: a %s certificate: a provisioning file is signed with a manufacturer's organisation certificate", ErrCertificate, c.Kind)
	case c.KeyUsage == x509.KeyUsageKeyAgreement:
		return fmt.Errorf("%w: organisation certificate %s (serial %X) is for key agreement; a provisioning file is signed with the manufacturer's digital-signing (DS) key",
			ErrCertificate, c.EUI, c.SerialNumber)
	case c.KeyUsage != x509.KeyUsageDigitalSignature:
		return fmt.Errorf("%w: organisation certificate %s (serial %X) has key usage %s, want digitalSignature",
			ErrCertificate, c.EUI, c.SerialNumber, smki.KeyUsageString(c.KeyUsage))
	}
	return nil
}

// Open verifies the signature of a file (Verify), reads it (Read) and
// checks that its header names the manufacturer of the certificate: the
// one call an importer makes. A bad signature refuses the file before a
// byte of it is parsed.
func Open(data, sig []byte, manufacturer *smki.Certificate, opts Options) (*File, error) {
	if err := Verify(data, sig, manufacturer); err != nil {
		return nil, err
	}
	f, err := Read(bytes.NewReader(data), opts)
	if err != nil {
		return nil, err
	}
	if f.Header.Manufacturer != manufacturer.EUI {
		return nil, fmt.Errorf("%w: line 1 (header): manufacturer %s, but the file is signed by %s", ErrFormat, f.Header.Manufacturer, manufacturer.EUI)
	}
	return f, nil
}
