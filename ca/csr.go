package ca

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"

	"github.com/metertrust/metertrust/smki"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// request is what the CA reads from a PKCS#10 certificate signing request
// (RFC 2986): the P-256 public key (signature checked), the raw subject, and
// the requested key usage and hardwareModuleName from the extensionRequest
// attribute (RFC 2985 section 5.4.2). It is read with cryptobyte because
// organisation CSRs may carry the x500UniqueIdentifier BIT STRING that
// crypto/x509 refuses.
type request struct {
	pub        *ecdsa.PublicKey
	rawSubject []byte
	emptyName  bool
	keyUsage   x509.KeyUsage // 0 when not requested
	kuCritical bool
	hwType     x509.OID // device form only
	hwSerial   smki.EUI
	hasHW      bool
	sanCrit    bool
}

var oidExtensionRequest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}

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

// parseCSR reads and checks a CSR: well-formed DER, ecdsa-with-SHA256
// signature valid under its own P-256 key, uncompressed point.
func parseCSR(der []byte) (*request, error) {
	in := cryptobyte.String(der)
	var csr, info, sigAlg cryptobyte.String
	var rawInfo []byte
	var sig []byte
	if !in.ReadASN1(&csr, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: not a DER SEQUENCE", ErrCSR)
	}
	if !csr.ReadASN1Element((*cryptobyte.String)(&rawInfo), cbasn1.SEQUENCE) ||
		!csr.ReadASN1(&sigAlg, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: malformed CertificationRequest", ErrCSR)
	}
	var sigBits asn1.BitString
	var sigBitsRaw cryptobyte.String
	if !csr.ReadASN1(&sigBitsRaw, cbasn1.BIT_STRING) || !csr.Empty() || len(sigBitsRaw) < 1 || sigBitsRaw[0] != 0 {
		return nil, fmt.Errorf("%w: malformed signature", ErrCSR)
	}
	sigBits.Bytes = sigBitsRaw[1:]
	sig = sigBits.Bytes
	var algOID asn1.ObjectIdentifier
	if !sigAlg.ReadASN1ObjectIdentifier(&algOID) || !algOID.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}) || !sigAlg.Empty() {
		return nil, fmt.Errorf("%w: signature algorithm is not ecdsa-with-SHA256 (without parameters)", ErrCSR)
	}
	info = cryptobyte.String(rawInfo)
	var body cryptobyte.String
	var version int
	var subject, spki []byte
	if !info.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1Integer(&version) || version != 0 ||
		!body.ReadASN1Element((*cryptobyte.String)(&subject), cbasn1.SEQUENCE) ||
		!body.ReadASN1Element((*cryptobyte.String)(&spki), cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: malformed CertificationRequestInfo", ErrCSR)
	}
	pubAny, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrCSR, err)
	}
	pub, ok := pubAny.(*ecdsa.PublicKey)
	if !ok || checkP256(pub) != nil {
		return nil, fmt.Errorf("%w: public key is %T, want ECDSA P-256", ErrCSR, pubAny)
	}
	if !uncompressedPoint(spki) {
		return nil, fmt.Errorf("%w: public key point is not uncompressed", ErrCSR)
	}
	h := sha256.Sum256(rawInfo)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		return nil, fmt.Errorf("%w: signature does not verify under the request's key", ErrCSR)
	}
	r := &request{pub: pub, rawSubject: subject, emptyName: len(subject) == 2}
	var attrs cryptobyte.String
	if body.Empty() {
		return r, nil
	}
	if !body.ReadASN1(&attrs, cbasn1.Tag(0).ContextSpecific().Constructed()) || !body.Empty() {
		return nil, fmt.Errorf("%w: malformed attributes", ErrCSR)
	}
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var typ asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) || !attr.ReadASN1(&values, cbasn1.SET) {
			return nil, fmt.Errorf("%w: malformed attribute", ErrCSR)
		}
		if !typ.Equal(oidExtensionRequest) {
			return nil, fmt.Errorf("%w: unexpected attribute %v", ErrCSR, typ)
		}
		var exts cryptobyte.String
		if !values.ReadASN1(&exts, cbasn1.SEQUENCE) || !values.Empty() {
			return nil, fmt.Errorf("%w: malformed extensionRequest", ErrCSR)
		}
		if err := r.readExtensions(exts); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *request) readExtensions(exts cryptobyte.String) error {
	seen := map[string]bool{}
	for !exts.Empty() {
		var ext cryptobyte.String
		var id asn1.ObjectIdentifier
		var crit bool
		var val cryptobyte.String
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&id) ||
			!ext.ReadOptionalASN1Boolean(&crit, cbasn1.BOOLEAN, false) || !ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return fmt.Errorf("%w: malformed requested extension", ErrCSR)
		}
		if seen[id.String()] {
			return fmt.Errorf("%w: extension %v requested twice", ErrCSR, id)
		}
		seen[id.String()] = true
		switch {
		case id.Equal(oidExtKeyUsage):
			var bits asn1.BitString
			if rest, err := asn1.Unmarshal(val, &bits); err != nil || len(rest) != 0 {
				return fmt.Errorf("%w: malformed requested keyUsage", ErrCSR)
			}
			for i := 0; i < 9; i++ {
				if bits.At(i) != 0 {
					r.keyUsage |= 1 << uint(i)
				}
			}
			r.kuCritical = crit
		case id.Equal(oidExtSubjectAltName):
			if err := r.readHWName(val); err != nil {
				return err
			}
			r.sanCrit = crit
		default:
			return fmt.Errorf("%w: requested extension %v is not in the SMKI profile", ErrCSR, id)
		}
	}
	return nil
}

