package asn

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Octets is the content of an OCTET STRING of no fixed size. It marshals to
// JSON as a lower-case hex string.
type Octets []byte

// MarshalText implements encoding.TextMarshaler.
func (o Octets) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, o), nil }

// UnmarshalText implements encoding.TextUnmarshaler; the result is never
// nil, so an empty string stays a present, empty value.
func (o *Octets) UnmarshalText(b []byte) error {
	v, err := hex.AppendDecode(Octets{}, b)
	if err != nil {
		return fmt.Errorf("asn: octets: %w", err)
	}
	*o = v
	return nil
}

// EntityID is an EntityId, OCTET STRING (SIZE(8)): the EUI-64 of a device or
// remote party. It marshals to JSON as 16 lower-case hex digits.
type EntityID [8]byte

// EUI returns the identifier as an smki.EUI.
func (e EntityID) EUI() smki.EUI { return smki.EUI(e) }

// String returns the identifier as 16 upper-case hex digits.
func (e EntityID) String() string { return fmt.Sprintf("%X", e[:]) }

// MarshalText implements encoding.TextMarshaler.
func (e EntityID) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, e[:]), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *EntityID) UnmarshalText(b []byte) error { return unmarshalHex8(b, e[:], "entity id") }

// KeyID is an 8-byte subject key identifier, as trust-anchor cells and
// replacement outcomes carry it. It marshals to JSON as lower-case hex.
type KeyID [8]byte

// String returns the key identifier as 16 lower-case hex digits.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler.
func (k KeyID) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, k[:]), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *KeyID) UnmarshalText(b []byte) error { return unmarshalHex8(b, k[:], "key id") }

func unmarshalHex8(b, out []byte, what string) error {
	if len(b) != 2*len(out) {
		return fmt.Errorf("asn: %s %q: want %d hex digits", what, b, 2*len(out))
	}
	if _, err := hex.Decode(out, b); err != nil {
		return fmt.Errorf("asn: %s %q: %w", what, b, err)
	}
	return nil
}

// GeneralizedTime is an ASN.1 GeneralizedTime in the only form GBCS uses,
// 15 characters YYYYMMDDhhmmssZ: a UTC time to the second. The zero value is
// 0001-01-01 00:00:00 UTC. It marshals to JSON as that 15-character string.
type GeneralizedTime struct {
	t time.Time
}

// NewGeneralizedTime returns t in UTC, truncated to the second.
func NewGeneralizedTime(t time.Time) GeneralizedTime {
	return GeneralizedTime{t: t.UTC().Truncate(time.Second)}
}

// CancelTime returns 99991231235959Z, the execution date-time that cancels
// a pending future-dated command.
func CancelTime() GeneralizedTime {
	return GeneralizedTime{t: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
}

// IsCancel reports whether g is the cancel value 99991231235959Z.
func (g GeneralizedTime) IsCancel() bool { return g == CancelTime() }

// Time returns the time in UTC.
func (g GeneralizedTime) Time() time.Time { return g.t }

// String returns the 15-character form.
func (g GeneralizedTime) String() string { return g.t.Format(generalizedTimeLayout) }

// MarshalText implements encoding.TextMarshaler.
func (g GeneralizedTime) MarshalText() ([]byte, error) {
	if y := g.t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("asn: year %d does not fit in a GeneralizedTime", y)
	}
	return g.t.AppendFormat(nil, generalizedTimeLayout), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only the
// 15-character form.
func (g *GeneralizedTime) UnmarshalText(b []byte) error {
	t, err := parseGeneralizedTime(b)
	if err != nil {
		return fmt.Errorf("asn: generalized time: %w", err)
	}
	*g = t
	return nil
}

// Certificate is an X.509 certificate embedded in a payload, kept as its
// complete DER element, byte for byte.
type Certificate struct {
	// Raw is the DER of the certificate, tag 30 to the last byte.
	Raw Octets `json:"raw"`
}

// Parse parses the certificate with the SMKI reader, which also reads the
// organisation certificates crypto/x509 refuses (their subject carries
// x500UniqueIdentifier as a BIT STRING).
func (c Certificate) Parse() (*smki.Certificate, error) { return smki.ParseCertificate(c.Raw) }

// X509 parses the certificate with crypto/x509, which reads device
// certificates but not SMKI organisation certificates.
func (c Certificate) X509() (*x509.Certificate, error) { return x509.ParseCertificate(c.Raw) }

// CertificationRequest is a PKCS#10 certification request embedded in a
// payload, kept as its complete DER element, byte for byte.
type CertificationRequest struct {
	// Raw is the DER of the request, tag 30 to the last byte.
	Raw Octets `json:"raw"`
}

// Parse parses the request with the SMKI reader.
func (c CertificationRequest) Parse() (*smki.CSR, error) { return smki.ParseCSR(c.Raw) }

// X509 parses the request with crypto/x509.
func (c CertificationRequest) X509() (*x509.CertificateRequest, error) {
	return x509.ParseCertificateRequest(c.Raw)
}

// Null is the ASN.1 NULL. It marshals to JSON as null.
type Null struct{}

// MarshalJSON implements json.Marshaler.
func (Null) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// UnmarshalJSON implements json.Unmarshaler; it accepts only null.
func (*Null) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		return fmt.Errorf("asn: NULL: want null, have %s", b)
	}
	return nil
}

