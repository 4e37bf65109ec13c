package smki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrCSR is wrapped by every error about a certificate request that is well
// formed DER but not an acceptable SMKI request.
var ErrCSR = errors.New("smki: unacceptable certificate request")

// CSRTemplate says what a PKCS#10 request asks for.
type CSRTemplate struct {
	// Kind is KindOrganisation (subject CN, OU, x500UniqueIdentifier) or
	// KindDevice (empty subject, hardwareModuleName SAN).
	Kind       Kind
	CommonName string // organisation only, optional
	Role       Role   // organisation only
	// EUI is the organisation EUI-64 or the device EUI-64 (hwSerialNum).
	EUI EUI
	// KeyUsage is exactly digitalSignature or keyAgreement.
	KeyUsage x509.KeyUsage
	// HWType is the device's hwType (device only).
	HWType x509.OID
}

// CSR is a parsed and checked PKCS#10 request.
type CSR struct {
	Raw                     []byte
	RawTBS                  []byte // the signed CertificationRequestInfo
	RawSubject              []byte
	RawSubjectPublicKeyInfo []byte
	Signature               []byte // DER ECDSA-Sig-Value

	Kind       Kind
	Subject    Name
	CommonName string
	Role       Role
	EUI        EUI
	KeyUsage   x509.KeyUsage
	HWType     x509.OID
	HWSerial   []byte

	PublicKey    *ecdsa.PublicKey
	RawPublicKey []byte
	// Extensions are the requested extensions (extensionRequest).
	Extensions []Extension
}

// Profile returns the certificate profile the request asks for.
func (r *CSR) Profile() ProfileID {
	switch {
	case r.Kind == KindDevice && r.KeyUsage == x509.KeyUsageDigitalSignature:
		return ProfileDeviceDS
	case r.Kind == KindDevice:
		return ProfileDeviceKA
	case r.KeyUsage == x509.KeyUsageDigitalSignature:
		return ProfileOrgDS
	}
	return ProfileOrgKA
}

func csrProfile(k Kind, ku x509.KeyUsage) *Profile {
	r := CSR{Kind: k, KeyUsage: ku}
	return Profiles[r.Profile()]
}

// CreateCSR builds and signs a PKCS#10 request (RFC 2986) of the SMKI form:
// an organisation subject (CN, OU=<role>, x500UniqueIdentifier=<EUI>) or
// the empty device subject, and an extensionRequest with the critical key
// usage and, for a device, the critical hardwareModuleName subjectAltName.
// key must hold a P-256 key; it signs with ECDSA and SHA-256.
func CreateCSR(rand io.Reader, tmpl *CSRTemplate, key crypto.Signer) ([]byte, error) {
	if tmpl == nil || key == nil {
		return nil, fmt.Errorf("%w: nil template or key", ErrCSR)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key must be ECDSA P-256", ErrCSR)
	}
	if tmpl.KeyUsage != x509.KeyUsageDigitalSignature && tmpl.KeyUsage != x509.KeyUsageKeyAgreement {
		return nil, fmt.Errorf("%w: key usage %s: want exactly digitalSignature or keyAgreement", ErrCSR, KeyUsageString(tmpl.KeyUsage))
	}
	if tmpl.EUI.IsZero() {
		return nil, fmt.Errorf("%w: EUI is required", ErrCSR)
	}
	var name NameSpec
	kuExt, err := keyUsageExtension(tmpl.KeyUsage)
	if err != nil {
		return nil, err
	}
	exts := [][]byte{kuExt}
	switch tmpl.Kind {
	case KindOrganisation:
		if !tmpl.Role.Valid() || !containsRole(orgRoles, tmpl.Role) {
			return nil, fmt.Errorf("%w: role %s not allowed in an organisation certificate", ErrCSR, tmpl.Role)
		}
		name = NameSpec{CommonName: tmpl.CommonName, Role: tmpl.Role, HasRole: true, EUI: tmpl.EUI, HasEUI: true}
	case KindDevice:
		if tmpl.CommonName != "" {
			return nil, fmt.Errorf("%w: a device request has an empty subject", ErrCSR)
		}
		if b, err := tmpl.HWType.MarshalBinary(); err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: device request needs a hwType", ErrCSR)
		}
		san, err := hardwareModuleNameSAN(tmpl.HWType, tmpl.EUI)
		if err != nil {
			return nil, err
		}
		sanExt, err := extensionDER(OIDExtSubjectAltName, true, san)
		if err != nil {
			return nil, err
		}
		exts = append(exts, sanExt)
	default:
		return nil, fmt.Errorf("%w: kind %s: want organisation or device", ErrCSR, tmpl.Kind)
	}
	subject, err := name.MarshalDER()
	if err != nil {
		return nil, fmt.Errorf("encoding CSR subject: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding CSR public key: %w", err)
	}
	var ib cryptobyte.Builder
	ib.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDExtensionRequest)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, e := range exts {
							b.AddBytes(e)
						}
					})
				})
			})
		})
	})
	info, err := ib.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding CertificationRequestInfo: %w", err)
	}
	digest := sha256.Sum256(info)
	sig, err := key.Sign(rand, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing certificate request: %w", err)
	}
	var ob cryptobyte.Builder
	ob.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(info)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDECDSAWithSHA256) })
		b.AddASN1BitString(sig)
	})
	return ob.Bytes()
}

