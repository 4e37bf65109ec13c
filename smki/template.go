package smki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrTemplate is wrapped by every error about a TemplateRequest.
var ErrTemplate = errors.New("smki: invalid certificate request for profile")

// TemplateRequest holds what varies between certificates of one profile.
type TemplateRequest struct {
	SerialNumber *big.Int
	// NotBefore is required. NotAfter defaults to NotBefore plus the
	// profile's DefaultValidity; device certificates always get
	// NeverExpires.
	NotBefore, NotAfter time.Time
	CommonName          string
	// Role is the subject role of an organisation certificate (root and OCA
	// roles are fixed by their profiles).
	Role Role
	// EUI is the organisation or device EUI-64.
	EUI EUI
	// HWType is the hardwareModuleName hwType of a device certificate.
	HWType    x509.OID
	PublicKey *ecdsa.PublicKey
	// Policies, when not empty, replaces the profile's policy OIDs.
	Policies []x509.OID
}

// Template returns a crypto/x509 template for a certificate of profile p,
// for x509.CreateCertificate with the issuer's certificate as parent (itself
// for the root). It sets RawSubject (built here, because crypto/x509 cannot
// write a BIT STRING x500UniqueIdentifier through pkix.Name on every path),
// the key usage, basic constraints, the method-2 subject key identifier and,
// as ExtraExtensions, the critical certificatePolicies and the device's
// critical hardwareModuleName subjectAltName. crypto/x509 copies the
// authority key identifier from the parent's subject key identifier. The
// result should be read back with ParseCertificate and checked with p.Check.
func (p *Profile) Template(req TemplateRequest) (*x509.Certificate, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil profile", ErrTemplate)
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 || len(req.SerialNumber.Bytes()) > 20 {
		return nil, fmt.Errorf("%w %s: serial number must be positive and at most 20 octets", ErrTemplate, p.ID)
	}
	if req.PublicKey == nil || req.PublicKey.Curve != elliptic.P256() || KeyID(req.PublicKey) == nil {
		return nil, fmt.Errorf("%w %s: public key must be a valid P-256 key", ErrTemplate, p.ID)
	}
	if req.NotBefore.IsZero() {
		return nil, fmt.Errorf("%w %s: notBefore is required", ErrTemplate, p.ID)
	}
	notBefore := req.NotBefore.UTC().Truncate(time.Second)
	notAfter := req.NotAfter.UTC().Truncate(time.Second)
	switch {
	case !p.FixedNotAfter.IsZero():
		if !req.NotAfter.IsZero() && !notAfter.Equal(p.FixedNotAfter) {
			return nil, fmt.Errorf("%w %s: notAfter is fixed at 99991231235959Z", ErrTemplate, p.ID)
		}
		notAfter = p.FixedNotAfter
	case req.NotAfter.IsZero():
		notAfter = notBefore.Add(p.DefaultValidity)
	}
	if !notBefore.Before(notAfter) {
		return nil, fmt.Errorf("%w %s: notBefore must be before notAfter", ErrTemplate, p.ID)
	}
	if p.MaxValidity > 0 && notAfter.Sub(notBefore) > p.MaxValidity {
		return nil, fmt.Errorf("%w %s: validity exceeds %s", ErrTemplate, p.ID, p.MaxValidity)
	}
	subject, err := p.subjectDER(req)
	if err != nil {
		return nil, err
	}
	policies := req.Policies
	if len(policies) == 0 {
		policies = p.Policies
	}
	polExt, err := PoliciesExtension(policies)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrTemplate, p.ID, err)
	}
	t := &x509.Certificate{
		SerialNumber:       new(big.Int).Set(req.SerialNumber),
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		RawSubject:         subject,
		NotBefore:          notBefore,
		NotAfter:           notAfter,
		KeyUsage:           p.KeyUsage,
		SubjectKeyId:       KeyID(req.PublicKey),
		ExtraExtensions:    []pkix.Extension{polExt},
	}
	if p.IsCA {
		t.BasicConstraintsValid, t.IsCA = true, true
		t.MaxPathLen = p.MaxPathLen
		t.MaxPathLenZero = p.MaxPathLen == 0
	}
	if p.Kind == KindDevice {
		if b, err := req.HWType.MarshalBinary(); err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w %s: hwType is required", ErrTemplate, p.ID)
		}
		san, err := HardwareModuleNameExtension(req.HWType, req.EUI)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %v", ErrTemplate, p.ID, err)
		}
		t.ExtraExtensions = append(t.ExtraExtensions, san)
	}
	return t, nil
}