// KeyUsageBit is a named bit of the KeyUsage BIT STRING, numbered as in
// X.509 (bit 0 is the first, most significant, bit of the first byte).
type KeyUsageBit uint8

// The named bits GBCS uses.
const (
	DigitalSignature KeyUsageBit = 0
	KeyAgreement     KeyUsageBit = 4
	KeyCertSign      KeyUsageBit = 5
	CRLSign          KeyUsageBit = 6
)

var keyUsageNames = map[KeyUsageBit]string{0: "digitalSignature", 1: "nonRepudiation",
	2: "keyEncipherment", 3: "dataEncipherment", 4: "keyAgreement", 5: "keyCertSign", 6: "cRLSign",
	7: "encipherOnly", 8: "decipherOnly"}

// String returns the X.509 name of the bit, or its number.
func (b KeyUsageBit) String() string {
	if n, ok := keyUsageNames[b]; ok {
		return n
	}
	return fmt.Sprint(uint8(b))
}

// maxKeyUsageBytes bounds the KeyUsage BIT STRING: X.509 names nine bits, so
// eight bytes leave ample room while keeping the value comparable.
const maxKeyUsageBytes = 8

// KeyUsage is the KeyUsage BIT STRING. It keeps the exact encoding (number
// of bytes and unused-bits count) so a non-minimal input re-encodes as it
// came; NewKeyUsage builds the minimal DER form. KeyUsage values are
// comparable with ==.
//
// In JSON it is {"bits": [...], "unused": n, "nbytes": n}, with "names" for
// the reader; decoding JSON ignores "names".
type KeyUsage struct {
	bits   uint64 // ASN.1 bit i is 1<<i
	nbytes uint8
	unused uint8
}

// NewKeyUsage returns the minimal DER BIT STRING with the given bits set:
// trailing zero bits dropped, as DER requires of named-bit lists. Bits
// beyond 63 are ignored.
func NewKeyUsage(set ...KeyUsageBit) KeyUsage {
	var v uint64
	for _, b := range set {
		if b < 64 {
			v |= 1 << b
		}
	}
	if v == 0 {
		return KeyUsage{}
	}
	last := 63 - bits.LeadingZeros64(v)
	return KeyUsage{bits: v, nbytes: uint8(last/8 + 1), unused: uint8(7 - last%8)}
}

// KeyUsageFromX509 converts an x509.KeyUsage (bit i is 1<<i there too) to
// the minimal DER BIT STRING.
func KeyUsageFromX509(ku x509.KeyUsage) KeyUsage {
	var set []KeyUsageBit
	for i := range 9 {
		if ku&(1<<i) != 0 {
			set = append(set, KeyUsageBit(i))
		}
	}
	return NewKeyUsage(set...)
}

// X509 returns the bits as an x509.KeyUsage; bits beyond decipherOnly are
// dropped.
func (k KeyUsage) X509() x509.KeyUsage { return x509.KeyUsage(k.bits & 0x1FF) }

// Has reports whether bit b is set.
func (k KeyUsage) Has(b KeyUsageBit) bool { return b < 64 && k.bits&(1<<b) != 0 }

// Only reports whether b is the only bit set; GBCS key usages name exactly
// one bit.
func (k KeyUsage) Only(b KeyUsageBit) bool { return b < 64 && k.bits == 1<<b }

// Bits returns the set bits in increasing order.
func (k KeyUsage) Bits() []KeyUsageBit {
	var out []KeyUsageBit
	for v := k.bits; v != 0; v &= v - 1 {
		out = append(out, KeyUsageBit(bits.TrailingZeros64(v)))
	}
	return out
}

// Unused returns the unused-bits count of the encoding.
func (k KeyUsage) Unused() int { return int(k.unused) }

// Len returns the number of bit bytes in the encoding, after the
// unused-bits byte.
func (k KeyUsage) Len() int { return int(k.nbytes) }

// String lists the named bits, as "digitalSignature" or "keyAgreement".
func (k KeyUsage) String() string {
	bs := k.Bits()
	if len(bs) == 0 {
		return "none"
	}
	s := ""
	for i, b := range bs {
		if i > 0 {
			s += "|"
		}
		s += b.String()
	}
	return s
}

