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
	otherInfoSRPOnly       = 2 + 8
	urpFixedLen            = 2 + 8 + 8
	signatureLengthSigned  = 0x40
	signatureLengthAbsent  = 0x00
	maxMessageLen          = 0xffffff
	otherInfoCodeOnlyBytes = 2
)

// Form is the shape a GBCS message takes on the wire (spec gbcs-payloads.md
// section 1.2): whether it has the MAC header, and whether and how it carries
// the signature field. A message's form comes from its bytes; callers ask the
// codec (Message.Form) rather than looking at the bytes.
type Form uint8

// The message forms.
const (
	// FormPreCommand is a critical command as the DCC returns it for
	// signing: the general-signing block ending right after the payload,
	// with no signature field at all (no MAC header).
	FormPreCommand Form = iota + 1
	// FormSigned is the general-signing block followed by 40 and the 64-byte
	// signature, without MAC header: a signed pre-command, a signed command
	// that travels without MAC (CS02a, CS02b 0x0108, CS02f), or a signed
	// response or alert.
	FormSigned
	// FormMAC is the MAC header around the block, whose signature field is
	// 00, then the 12-byte MAC: non-critical commands, MAC'd responses and
	// alerts, and CS02b 0x0104.
	FormMAC
	// FormMACSigned is the MAC header around a signed block, then the MAC:
	// a critical command on its way to the device.
	FormMACSigned
	// FormUnprotected is the block followed by the signature length 00 with
	// no MAC header. GB never sends it; older DCC tools wrote pre-commands
	// this way, so it is read (and signed as a pre-command) but never built
	// unless read.
	FormUnprotected
)

var formNames = [...]string{
	FormPreCommand:  "pre-command",
	FormSigned:      "signed",
	FormMAC:         "mac",
	FormMACSigned:   "mac+signed",
	FormUnprotected: "unprotected",
}

// String names the form as the JSON of gbcs inspect does.
func (f Form) String() string {
	if int(f) < len(formNames) && formNames[f] != "" {
		return formNames[f]
	}
	return fmt.Sprintf("form(%d)", uint8(f))
}

