package commands

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// builds back to the same bytes and parses again. Seeds: the 18.4 vector and
// the messages of sampleMessages.
func FuzzParse(f *testing.F) {
	v := loadVector(f)
	f.Add(unhex(f, v.MessageHex))
	for _, m := range sampleMessages(f) {
		if len(m.Payload) > 1000 {
			continue
		}
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xE0, 0x80, 0, 1, 0, 0, 1, 0})
	f.Add([]byte{0xDF})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed message: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes:\n%X\n%X", b, out)
		}
		if _, err := m.SignedData(); err != nil {
			t.Fatal(err)
		}
		if _, err := m.MACData(); err != nil {
			t.Fatal(err)
		}
		// The payload reader never panics and what it decodes re-encodes.
		if _, tree, err := ParsePayload(m); err == nil {
			_ = cipheredBlocks(tree)
		}
	})
}

// FuzzOpenBlock checks that the ciphered-block reader never panics and
// that only the block SealBlock made opens.
func FuzzOpenBlock(f *testing.F) {
	key := make([]byte, 16)
	s, _ := SealBlock(key, testDevice, []byte("seed plaintext"))
	f.Add(s)
	f.Add([]byte{0x31, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if pt, err := OpenBlock(key, testDevice, b); err == nil && !bytes.Equal(b, s) {
			if again, _ := SealBlock(key, testDevice, pt); !bytes.Equal(again[5:], b[5:]) {
				t.Errorf("a forged block opened: %X", b)
			}
		}
	})
}
