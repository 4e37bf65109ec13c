package commands

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestBlockTransfer(t *testing.T) {
	v := loadVector(t)
	raw := unhex(t, v.MessageHex)
	for _, size := range []int{1, 50, 127, 128, 178, 1000} {
		segs, err := Segment(raw, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			if _, err := Parse(segs[0]); !errors.Is(err, ErrBlockTransfer) {
				t.Errorf("Parse of a segment: %v, want ErrBlockTransfer", err)
			}
			// Reverse the order: Reassemble sorts by block number.
			rev := make([][]byte, len(segs))
			for i, s := range segs {
				rev[len(segs)-1-i] = s
			}
			got, err := Reassemble(rev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("reassembled %X", got)
			}
			if _, err := Parse(got); err != nil {
				t.Error(err)
			}
			for _, s := range segs {
				b, err := ParseBlock(s)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := b.Marshal()
				if !bytes.Equal(again, s) {
					t.Errorf("block round trip %X != %X", again, s)
				}
			}
		})
	}
	segs, _ := Segment(raw, 60) // 3 segments
	bad := []struct {
		name string
		segs [][]byte
	}{
		{"none", nil},
		{"missing middle", [][]byte{segs[0], segs[2]}},
		{"duplicate", [][]byte{segs[0], segs[1], segs[1], segs[2]}},
		{"no last", segs[:2]},
		{"garbage", [][]byte{{0xE0, 0x80}}},
		{"block zero", [][]byte{{0xE0, 0x80, 0, 0, 0, 0, 0}}},
		{"trailing", [][]byte{append(bytes.Clone(segs[0]), 1)}},
		{"not a segment", [][]byte{raw}},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			if _, err := Reassemble(tt.segs); !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v, want ErrMalformed", err)
			}
		})
	}
	for _, b := range []Block{{Number: 0}, {Number: 1, Window: 64}} {
		if _, err := b.Marshal(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Marshal(%+v) = %v, want ErrInvalid", b, err)
		}
	}
	if _, err := Segment(raw, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Segment size 0: %v", err)
	}
	if segs, err := Segment(nil, 10); err != nil || len(segs) != 1 {
		t.Errorf("Segment(nil) = %d segments, %v", len(segs), err)
	}
}

// FuzzReassemble checks the block reader never panics.
func FuzzReassemble(f *testing.F) {
	v := loadVector(f)
	segs, _ := Segment(unhex(f, v.MessageHex), 100)
	f.Add(segs[0], segs[1])
	f.Add([]byte{0xE0, 0x80, 0, 1, 0, 0, 0}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, _ = Reassemble([][]byte{a, b})
		_, _ = ReassembleStream(append(bytes.Clone(a), b...))
		if blk, err := ParseBlock(a); err == nil {
			out, err := blk.Marshal()
			if err != nil || !bytes.Equal(out, a) {
				t.Fatalf("block round trip: %X from %X (%v)", out, a, err)
			}
		}
	})
}

// TestReassembleStream joins segments sent back to back, and refuses a
// stream with a truncated or foreign segment.
func TestReassembleStream(t *testing.T) {
	msg := unhex(t, loadVector(t).MessageHex)
	segs, err := Segment(msg, 40)
	if err != nil {
		t.Fatal(err)
	}
	stream := bytes.Join(segs, nil)
	if !IsBlockTransfer(stream) || IsBlockTransfer(msg) {
		t.Fatal("IsBlockTransfer")
	}
	got, err := ReassembleStream(stream)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("ReassembleStream: %v", err)
	}
	for name, in := range map[string][]byte{
		"empty":              {},
		"truncated":          stream[:len(stream)-1],
		"a message appended": append(bytes.Clone(stream), msg...),
		"last block missing": bytes.Join(segs[:len(segs)-1], nil),
	} {
		if _, err := ReassembleStream(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}