// ParseForm is the inverse of Form.String.
func ParseForm(s string) (Form, error) {
	for f, n := range formNames {
		if n != "" && n == s {
			return Form(f), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown message form %q", ErrInvalid, s)
}

// UnknownRemoteParty holds the supplementary fields of the other-information
// (GBCS section 8; spec gbcs-payloads.md 1.4): the real user behind a message
// the access control broker originates, and what follows it. The
// other-information then has one of four forms beyond the bare message code:
//
//	10 bytes   code || SRP id                      (NoCounter set)
//	18 bytes   code || SRP id || SRP counter
//	26 bytes   code || SRP id || SRP counter || supplementary originator counter
//	> 26 bytes code || SRP id || SRP counter || the SRP's DER KA certificate
type UnknownRemoteParty struct {
	// EUI is the supplementary remote party id: the real user's entity
	// identifier.
	EUI smki.EUI
	// Counter is the supplementary remote party's own counter; meaningless
	// when NoCounter is set.
	Counter uint64
	// NoCounter marks the 10-byte form, which carries the SRP id alone (an
	// ESME alert naming a load controller).
	NoCounter bool
	// OriginatorCounter is the supplementary originator counter of the
	// 26-byte form a device uses in responses to such commands: its own
	// counter, which the encryption KDF takes instead of the header's
	// (spec 2.3). Nil when absent.
	OriginatorCounter *uint64
	// KACertificate is the DER of the user's key-agreement certificate, to
	// which the device encrypts a sensitive response; nil when absent.
	KACertificate []byte
}

// Lengths records framing lengths that were read in a non-minimal DER form:
// each is 0 when the length was minimal and otherwise the number of bytes
// after its 0x8N byte. Marshal writes such a length the same way again while
// that form can hold the value, so a message is rebuilt exactly as read.
// Real messages use minimal lengths (every one of the DCC's reference test
// messages does); the GBCS parser accepts the others.
type Lengths struct {
	MACHeader        int `json:"mac_header,omitempty"`
	OtherInformation int `json:"other_information,omitempty"`
	Content          int `json:"content,omitempty"`
}

// Message is one GBCS message in any of its forms: the optional MAC header,
// the general-signing block, the payload, the optional signature field and
// the optional MAC.
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
	// URP holds the fields of the other-information after the message code;
	// nil when the field is the code alone.
	URP *UnknownRemoteParty
	// Payload is the DLMS-COSEM, GBZ or ASN.1 DER payload, opaque here.
	Payload []byte
	// Signature is the raw 64-byte r||s Remote Party signature; nil when the
	// message is unsigned.
	Signature []byte
	// MAC is the 12-byte GMAC tag; nil when the message has no MAC header.
	MAC []byte
	// EmptySignatureField marks the unprotected form: the signature length
	// 00 without a MAC header (FormUnprotected). Parse sets it; Sign and
	// AddMAC make it irrelevant.
	EmptySignatureField bool
	// Lengths records non-minimal framing lengths, as read.
	Lengths Lengths
}

// Form reports the message's form, from which parts it carries.
func (m *Message) Form() Form {
	switch {
	case m.MAC != nil && m.Signature != nil:
		return FormMACSigned
	case m.MAC != nil:
		return FormMAC
	case m.Signature != nil:
		return FormSigned
	case m.EmptySignatureField:
		return FormUnprotected
	}
	return FormPreCommand
}

// HasMAC reports whether the message carries a MAC header and MAC.
func (m *Message) HasMAC() bool { return m.MAC != nil }

// Signed reports whether the message carries a signature.
func (m *Message) Signed() bool { return m.Signature != nil }

// hasSignatureField reports whether the block carries the signature-length
// byte: every form but the pre-command.
func (m *Message) hasSignatureField() bool {
	return m.MAC != nil || m.Signature != nil || m.EmptySignatureField
}

// OtherInfoForm reports the form of the other-information field by its
// length as GB names them: 2, 10, 18, 26, or its whole length when it
// carries a certificate (> 26).
func (m *Message) OtherInfoForm() int { return m.otherInfoLen() }

// Parse reads one whole GBCS message in any form. Every length is bounded by
// what remains; malformed input gets a *ParseError wrapping ErrMalformed,
// never a panic. A general block transfer segment (tag 0xE0) is refused with
// ErrBlockTransfer: reassemble it first. The returned message's byte slices
// alias b.
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
		if err := parseBlock(r, m, false); err != nil {
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
		n, long, err := r.lengthAsFound("mac-header")
		if err != nil {
			return nil, err
		}
		m.Lengths.MACHeader = long
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
		if err := parseBlock(inner, m, true); err != nil {
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
// field and requires it to end exactly at the end of r. With no byte left
// after the payload the block has no signature field: a pre-command, legal
// only for a command without MAC header (spec 1.2, decoding rule).
func parseBlock(r *reader, m *Message, macd bool) error {
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
	n, err := r.byte("general-signing.date-time.length")
	if err != nil {
		return err
	}
	if n != 0 && n != dateTimeLen {
		return parseErr("general-signing.date-time.length", at, "want 0 or 12, have %d", n)
	}
	if n == dateTimeLen {
		if m.DateTime, err = r.bytes("general-signing.date-time", dateTimeLen); err != nil {
			return err
		}
	}
	var ln int
	if ln, m.Lengths.OtherInformation, err = r.lengthAsFound("general-signing.other-information"); err != nil {
		return err
	}
	oi, _ := r.bytes("general-signing.other-information", ln)
	if err := parseOtherInfo(oi, r.off()-ln, m); err != nil {
		return err
	}
	if ln, m.Lengths.Content, err = r.lengthAsFound("general-signing.content"); err != nil {
		return err
	}
	m.Payload, _ = r.bytes("general-signing.content", ln)
	at = r.off()
	if r.remaining() == 0 {
		switch {
		case macd:
			return parseErr("general-signing.signature.length", at, "missing: a MAC'd block carries a signature field (00 or 40)")
		case m.CRA != Command:
			return parseErr("general-signing.signature.length", at, "missing: only a pre-command (a command) ends after its payload, this is a %s", m.CRA)
		}
		return nil
	}
	s, _ := r.byte("general-signing.signature.length")
	switch s {
	case signatureLengthAbsent:
		m.EmptySignatureField = !macd
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

// parseOtherInfo reads the other-information field as the GBCS parser does
// (spec 1.4): >= 10 bytes an SRP id, >= 18 an SRP counter, exactly 26 a
// supplementary originator counter, > 26 a certificate filling the rest.
func parseOtherInfo(oi []byte, base int, m *Message) error {
	if len(oi) < otherInfoCodeOnlyBytes {
		return parseErr("other-information.message-code", base, "want at least 2 bytes, have %d", len(oi))
	}
	m.Code = MessageCode(binary.BigEndian.Uint16(oi))
	switch n := len(oi); {
	case n == otherInfoCodeOnlyBytes:
		return nil
	case n < otherInfoSRPOnly:
		return parseErr("other-information.supplementary-remote-party", base+2, "want 8 bytes (SRP id), have %d", n-2)
	case n > otherInfoSRPOnly && n < urpFixedLen:
		return parseErr("other-information.supplementary-remote-party-counter", base+otherInfoSRPOnly, "want 8 bytes, have %d", n-otherInfoSRPOnly)
	case n > urpFixedLen && n < urpFixedLen+8:
		return parseErr("other-information.supplementary-originator-counter", base+urpFixedLen, "want 8 bytes (a counter) or a certificate of more, have %d", n-urpFixedLen)
	}
	u := &UnknownRemoteParty{}
	copy(u.EUI[:], oi[2:10])
	if len(oi) == otherInfoSRPOnly {
		u.NoCounter = true
		m.URP = u
		return nil
	}
	u.Counter = binary.BigEndian.Uint64(oi[10:18])
	switch {
	case len(oi) == urpFixedLen+8:
		c := binary.BigEndian.Uint64(oi[18:26])
		u.OriginatorCounter = &c
	case len(oi) > urpFixedLen:
		cert := oi[urpFixedLen:]
		if err := checkDERSequence(cert); err != nil {
			return parseErr("other-information.certificate", base+urpFixedLen, "%v", err)
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
	if u := m.URP; u != nil {
		switch {
		case u.NoCounter && (u.OriginatorCounter != nil || u.KACertificate != nil):
			return fmt.Errorf("%w: other-information without SRP counter cannot carry a supplementary originator counter or certificate", ErrInvalid)
		case u.OriginatorCounter != nil && u.KACertificate != nil:
			return fmt.Errorf("%w: other-information carries a supplementary originator counter or a certificate, not both", ErrInvalid)
		case u.KACertificate != nil:
			if len(u.KACertificate) <= 8 {
				return fmt.Errorf("%w: unknown remote party certificate of %d bytes", ErrInvalid, len(u.KACertificate))
			}
			if err := checkDERSequence(u.KACertificate); err != nil {
				return fmt.Errorf("%w: unknown remote party certificate: %v", ErrInvalid, err)
			}
		}
	}
	return nil
}

func (m *Message) otherInfoLen() int {
	u := m.URP
	switch {
	case u == nil:
		return otherInfoCodeOnlyBytes
	case u.NoCounter:
		return otherInfoSRPOnly
	case u.OriginatorCounter != nil:
		return urpFixedLen + 8
	}
	return urpFixedLen + len(u.KACertificate)
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
	if b, err = appendLengthForm(b, m.otherInfoLen(), m.Lengths.OtherInformation); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	if u := m.URP; u != nil {
		b = append(b, u.EUI[:]...)
		if !u.NoCounter {
			b = binary.BigEndian.AppendUint64(b, u.Counter)
		}
		if u.OriginatorCounter != nil {
			b = binary.BigEndian.AppendUint64(b, *u.OriginatorCounter)
		}
		b = append(b, u.KACertificate...)
	}
	if b, err = appendLengthForm(b, len(m.Payload), m.Lengths.Content); err != nil {
		return nil, err
	}
	return append(b, m.Payload...), nil
}

// blockLen is the size of the general-signing block from DF through the
// signature field.
func (m *Message) blockLen() int {
	oi := m.otherInfoLen()
	n := 1 + 1 + transactionIDLen + 9 + 9 + 1 + len(m.DateTime) + lenBytesForm(oi, m.Lengths.OtherInformation) + oi +
		lenBytesForm(len(m.Payload), m.Lengths.Content) + len(m.Payload)
	if m.hasSignatureField() {
		n++
	}
	if m.Signature != nil {
		n += signatureLen
	}
	return n
}

// appendBlock appends the block from DF through the signature field; with
// field set it writes the signature length 00 of an unsigned block even in
// the pre-command form (the MAC covers it).
func (m *Message) appendBlock(b []byte, field bool) ([]byte, error) {
	b = append(b, tagGeneralSigning)
	b, err := m.appendSignedPart(b)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Signature != nil:
		b = append(b, signatureLengthSigned)
		return append(b, m.Signature...), nil
	case field || m.hasSignatureField():
		return append(b, signatureLengthAbsent), nil
	}
	return b, nil
}

// Marshal builds the message's bytes in its form (Form): with a MAC header
// and the MAC when MAC is set, otherwise the bare general-signing block,
// ending after the payload when the message is a pre-command.
func (m *Message) Marshal() ([]byte, error) {
	return m.AppendBinary(nil)
}

// AppendBinary appends the message's bytes to b (encoding.BinaryAppender).
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if !m.hasSignatureField() && m.CRA != Command {
		return nil, fmt.Errorf("%w: a %s without signature or MAC: only a command takes the pre-command form", ErrInvalid, m.CRA)
	}
	bl := m.blockLen()
	if m.MAC == nil {
		b = growBytes(b, bl)
		return m.appendBlock(b, false)
	}
	rest := securityHeaderLen + bl + macLen
	b = growBytes(b, macHeaderFixedLen+lenBytesForm(rest, m.Lengths.MACHeader)+rest)
	b = append(b, tagGeneralCiphering, 0, 0, 0, 0, 0, 0)
	b, err := appendLengthForm(b, rest, m.Lengths.MACHeader)
	if err != nil {
		return nil, err
	}
	b = append(b, securityControlMAC, 0, 0, 0, 0)
	if b, err = m.appendBlock(b, true); err != nil {
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
	b := make([]byte, 0, 7+m.blockLen())
	b = append(b, securityControlMAC, 0, 0, 0, 0, 0)
	return m.appendBlock(b, true)
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}