func extensionDER(oid []int, critical bool, value []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
	v, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding extension %v: %w", oid, err)
	}
	return v, nil
}

// keyUsageExtension encodes a critical keyUsage extension in minimal DER.
func keyUsageExtension(ku x509.KeyUsage) ([]byte, error) {
	if ku <= 0 || ku >= 1<<9 {
		return nil, fmt.Errorf("%w: key usage %d out of range", ErrCSR, ku)
	}
	var bits [2]byte
	last := 0
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			bits[i/8] |= 0x80 >> (i % 8)
			last = i
		}
	}
	n := last/8 + 1
	unused := byte(7 - last%8)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(unused)
		b.AddBytes(bits[:n])
	})
	v, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return extensionDER(OIDExtKeyUsage, true, v)
}

// ParseCSR reads a DER PKCS#10 request of either SMKI form, checks its
// self-signature (ECDSA P-256 with SHA-256), that the key is P-256 with an
// uncompressed point, and that the requested subject, key usage and
// hardwareModuleName fit the organisation or device profile, and returns
// the requested fields.
func ParseCSR(der []byte) (*CSR, error) {
	raw := bytes.Clone(der)
	r := &CSR{Raw: raw}
	in := cryptobyte.String(raw)
	var req cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, derErr("certificationRequest")
	}
	var infoRaw, alg cryptobyte.String
	if !req.ReadASN1Element(&infoRaw, cbasn1.SEQUENCE) {
		return nil, derErr("certificationRequestInfo")
	}
	if !req.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, derErr("signatureAlgorithm")
	}
	sig, err := readBitStringBytes(&req, "signature")
	if err != nil {
		return nil, err
	}
	if !req.Empty() {
		return nil, derErr("certificationRequest: trailing data")
	}
	r.RawTBS, r.Signature = infoRaw, sig
	info := infoRaw
	var version int64
	var subject, spki cryptobyte.String
	if !info.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1Integer(&version) {
		return nil, derErr("certificationRequestInfo.version")
	}
	if !info.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return nil, derErr("certificationRequestInfo.subject")
	}
	if !info.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, derErr("certificationRequestInfo.subjectPKInfo")
	}
	var attrs cryptobyte.String
	if !info.ReadASN1(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) || !info.Empty() {
		return nil, derErr("certificationRequestInfo.attributes")
	}
	r.RawSubject, r.RawSubjectPublicKeyInfo = subject, spki
	if r.Subject, err = parseName(subject, "subject"); err != nil {
		return nil, err
	}
	// A key SMKI refuses is reported after the version and algorithm.
	var keyErr error
	if r.PublicKey, keyErr = ParsePublicKeyInfo(spki); keyErr != nil {
		if errors.Is(keyErr, ErrMalformed) {
			return nil, fmt.Errorf("certificationRequestInfo.subjectPKInfo: %w", keyErr)
		}
	} else {
		r.RawPublicKey, _ = r.PublicKey.Bytes()
	}
	holder := &Certificate{MaxPathLen: -1}
	for !attrs.Empty() {
		var attr, oid, values cryptobyte.String
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return nil, derErr("certificationRequestInfo.attribute")
		}
		if string(oid) != derExtRequest {
			continue
		}
		var exts cryptobyte.String
		if !values.ReadASN1(&exts, cbasn1.SEQUENCE) || !values.Empty() {
			return nil, derErr("extensionRequest")
		}
		if len(holder.Extensions) > 0 {
			return nil, derErr("extensionRequest: repeated")
		}
		if err := holder.parseExtensions(exts); err != nil {
			if errors.Is(err, ErrProfile) {
				return nil, fmt.Errorf("%w: %w", ErrCSR, err)
			}
			return nil, err
		}
	}
	if version != 0 {
		return nil, fmt.Errorf("%w: version %d: want 0 (v1)", ErrCSR, version)
	}
	algOID, params, err := parseAlgorithm(alg, "signatureAlgorithm")
	if err != nil {
		return nil, err
	}
	if string(algOID) != derECDSAWithSHA256 || params != nil {
		return nil, fmt.Errorf("%w: signature algorithm is not ecdsa-with-SHA256", ErrCSR)
	}
	if r.PublicKey == nil {
		return nil, fmt.Errorf("%w: %w", ErrCSR, keyErr)
	}
	digest := sha256.Sum256(r.RawTBS)
	if !ecdsa.VerifyASN1(r.PublicKey, digest[:], r.Signature) {
		return nil, fmt.Errorf("%w: self-signature does not verify", ErrCSR)
	}
	r.Extensions, r.KeyUsage = holder.Extensions, holder.KeyUsage
	r.HWType, r.HWSerial = holder.HWType, holder.HWSerial
	if len(r.Subject.Attributes) == 0 {
		r.Kind = KindDevice
	} else {
		r.Kind = KindOrganisation
	}
	if err := r.check(holder); err != nil {
		return nil, err
	}
	r.CommonName, r.Role = r.Subject.CommonName, r.Subject.Role
	if r.Kind == KindDevice {
		copy(r.EUI[:], r.HWSerial)
	} else {
		r.EUI = r.Subject.EUI
	}
	return r, nil
}

