package smki

import (
	"bytes"
	"errors"
	"math/big"
	"testing"
)

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{in: "0D848B24", want: []byte{0x0D, 0x84, 0x8B, 0x24}},
		{in: "D848B24", want: []byte{0x0D, 0x84, 0x8B, 0x24}},
		{in: "0x0d:84:8b:24", want: []byte{0x0D, 0x84, 0x8B, 0x24}},
		{in: "00000001", want: []byte{1}},
		{in: "0", want: []byte{0}},
		{in: "", err: true},
		{in: "xyz", err: true},
		{in: "0102030405060708090A0B0C0D0E0F101112131415", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSerial(tc.in)
			if tc.err {
				if !errors.Is(err, ErrSerial) {
					t.Fatalf("ParseSerial(%q) err = %v, want ErrSerial", tc.in, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("ParseSerial(%q) = %X, %v; want %X", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestFormatSerialRoundTrip(t *testing.T) {
	n := new(big.Int).SetBytes([]byte{0x0D, 0x84, 0x8B})
	s := FormatSerial(n)
	if s != "0D848B" {
		t.Fatalf("FormatSerial = %s, want 0D848B", s)
	}
	b, err := ParseSerial(s)
	if err != nil || new(big.Int).SetBytes(b).Cmp(n) != 0 {
		t.Fatalf("round trip: %X, %v", b, err)
	}
}