// check reports what makes the encoding impossible, if anything.
func (k KeyUsage) check() error {
	switch {
	case k.nbytes > maxKeyUsageBytes:
		return fmt.Errorf("%d bit bytes, at most %d", k.nbytes, maxKeyUsageBytes)
	case k.unused > 7:
		return fmt.Errorf("unused-bits count %d above 7", k.unused)
	case k.nbytes == 0 && k.unused != 0:
		return fmt.Errorf("unused-bits count %d with no bit bytes", k.unused)
	case k.nbytes < 8 && k.bits>>(8*uint(k.nbytes)-uint(k.unused)) != 0,
		k.nbytes == 8 && k.unused > 0 && k.bits>>(64-uint(k.unused)) != 0:
		return fmt.Errorf("bits %v do not fit in %d bytes with %d unused bits", k.Bits(), k.nbytes, k.unused)
	}
	return nil
}

func (e *encoder) keyUsage(field string, k KeyUsage) {
	if e.err != nil {
		return
	}
	if err := k.check(); err != nil {
		e.fail(field, "%v", err)
		return
	}
	e.b = append(e.b, tagBitString, 1+k.nbytes, k.unused)
	for i := range int(k.nbytes) {
		var c byte
		for j := range 8 {
			if k.bits&(1<<(8*i+j)) != 0 {
				c |= 0x80 >> j
			}
		}
		e.b = append(e.b, c)
	}
}

func (r *reader) keyUsage(field string) (KeyUsage, error) {
	c, _, err := r.next(field, tagBitString)
	if err != nil {
		return KeyUsage{}, err
	}
	switch {
	case len(c.b) == 0:
		return KeyUsage{}, parseErr(field, c.off, "BIT STRING without its unused-bits byte")
	case len(c.b)-1 > maxKeyUsageBytes:
		return KeyUsage{}, parseErr(field, c.off, "key usage of %d bytes, at most %d", len(c.b)-1, maxKeyUsageBytes)
	case c.b[0] > 7:
		return KeyUsage{}, parseErr(field, c.off, "unused-bits count %d above 7", c.b[0])
	case len(c.b) == 1 && c.b[0] != 0:
		return KeyUsage{}, parseErr(field, c.off, "unused-bits count %d with no bit bytes", c.b[0])
	}
	k := KeyUsage{nbytes: uint8(len(c.b) - 1), unused: c.b[0]}
	if len(c.b) > 1 && c.b[len(c.b)-1]&(1<<k.unused-1) != 0 {
		return KeyUsage{}, parseErr(field, c.off, "unused bits of the last byte 0x%02X are not zero", c.b[len(c.b)-1])
	}
	for i, d := range c.b[1:] {
		for j := range 8 {
			if d&(0x80>>j) != 0 {
				k.bits |= 1 << (8*i + j)
			}
		}
	}
	return k, nil
}

type keyUsageJSON struct {
	Bits   []int    `json:"bits"`
	Unused int      `json:"unused"`
	NBytes int      `json:"nbytes"`
	Names  []string `json:"names,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (k KeyUsage) MarshalJSON() ([]byte, error) {
	j := keyUsageJSON{Bits: []int{}, Unused: int(k.unused), NBytes: int(k.nbytes)}
	for _, b := range k.Bits() {
		j.Bits = append(j.Bits, int(b))
		j.Names = append(j.Names, b.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler. It needs "bits"; "unused" and
// "nbytes" default to the minimal DER form of those bits when both are
// absent.
func (k *KeyUsage) UnmarshalJSON(b []byte) error {
	var j struct {
		Bits   []int `json:"bits"`
		Unused *int  `json:"unused"`
		NBytes *int  `json:"nbytes"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("asn: key usage: %w", err)
	}
	var set []KeyUsageBit
	for _, v := range j.Bits {
		if v < 0 || v >= 8*maxKeyUsageBytes {
			return fmt.Errorf("asn: key usage: bit %d out of range", v)
		}
		set = append(set, KeyUsageBit(v))
	}
	v := NewKeyUsage(set...)
	switch {
	case j.Unused == nil && j.NBytes == nil:
	case j.Unused == nil || j.NBytes == nil:
		return fmt.Errorf("asn: key usage: give both unused and nbytes, or neither")
	case *j.Unused < 0 || *j.Unused > 7 || *j.NBytes < 0 || *j.NBytes > maxKeyUsageBytes:
		return fmt.Errorf("asn: key usage: unused %d or nbytes %d out of range", *j.Unused, *j.NBytes)
	default:
		v.unused, v.nbytes = uint8(*j.Unused), uint8(*j.NBytes)
		if err := v.check(); err != nil {
			return fmt.Errorf("asn: key usage: %w", err)
		}
	}
	*k = v
	return nil
}