func (r *CSR) check(h *Certificate) error {
	var ku *Extension
	var san *Extension
	for i, e := range r.Extensions {
		switch string(e.oid) {
		case derKeyUsage:
			ku = &r.Extensions[i]
		case derSAN:
			san = &r.Extensions[i]
		default:
			if e.Critical {
				return fmt.Errorf("%w: unknown critical extension %s requested", ErrCSR, e.ID)
			}
		}
	}
	if ku == nil || !ku.Critical {
		return fmt.Errorf("%w: a critical keyUsage must be requested", ErrCSR)
	}
	if r.KeyUsage != x509.KeyUsageDigitalSignature && r.KeyUsage != x509.KeyUsageKeyAgreement {
		return fmt.Errorf("%w: key usage %s: want exactly digitalSignature or keyAgreement", ErrCSR, KeyUsageString(r.KeyUsage))
	}
	if h.BasicConstraintsValid && h.IsCA {
		return fmt.Errorf("%w: requests a CA certificate", ErrCSR)
	}
	p := csrProfile(r.Kind, r.KeyUsage)
	var ws warnings
	p.reviewName(&r.Subject, &ws)
	if len(ws) > 0 {
		return fmt.Errorf("%w: %w", ErrCSR, ws[0].profileError(p.ID))
	}
	switch r.Kind {
	case KindDevice:
		if san == nil || !san.Critical || !h.hasHWModuleName || h.sanOtherNames != 0 {
			return fmt.Errorf("%w: a device request must ask for a critical subjectAltName with one hardwareModuleName", ErrCSR)
		}
		if len(r.HWSerial) != 8 {
			return fmt.Errorf("%w: hwSerialNum of %d bytes: want the 8-byte device EUI-64", ErrCSR, len(r.HWSerial))
		}
	default:
		if san != nil {
			return fmt.Errorf("%w: an organisation request may not ask for a subjectAltName", ErrCSR)
		}
	}
	return nil
}

// ParseCSRs reads requests from PEM ("CERTIFICATE REQUEST" or "NEW
// CERTIFICATE REQUEST" blocks) or concatenated DER.
func ParseCSRs(data []byte) ([]*CSR, error) {
	return parseAll(data, "request", []string{"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}, ParseCSR)
}
