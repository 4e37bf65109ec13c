package commands

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

var (
	testSupplier = smki.MustParseEUI("123456789ABCDEF0")
	testDevice   = smki.MustParseEUI("FFFFFFFFFFFFFFFE")
	testACB      = smki.MustParseEUI("90B3D51F30000002")
	testOther    = smki.MustParseEUI("90B3D51F30AA0001")
)

// testCertDER returns a small self-signed DER certificate, standing in for a
// KA certificate in unknown-remote-party fields.
func testCertDER(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ou"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), KeyUsage: x509.KeyUsageKeyAgreement}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func sampleMessages(t testing.TB) map[string]*Message {
	t.Helper()
	dt := []byte{0x07, 0xEA, 11, 23, 1, 18, 0, 0, 0, 0x80, 0x00, 0x00}
	long := bytes.Repeat([]byte{0xAB}, 300)
	sig := bytes.Repeat([]byte{0x11}, 64)
	mac := bytes.Repeat([]byte{0x22}, 12)
	return map[string]*Message{
		"pre-command": {CRA: Command, Counter: 1, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, Payload: []byte{0xD9, 0x20}},
		"signed":      {CRA: Command, Counter: 2, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, Payload: []byte{1, 2, 3}, Signature: sig},
		"maced signed": {CRA: Command, Counter: 3, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3,
			Payload: []byte{1, 2, 3}, Signature: sig, MAC: mac},
		"maced unsigned with date-time": {CRA: Command, Counter: 4, Originator: testSupplier, Recipient: testDevice,
			DateTime: dt, Code: 0x0027, Payload: []byte{}, MAC: mac},
		"long payload response": {CRA: Response, Counter: 5, Originator: testDevice, Recipient: testSupplier, Code: 0x0060, Payload: long, MAC: mac},
		"alert":                 {CRA: Alert, Counter: 6, Originator: testDevice, Recipient: testSupplier, Code: 0x0067, Payload: []byte{0}, Signature: sig, MAC: mac},
		"urp without certificate": {CRA: Command, Counter: 7, Originator: testACB, Recipient: testDevice, Code: 0x0060,
			URP: &UnknownRemoteParty{EUI: testOther, Counter: 99}, Payload: []byte{5}, MAC: mac},
		"urp with certificate": {CRA: Command, Counter: 8, Originator: testACB, Recipient: testDevice, Code: 0x0060,
			URP: &UnknownRemoteParty{EUI: testOther, Counter: 100, KACertificate: testCertDER(t)}, Payload: []byte{5}, MAC: mac},
		"huge payload": {CRA: Command, Counter: 9, Originator: testSupplier, Recipient: testDevice, Code: 0x0021, Payload: bytes.Repeat([]byte{7}, 70000)},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range sampleMessages(t) {
		t.Run(name, func(t *testing.T) {
			b, err := m.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			b2, err := p.Marshal()
			if err != nil {
				t.Fatalf("Marshal again: %v", err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatalf("parse then build changed the bytes:\n%X\n%X", b, b2)
			}
			if p.CRA != m.CRA || p.Counter != m.Counter || p.Code != m.Code || p.Originator != m.Originator ||
				p.Recipient != m.Recipient || !bytes.Equal(p.Payload, m.Payload) || !bytes.Equal(p.DateTime, m.DateTime) ||
				!bytes.Equal(p.Signature, m.Signature) || !bytes.Equal(p.MAC, m.MAC) || (p.URP == nil) != (m.URP == nil) {
				t.Errorf("fields differ: got %+v, want %+v", p, m)
			}
			if m.URP != nil && (p.URP.EUI != m.URP.EUI || p.URP.Counter != m.URP.Counter || !bytes.Equal(p.URP.KACertificate, m.URP.KACertificate)) {
				t.Errorf("URP differs: got %+v, want %+v", p.URP, m.URP)
			}
			if p.HasMAC() != (m.MAC != nil) || p.Signed() != (m.Signature != nil) {
				t.Errorf("HasMAC/Signed wrong")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	v := loadVector(t)
	good := unhex(t, v.MessageHex)
	mut := func(off int, val ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], val)
		return b
	}
	unmaced := func(t *testing.T, m *Message) []byte {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The unprotected form (signature length 00, no MAC header) keeps the
	// signature field, so its offsets below cover it.
	base := &Message{CRA: Command, Counter: 1, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, Payload: []byte{1}, EmptySignatureField: true}
	plain := unmaced(t, base)
	response := bytes.Clone(plain[:35])
	response[2] = byte(Response)
	// plain offsets: 0 DF, 1 09, 2 CRA, 3-10 counter, 11 08, 12-19 orig, 20 08,
	// 21-28 recipient, 29 date-time length, 30 other-info length, 31-32 code,
	// 33 payload length, 34 payload, 35 signature length.
	pmut := func(off int, val ...byte) []byte {
		b := bytes.Clone(plain)
		copy(b[off:], val)
		return b
	}
	splice := func(b []byte, off int, ins ...byte) []byte {
		return append(append(append([]byte{}, b[:off]...), ins...), b[off:]...)
	}
	tests := []struct {
		name  string
		in    []byte
		field string
		off   int
		is    error
	}{
		{"empty", nil, "message", 0, ErrMalformed},
		{"block transfer", []byte{0xE0, 0x80, 0, 1, 0, 0, 1, 0}, "message.tag", 0, ErrBlockTransfer},
		{"unknown tag", []byte{0x30, 0}, "message.tag", 0, ErrMalformed},
		{"mac header field", mut(3, 1), "mac-header.field3", 3, ErrMalformed},
		{"mac header length too long", mut(7, 0x81, 0xAA), "mac-header.length", 7, ErrMalformed},
		{"mac header length short", mut(7, 0x81, 0xA8), "mac-header.length", 7, ErrMalformed},
		{"non-minimal length", mut(7, 0x82, 0x00), "mac-header.length", 7, ErrMalformed},
		{"indefinite length", mut(7, 0x80), "mac-header.length", 7, ErrMalformed},
		{"security control", mut(9, 0x10), "mac-header.security-control", 9, ErrMalformed},
		{"invocation counter", mut(12, 1), "mac-header.invocation-counter", 10, ErrMalformed},
		{"truncated mac", good[:20], "mac-header.length", 7, ErrMalformed},
		{"bad CRA", mut(16, 4), "general-signing.cra-flag", 16, ErrMalformed},
		{"bad transaction id length", pmut(1, 8), "general-signing.transaction-id.length", 1, ErrMalformed},
		{"bad originator length", pmut(11, 7), "general-signing.originator.length", 11, ErrMalformed},
		{"bad recipient length", pmut(20, 9), "general-signing.recipient.length", 20, ErrMalformed},
		{"date-time length 5", pmut(29, 5), "general-signing.date-time.length", 29, ErrMalformed},
		{"other-information length 1", pmut(30, 1), "other-information.message-code", 31, ErrMalformed},
		{"other-information too long", pmut(30, 0x7f), "general-signing.other-information.length", 30, ErrMalformed},
		{"srp id too short", splice(pmut(30, 6), 33, 1, 2, 3, 4), "other-information.supplementary-remote-party", 33, ErrMalformed},
		{"srp counter too short", splice(pmut(30, 14), 33, make([]byte, 12)...), "other-information.supplementary-remote-party-counter", 41, ErrMalformed},
		{"supplementary originator counter too short", splice(pmut(30, 22), 33, make([]byte, 20)...), "other-information.supplementary-originator-counter", 49, ErrMalformed},
		{"urp certificate not DER", splice(pmut(30, 30), 33, append(make([]byte, 16), 0x04, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)...), "other-information.certificate", 49, ErrMalformed},
		{"payload length beyond end", pmut(33, 0x40), "general-signing.content.length", 33, ErrMalformed},
		{"bad signature length", pmut(35, 0x41), "general-signing.signature.length", 35, ErrMalformed},
		{"truncated signature", pmut(35, 0x40), "general-signing.signature", 36, ErrMalformed},
		{"response without signature field", response, "general-signing.signature.length", 35, ErrMalformed},
		{"mac'd block without signature field", macd(t, plain[:35]), "general-signing.signature.length", 48, ErrMalformed},
		{"trailing bytes", append(bytes.Clone(plain), 0), "general-signing", 36, ErrMalformed},
		{"trailing after truncated", good[:len(good)-1], "mac-header.length", 7, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", m)
			}
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not wrap %v", err, tt.is)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *ParseError", err)
			}
			if pe.Field != tt.field || pe.Offset != tt.off {
				t.Errorf("ParseError{%q at %d}, want {%q at %d}: %v", pe.Field, pe.Offset, tt.field, tt.off, err)
			}
		})
	}
}

func TestMarshalInvalid(t *testing.T) {
	ok := Message{CRA: Command, Originator: testSupplier, Recipient: testDevice, Code: 1}
	tests := []struct {
		name string
		edit func(m *Message)
	}{
		{"CRA zero", func(m *Message) { m.CRA = 0 }},
		{"date-time 11 bytes", func(m *Message) { m.DateTime = make([]byte, 11) }},
		{"signature 63 bytes", func(m *Message) { m.Signature = make([]byte, 63) }},
		{"MAC 16 bytes", func(m *Message) { m.MAC = make([]byte, 16) }},
		{"URP certificate not DER", func(m *Message) { m.URP = &UnknownRemoteParty{KACertificate: []byte{1, 2}} }},
		{"payload too large", func(m *Message) { m.Payload = make([]byte, 1<<24) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			if _, err := m.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Marshal error %v, want ErrInvalid", err)
			}
		})
	}
}

func TestUnmarshalBinary(t *testing.T) {
	v := loadVector(t)
	var m Message
	if err := m.UnmarshalBinary(unhex(t, v.MessageHex)); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalBinary()
	if err != nil || !bytes.Equal(b, unhex(t, v.MessageHex)) {
		t.Errorf("MarshalBinary = %X, %v", b, err)
	}
	if err := m.UnmarshalBinary([]byte{0xDF}); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalBinary(DF) = %v, want ErrMalformed", err)
	}
}

// macd wraps block in a MAC header with a zero MAC, whatever the block holds.
func macd(t *testing.T, block []byte) []byte {
	t.Helper()
	b := []byte{0xDD, 0, 0, 0, 0, 0, 0}
	b, err := appendLength(b, 5+len(block)+12)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0x11, 0, 0, 0, 0)
	b = append(b, block...)
	return append(b, make([]byte, 12)...)
}
