package commands

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Block is one DLMS general block transfer (GBT) segment, the form GBCS uses
// to carry a message too large for one frame (DLMS Green Book, general block
// transfer; GBCS section 4.3):
//
//	E0 <block-control: 1> <block-number: 2> <block-number-ack: 2> <DER length> <block-data>
//
// block-control holds last-block (bit 7), streaming (bit 6) and the window
// size (bits 5 to 0). Block numbers start at 1. The block-data of all blocks,
// in order, is the whole message.
type Block struct {
	Last      bool
	Streaming bool
	// Window is the window size, 0 to 63.
	Window uint8
	// Number is the block number, from 1.
	Number uint16
	// Ack is the block-number-ack (0 when unused).
	Ack uint16
	// Data is this block's share of the message.
	Data []byte
}

// ParseBlock reads one general block transfer segment.
func ParseBlock(b []byte) (*Block, error) {
	r := &reader{b: b}
	if err := r.expect("block-transfer.tag", tagGeneralBlockXfer); err != nil {
		return nil, err
	}
	hdr, err := r.bytes("block-transfer.header", 5)
	if err != nil {
		return nil, err
	}
	blk := &Block{
		Last:      hdr[0]&0x80 != 0,
		Streaming: hdr[0]&0x40 != 0,
		Window:    hdr[0] & 0x3f,
		Number:    binary.BigEndian.Uint16(hdr[1:3]),
		Ack:       binary.BigEndian.Uint16(hdr[3:5]),
	}
	if blk.Number == 0 {
		return nil, parseErr("block-transfer.block-number", 2, "block numbers start at 1")
	}
	n, err := r.length("block-transfer.block-data")
	if err != nil {
		return nil, err
	}
	blk.Data, _ = r.bytes("block-transfer.block-data", n)
	if r.remaining() != 0 {
		return nil, parseErr("block-transfer", r.off(), "%d trailing bytes", r.remaining())
	}
	return blk, nil
}

// Marshal encodes the block.
func (b *Block) Marshal() ([]byte, error) {
	if b.Window > 0x3f {
		return nil, fmt.Errorf("%w: block transfer window %d exceeds 63", ErrInvalid, b.Window)
	}
	if b.Number == 0 {
		return nil, fmt.Errorf("%w: block number 0", ErrInvalid)
	}
	ctl := b.Window
	if b.Last {
		ctl |= 0x80
	}
	if b.Streaming {
		ctl |= 0x40
	}
	out := make([]byte, 0, 6+lenBytes(len(b.Data))+len(b.Data))
	out = append(out, tagGeneralBlockXfer, ctl)
	out = binary.BigEndian.AppendUint16(out, b.Number)
	out = binary.BigEndian.AppendUint16(out, b.Ack)
	out, err := appendLength(out, len(b.Data))
	if err != nil {
		return nil, err
	}
	return append(out, b.Data...), nil
}

// Segment splits a whole message into general block transfer segments of at
// most size bytes of block-data each, numbered from 1, the last one flagged.
func Segment(msg []byte, size int) ([][]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: segment size %d", ErrInvalid, size)
	}
	n := (len(msg) + size - 1) / size
	if n == 0 {
		n = 1
	}
	if n > 0xffff {
		return nil, fmt.Errorf("%w: %d segments exceed 65535", ErrInvalid, n)
	}
	out := make([][]byte, 0, n)
	for i := range n {
		end := min((i+1)*size, len(msg))
		b := Block{Last: i == n-1, Number: uint16(i + 1), Data: msg[i*size : end]}
		enc, err := b.Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, enc)
	}
	return out, nil
}

// Reassemble joins general block transfer segments, given in any order, into
// the whole message. It requires blocks 1 to n each exactly once, the last
// flag on block n and on no other, and returns the concatenated block-data,
// which Parse then reads.
func Reassemble(segments [][]byte) ([]byte, error) {
	if len(segments) == 0 {
		return nil, parseErr("block-transfer", 0, "no segments")
	}
	blocks := make([]*Block, 0, len(segments))
	total := 0
	for i, s := range segments {
		b, err := ParseBlock(s)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		total += len(b.Data)
		blocks = append(blocks, b)
	}
	if total > maxMessageLen {
		return nil, parseErr("block-transfer", 0, "reassembled message of %d bytes exceeds %d", total, maxMessageLen)
	}
	sort.SliceStable(blocks, func(i, j int) bool { return blocks[i].Number < blocks[j].Number })
	out := make([]byte, 0, total)
	for i, b := range blocks {
		if int(b.Number) != i+1 {
			return nil, parseErr("block-transfer.block-number", 2, "blocks out of sequence: want block %d, have %d", i+1, b.Number)
		}
		if b.Last != (i == len(blocks)-1) {
			return nil, parseErr("block-transfer.block-control", 1, "block %d of %d has last-block %t", b.Number, len(blocks), b.Last)
		}
		out = append(out, b.Data...)
	}
	return out, nil
}

// SplitSegments reads a run of general block transfer segments sent back to
// back (each delimits itself by its DER length), as a device or its
// communications hub returns a response too large for one message.
func SplitSegments(b []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(b); {
		r := &reader{b: b, pos: off}
		if err := r.expect("block-transfer.tag", tagGeneralBlockXfer); err != nil {
			return nil, err
		}
		if _, err := r.bytes("block-transfer.header", 5); err != nil {
			return nil, err
		}
		n, err := r.length("block-transfer.block-data")
		if err != nil {
			return nil, err
		}
		end := r.pos + n
		out = append(out, b[off:end:end])
		off = end
	}
	if len(out) == 0 {
		return nil, parseErr("block-transfer", 0, "no segments")
	}
	return out, nil
}

// ReassembleStream joins a run of segments sent back to back into the whole
// message: SplitSegments, then Reassemble.
func ReassembleStream(b []byte) ([]byte, error) {
	segs, err := SplitSegments(b)
	if err != nil {
		return nil, err
	}
	return Reassemble(segs)
}

// IsBlockTransfer reports whether b starts a general block transfer segment
// rather than a whole message.
func IsBlockTransfer(b []byte) bool { return len(b) > 0 && b[0] == tagGeneralBlockXfer }