// readHWName reads a SAN that must hold exactly one otherName
// hardwareModuleName {hwType, hwSerialNum (8 bytes)}.
func (r *request) readHWName(v cryptobyte.String) error {
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
		return fmt.Errorf("%w: requested subjectAltName is not exactly one hardwareModuleName", ErrCSR)
	}
	if len(serial) != 8 {
		return fmt.Errorf("%w: hwSerialNum is %d bytes, want an 8-byte EUI-64", ErrCSR, len(serial))
	}
	var o x509.OID
	if err := o.UnmarshalBinary(hwType); err != nil {
		return fmt.Errorf("%w: hwType: %v", ErrCSR, err)
	}
	r.hwType, r.hasHW = o, true
	copy(r.hwSerial[:], serial)
	return nil
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

// checkDeviceRequest checks a device CSR against the GBCS device CSR form
// (CS02c): empty subject, a critical keyUsage with exactly one of
// digitalSignature or keyAgreement, a critical hardwareModuleName SAN.
func (r *request) checkDevice() (Usage, error) {
	switch {
	case !r.emptyName:
		return "", fmt.Errorf("%w: device request subject must be empty", ErrCSR)
	case !r.hasHW:
		return "", fmt.Errorf("%w: device request lacks the hardwareModuleName subjectAltName", ErrCSR)
	case !r.sanCrit:
		return "", fmt.Errorf("%w: device request subjectAltName must be critical", ErrCSR)
	}
	return r.checkUsage(true)
}

// checkUsage returns the usage the request asks for: exactly one of
// digitalSignature or keyAgreement, requested critical. An organisation
// request (required=false) may omit key usage; the issuer's usage decides.
func (r *request) checkUsage(required bool) (Usage, error) {
	switch {
	case r.keyUsage == 0 && !required:
		return "", nil
	case r.keyUsage == x509.KeyUsageDigitalSignature:
		if !r.kuCritical {
			return "", fmt.Errorf("%w: requested keyUsage must be critical", ErrCSR)
		}
		return UsageDS, nil
	case r.keyUsage == x509.KeyUsageKeyAgreement:
		if !r.kuCritical {
			return "", fmt.Errorf("%w: requested keyUsage must be critical", ErrCSR)
		}
		return UsageKA, nil
	}
	return "", fmt.Errorf("%w: requested keyUsage %#x must be exactly one of digitalSignature or keyAgreement", ErrCSR, r.keyUsage)
}
