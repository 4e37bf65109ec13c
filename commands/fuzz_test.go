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
		_ = IsProtected(m.Payload)
	})
}

// FuzzOpen checks that the protected-structure reader never panics.
func FuzzOpen(f *testing.F) {
	key := make([]byte, 16)
	s, _ := Seal(key, testDevice, []byte("seed plaintext"))
	f.Add(s)
	f.Add([]byte{0x09, 0x11, 0x31, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Open(key, testDevice, b)
	})
}
