package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"

	"github.com/metertrust/metertrust/smki"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DecodePEMOrDER returns the DER of the first PEM block of the given type in
// b, or b itself if it is not PEM.
func DecodePEMOrDER(b []byte, pemType string) ([]byte, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != pemType {
			return nil, fmt.Errorf("%w: PEM block is %q, want %q", ErrRequest, blk.Type, pemType)
		}
		return blk.Bytes, nil
	}
	if len(b) == 0 || b[0] != 0x30 {
		return nil, fmt.Errorf("%w: neither PEM %q nor DER", ErrRequest, pemType)
	}
	return b, nil
}

// parseCSR reads a PKCS#10 request with the SMKI reader, which checks the
// self-signature, the P-256 key with an uncompressed point, and that the
// requested subject, key usage and hardwareModuleName fit the organisation
// or device form.
func parseCSR(der []byte) (*smki.CSR, error) {
	c, err := smki.ParseCSR(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCSR, err)
	}
	return c, nil
}

func usageOf(ku x509.KeyUsage) Usage {
	if ku == x509.KeyUsageDigitalSignature {
		return UsageDS
	}
	return UsageKA
}

// readHWName reads a SAN that must hold exactly one otherName
// hardwareModuleName {hwType, hwSerialNum (8 bytes)}.
func readHWName(v cryptobyte.String) (x509.OID, smki.EUI, error) {
	var names, on, inner, hmn cryptobyte.String
	var typ asn1.ObjectIdentifier
	var hwType cryptobyte.String
	var serial []byte
	if !v.ReadASN1(&names, cbasn1.SEQUENCE) || !v.Empty() ||
		!names.ReadASN1(&on, cbasn1.Tag(0).ContextSpecific().Constructed()) || !names.Empty() ||
		!on.ReadASN1ObjectIdentifier(&typ) || !typ.Equal(oidHardwareModuleName) ||
		!on.ReadASN1(&inner, cbasn1.Tag(0).ContextSpecific().Constructed()) || !on.Empty() ||
		!inner.ReadASN1(&hmn, cbasn1.SEQUENCE) || !inner.Empty() ||
		!hmn.ReadASN1(&hwType, cbasn1.OBJECT_IDENTIFIER) ||
		!hmn.ReadASN1Bytes(&serial, cbasn1.OCTET_STRING) || !hmn.Empty() {
		return x509.OID{}, smki.EUI{}, fmt.Errorf("subjectAltName is not exactly one hardwareModuleName")
	}
	if len(serial) != 8 {
		return x509.OID{}, smki.EUI{}, fmt.Errorf("hwSerialNum is %d bytes, want an 8-byte EUI-64", len(serial))
	}
	var o x509.OID
	if err := o.UnmarshalBinary(hwType); err != nil {
		return x509.OID{}, smki.EUI{}, fmt.Errorf("hwType: %v", err)
	}
	var eui smki.EUI
	copy(eui[:], serial)
	return o, eui, nil
}

// uncompressedPoint reports whether the SubjectPublicKeyInfo's BIT STRING
// holds an uncompressed point (first byte 0x04).
func uncompressedPoint(spki []byte) bool {
	s := cryptobyte.String(spki)
	var body, alg cryptobyte.String
	var bits []byte
	if !s.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!body.ReadASN1Bytes(&bits, cbasn1.BIT_STRING) {
		return false
	}
	return len(bits) == 66 && bits[0] == 0 && bits[1] == 0x04
}
