package commands

import (
	"encoding/binary"
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// CRA is the Command, Response or Alert flag, the first byte of the
// general-signing transaction id (GBCS section 4.3.1).
type CRA byte

// The CRA flag values.
const (
	Command  CRA = 1
	Response CRA = 2
	Alert    CRA = 3
)

// String names the flag.
func (c CRA) String() string {
	switch c {
	case Command:
		return "command"
	case Response:
		return "response"
	case Alert:
		return "alert"
	}
	return fmt.Sprintf("CRA(%d)", byte(c))
}

// Valid reports whether c is 1, 2 or 3.
func (c CRA) Valid() bool { return c >= Command && c <= Alert }

// MessageCode is the 2-byte GBCS message code that opens the
// other-information field and names the use case.
type MessageCode uint16

// String prints the code as GBCS does, "0x00B3".
func (c MessageCode) String() string { return fmt.Sprintf("0x%04X", uint16(c)) }

// Wire constants of the message layout (GBCS section 4.3; spec section 3).
const (
	tagGeneralCiphering    = 0xDD
	tagGeneralSigning      = 0xDF
	tagGeneralBlockXfer    = 0xE0
	securityControlMAC     = 0x11
	transactionIDLen       = 9
	dateTimeLen            = 12
	signatureLen           = 64
	macLen                 = 12
	macHeaderFixedLen      = 7 // DD and six empty fields
	securityHeaderLen      = 5 // 11 and the 4-byte invocation counter
	urpFixedLen            = 2 + 8 + 8
	signatureLengthSigned  = 0x40
	signatureLengthAbsent  = 0x00
	maxMessageLen          = 0xffffff
	otherInfoCodeOnlyBytes = 2
)

// UnknownRemoteParty carries the real user behind a command that the access
// control broker sends as originator on behalf of a party the device holds no
// credentials for (GBCS section 8; spec section 8).
//
// (our rule) Encoded in the other-information field right after the message
// code: EUI (8 bytes) || Counter (8 bytes, big-endian) || optional KA
// certificate, one complete DER SEQUENCE to the end of the field. Its absence
// leaves the field at 18 bytes.
type UnknownRemoteParty struct {
	// EUI is the real user's entity identifier (the supplementary remote
	// party id).
	EUI smki.EUI
	// Counter is the real user's own originator counter.
	Counter uint64
	// KACertificate is the DER of the user's key-agreement certificate, to
	// which the device encrypts a sensitive response; nil when absent.
	KACertificate []byte
}

// Message is one GBCS message: the optional MAC header, the general-signing
// block, the payload, the optional signature and the optional MAC.
//
// Parse then Marshal gives back the same bytes.
type Message struct {
	// CRA is the command, response or alert flag.
	CRA CRA
	// Counter is the originator counter; a response repeats its command's.
	Counter uint64
	// Originator and Recipient are the business originator and target.
	Originator, Recipient smki.EUI
	// DateTime is the optional 12-byte DLMS date-time; nil when absent.
	DateTime []byte
	// Code is the message code from the other-information field.
	Code MessageCode
	// URP holds the unknown-remote-party fields; nil when absent.
	URP *UnknownRemoteParty
	// Payload is the DLMS-COSEM, GBZ or ASN.1 DER payload, opaque here.
	Payload []byte
	// Signature is the raw 64-byte r||s Remote Party signature; nil when the
	// message is unsigned.
	Signature []byte
	// MAC is the 12-byte GMAC tag; nil when the message has no MAC header.
	MAC []byte
}

// HasMAC reports whether the message carries a MAC header and MAC.
func (m *Message) HasMAC() bool { return m.MAC != nil }

// Signed reports whether the message carries a signature.
func (m *Message) Signed() bool { return m.Signature != nil }

// Parse reads one whole GBCS message, with or without a MAC header. Every
// length is bounded by what remains; malformed input gets a *ParseError
// wrapping ErrMalformed, never a panic. A general block transfer segment
// (tag 0xE0) is refused with ErrBlockTransfer: reassemble it first.
// The returned message's byte slices alias b.
func Parse(b []byte) (*Message, error) {
	if len(b) == 0 {
		return nil, parseErr("message", 0, "empty input")
	}
	if len(b) > maxMessageLen {
		return nil, parseErr("message", 0, "%d bytes exceed the largest message of %d bytes", len(b), maxMessageLen)
	}
	r := &reader{b: b}
	m := &Message{}
	switch b[0] {
	case tagGeneralBlockXfer:
		return nil, &ParseError{Field: "message.tag", Offset: 0, Reason: "general block transfer (0xE0) segment; reassemble the blocks first", Err: ErrBlockTransfer}
	case tagGeneralSigning:
		if err := parseBlock(r, m); err != nil {
			return nil, err
		}
	case tagGeneralCiphering:
		r.pos = 1
		for i := 1; i < macHeaderFixedLen; i++ {
			if r.remaining() < 1 || b[i] != 0 {
				return nil, r.expect(fmt.Sprintf("mac-header.field%d", i), 0x00)
			}
			r.pos++
		}
		n, err := r.length("mac-header")
		if err != nil {
			return nil, err
		}
		if n != r.remaining() {
			return nil, parseErr("mac-header.length", macHeaderFixedLen, "length %d but %d bytes follow", n, r.remaining())
		}
		if err := r.expect("mac-header.security-control", securityControlMAC); err != nil {
			return nil, err
		}
		at := r.off()
		ic, err := r.bytes("mac-header.invocation-counter", 4)
		if err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint32(ic) != 0 {
			return nil, parseErr("mac-header.invocation-counter", at, "want 00000000, have % X", ic)
		}
		if r.remaining() < macLen {
			return nil, parseErr("mac", r.off(), "truncated: need %d bytes of MAC after the block, have %d", macLen, r.remaining())
		}
		inner := &reader{b: r.b[:len(r.b)-macLen], pos: r.pos}
		if err := parseBlock(inner, m); err != nil {
			return nil, err
		}
		m.MAC = b[len(b)-macLen : len(b) : len(b)]
		r.pos = len(b)
	default:
		return nil, parseErr("message.tag", 0, "want 0xDD (MAC header) or 0xDF (general-signing), have 0x%02X", b[0])
	}
	if r.remaining() != 0 {
		return nil, parseErr("message", r.off(), "%d trailing bytes", r.remaining())
	}
	return m, nil
}

// parseBlock reads the general-signing block from DF through the signature
// and requires it to end exactly at the end of r.
func parseBlock(r *reader, m *Message) error {
	if err := r.expect("general-signing.tag", tagGeneralSigning); err != nil {
		return err
	}
	if err := r.expect("general-signing.transaction-id.length", transactionIDLen); err != nil {
		return err
	}
	at := r.off()
	c, _ := r.byte("general-signing.cra-flag")
	if c2 := CRA(c); !c2.Valid() {
		return parseErr("general-signing.cra-flag", at, "want 1, 2 or 3, have %d", c)
	}
	m.CRA = CRA(c)
	ctr, err := r.bytes("general-signing.originator-counter", 8)
	if err != nil {
		return err
	}
	m.Counter = binary.BigEndian.Uint64(ctr)
	if err := r.expect("general-signing.originator.length", 8); err != nil {
		return err
	}
	v, err := r.bytes("general-signing.originator", 8)
	if err != nil {
		return err
	}
	copy(m.Originator[:], v)
	if err := r.expect("general-signing.recipient.length", 8); err != nil {
		return err
	}
	if v, err = r.bytes("general-signing.recipient", 8); err != nil {
		return err
	}
	copy(m.Recipient[:], v)
	at = r.off()
	n, err := r.length("general-signing.date-time")
	if err != nil {
		return err
	}
	if n != 0 && n != dateTimeLen {
		return parseErr("general-signing.date-time.length", at, "want 0 or 12, have %d", n)
	}
	if n == dateTimeLen {
		m.DateTime, _ = r.bytes("general-signing.date-time", n)
	}
	at = r.off()
	n, err = r.length("general-signing.other-information")
	if err != nil {
		return err
	}
	oi, _ := r.bytes("general-signing.other-information", n)
	if err := parseOtherInfo(oi, r.off()-n, m); err != nil {
		return err
	}
	n, err = r.length("general-signing.content")
	if err != nil {
		return err
	}
	m.Payload, _ = r.bytes("general-signing.content", n)
	at = r.off()
	s, err := r.byte("general-signing.signature.length")
	if err != nil {
		return err
	}
	switch s {
	case signatureLengthAbsent:
	case signatureLengthSigned:
		m.Signature, err = r.bytes("general-signing.signature", signatureLen)
		if err != nil {
			return err
		}
	default:
		return parseErr("general-signing.signature.length", at, "want 0x00 or 0x40, have 0x%02X", s)
	}
	if r.remaining() != 0 {
		return parseErr("general-signing", r.off(), "%d bytes after the signature", r.remaining())
	}
	return nil
}

func parseOtherInfo(oi []byte, base int, m *Message) error {
	if len(oi) < otherInfoCodeOnlyBytes {
		return parseErr("other-information.message-code", base, "want at least 2 bytes, have %d", len(oi))
	}
	m.Code = MessageCode(binary.BigEndian.Uint16(oi))
	switch {
	case len(oi) == otherInfoCodeOnlyBytes:
		return nil
	case len(oi) < urpFixedLen:
		return parseErr("other-information.unknown-remote-party", base+2, "want 16 bytes (EUI and counter), have %d", len(oi)-2)
	}
	u := &UnknownRemoteParty{Counter: binary.BigEndian.Uint64(oi[10:18])}
	copy(u.EUI[:], oi[2:10])
	if len(oi) > urpFixedLen {
		cert := oi[urpFixedLen:]
		if err := checkDERSequence(cert); err != nil {
			return parseErr("other-information.unknown-remote-party.certificate", base+urpFixedLen, "%v", err)
		}
		u.KACertificate = cert
	}
	m.URP = u
	return nil
}

// checkDERSequence verifies that b is exactly one DER SEQUENCE.
func checkDERSequence(b []byte) error {
	r := &reader{b: b}
	if err := r.expect("sequence", 0x30); err != nil {
		return fmt.Errorf("want a DER SEQUENCE (0x30), have 0x%02X", b[0])
	}
	n, err := r.length("sequence")
	if err != nil {
		return fmt.Errorf("bad SEQUENCE length")
	}
	if n != r.remaining() {
		return fmt.Errorf("SEQUENCE of %d bytes followed by %d more", n, r.remaining()-n)
	}
	return nil
}

// validate checks that every field can be encoded.
func (m *Message) validate() error {
	if !m.CRA.Valid() {
		return fmt.Errorf("%w: CRA flag %d", ErrInvalid, byte(m.CRA))
	}
	if m.DateTime != nil && len(m.DateTime) != dateTimeLen {
		return fmt.Errorf("%w: date-time of %d bytes, want 12", ErrInvalid, len(m.DateTime))
	}
	if m.Signature != nil && len(m.Signature) != signatureLen {
		return fmt.Errorf("%w: signature of %d bytes, want 64", ErrInvalid, len(m.Signature))
	}
	if m.MAC != nil && len(m.MAC) != macLen {
		return fmt.Errorf("%w: MAC of %d bytes, want 12", ErrInvalid, len(m.MAC))
	}
	if m.URP != nil && m.URP.KACertificate != nil {
		if err := checkDERSequence(m.URP.KACertificate); err != nil {
			return fmt.Errorf("%w: unknown remote party certificate: %v", ErrInvalid, err)
		}
	}
	return nil
}

func (m *Message) otherInfoLen() int {
	if m.URP == nil {
		return otherInfoCodeOnlyBytes
	}
	return urpFixedLen + len(m.URP.KACertificate)
}

// appendSignedPart appends the general-signing block from the transaction id
// (after DF) to the end of the payload: the bytes the signature covers.
func (m *Message) appendSignedPart(b []byte) ([]byte, error) {
	b = append(b, transactionIDLen, byte(m.CRA))
	b = binary.BigEndian.AppendUint64(b, m.Counter)
	b = append(b, 8)
	b = append(b, m.Originator[:]...)
	b = append(b, 8)
	b = append(b, m.Recipient[:]...)
	b = append(b, byte(len(m.DateTime)))
	b = append(b, m.DateTime...)
	var err error
	if b, err = appendLength(b, m.otherInfoLen()); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	if m.URP != nil {
		b = append(b, m.URP.EUI[:]...)
		b = binary.BigEndian.AppendUint64(b, m.URP.Counter)
		b = append(b, m.URP.KACertificate...)
	}
	if b, err = appendLength(b, len(m.Payload)); err != nil {
		return nil, err
	}
	return append(b, m.Payload...), nil
}

// blockLen is the size of the general-signing block from DF through the
// signature.
func (m *Message) blockLen() int {
	oi := m.otherInfoLen()
	n := 1 + 1 + transactionIDLen + 9 + 9 + 1 + len(m.DateTime) + lenBytes(oi) + oi + lenBytes(len(m.Payload)) + len(m.Payload) + 1
	if m.Signature != nil {
		n += signatureLen
	}
	return n
}

func (m *Message) appendBlock(b []byte) ([]byte, error) {
	b = append(b, tagGeneralSigning)
	b, err := m.appendSignedPart(b)
	if err != nil {
		return nil, err
	}
	if m.Signature == nil {
		return append(b, signatureLengthAbsent), nil
	}
	b = append(b, signatureLengthSigned)
	return append(b, m.Signature...), nil
}

// Marshal builds the message's bytes: with a MAC header and the MAC when MAC
// is set, otherwise the bare general-signing block.
func (m *Message) Marshal() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends the message's bytes to b (encoding.BinaryAppender).
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	bl := m.blockLen()
	if m.MAC == nil {
		b = growBytes(b, bl)
		return m.appendBlock(b)
	}
	rest := securityHeaderLen + bl + macLen
	b = growBytes(b, macHeaderFixedLen+lenBytes(rest)+rest)
	b = append(b, tagGeneralCiphering, 0, 0, 0, 0, 0, 0)
	b, err := appendLength(b, rest)
	if err != nil {
		return nil, err
	}
	b = append(b, securityControlMAC, 0, 0, 0, 0)
	if b, err = m.appendBlock(b); err != nil {
		return nil, err
	}
	return append(b, m.MAC...), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *Message) MarshalBinary() ([]byte, error) { return m.Marshal() }

// UnmarshalBinary implements encoding.BinaryUnmarshaler with Parse. The
// message keeps references into b.
func (m *Message) UnmarshalBinary(b []byte) error {
	p, err := Parse(b)
	if err != nil {
		return err
	}
	*m = *p
	return nil
}

// SignedData returns the bytes the Remote Party signature covers: the
// general-signing block without its DF tag, up to the end of the payload
// (GBCS section 4.3.3; the signature length byte is not signed).
func (m *Message) SignedData() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m.appendSignedPart(make([]byte, 0, m.blockLen()))
}

// MACData returns the authenticated data of the GMAC: 11 00 00 00 00 00 ||
// the general-signing block from DF through the signature field, including
// its length byte (GBCS section 5; checked against the 18.4 vector).
func (m *Message) MACData() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 6+m.blockLen())
	b = append(b, securityControlMAC, 0, 0, 0, 0, 0)
	return m.appendBlock(b)
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}