func (p *Profile) subjectDER(req TemplateRequest) ([]byte, error) {
	f := p.Subject
	var cn string
	if f.CommonName != Forbidden {
		cn = strings.TrimSpace(req.CommonName)
	} else if req.CommonName != "" {
		return nil, fmt.Errorf("%w %s: a %s certificate has no common name", ErrTemplate, p.ID, p.Kind)
	}
	if f.CommonName == Required && cn == "" {
		return nil, fmt.Errorf("%w %s: common name is required", ErrTemplate, p.ID)
	}
	role := req.Role
	if f.RoleFixed {
		role = f.Role
	}
	if f.OU != Forbidden && !f.RoleFixed && (!role.Valid() || (len(f.Roles) > 0 && !containsRole(f.Roles, role))) {
		return nil, fmt.Errorf("%w %s: role %s not allowed", ErrTemplate, p.ID, role)
	}
	if (f.UniqueID == Required || p.Kind == KindDevice) && req.EUI.IsZero() {
		return nil, fmt.Errorf("%w %s: EUI is required", ErrTemplate, p.ID)
	}
	n := NameSpec{CommonName: cn}
	if f.OU != Forbidden {
		n.Role, n.HasRole = role, true
	}
	if f.UniqueID != Forbidden {
		n.EUI, n.HasEUI = req.EUI, true
	}
	return n.MarshalDER()
}

// NameSpec describes an SMKI distinguished name to encode.
type NameSpec struct {
	CommonName string // omitted when empty
	Role       Role
	HasRole    bool // write OU=<role as two hex digits>
	EUI        EUI
	HasEUI     bool // write x500UniqueIdentifier=<EUI as a 64-bit BIT STRING>
}

// MarshalDER encodes the name as DER: each attribute in its own RDN in the
// order CN, OU, x500UniqueIdentifier, strings as UTF8String. An empty spec
// gives the empty name (30 00) of device certificates.
func (n NameSpec) MarshalDER() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if n.CommonName != "" {
			addATV(b, OIDCommonName, cbasn1.UTF8String, []byte(n.CommonName))
		}
		if n.HasRole {
			addATV(b, OIDOrganizationalUnit, cbasn1.UTF8String, []byte(n.Role.OU()))
		}
		if n.HasEUI {
			addATV(b, OIDX500UniqueIdentifier, cbasn1.BIT_STRING, append([]byte{0}, n.EUI[:]...))
		}
	})
	return b.Bytes()
}

func addATV(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, tag cbasn1.Tag, val []byte) {
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(val) })
		})
	})
}

func addOID(b *cryptobyte.Builder, o x509.OID) {
	der, err := o.MarshalBinary()
	if err != nil {
		b.SetError(err)
		return
	}
	b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(der) })
}

// PoliciesExtension returns a critical certificatePolicies extension
// holding the given policy OIDs without qualifiers.
func PoliciesExtension(policies []x509.OID) (pkix.Extension, error) {
	if len(policies) == 0 {
		return pkix.Extension{}, errors.New("at least one certificate policy is required")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, p := range policies {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { addOID(b, p) })
		}
	})
	v, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encoding certificatePolicies: %w", err)
	}
	return pkix.Extension{Id: OIDExtCertificatePolicy, Critical: true, Value: v}, nil
}

// HardwareModuleNameExtension returns the critical subjectAltName of a
// device certificate: one otherName hardwareModuleName (RFC 4108) with the
// given hwType and the device EUI-64 as hwSerialNum.
func HardwareModuleNameExtension(hwType x509.OID, eui EUI) (pkix.Extension, error) {
	v, err := hardwareModuleNameSAN(hwType, eui)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: OIDExtSubjectAltName, Critical: true, Value: v}, nil
}

func hardwareModuleNameSAN(hwType x509.OID, eui EUI) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(OIDHardwareModuleName)
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addOID(b, hwType)
					b.AddASN1OctetString(eui[:])
				})
			})
		})
	})
	v, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding hardwareModuleName: %w", err)
	}
	return v, nil
}
