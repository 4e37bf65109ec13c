package dlms

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// Data is one A-XDR Data value (gbcs-payloads.md 4.2): a tagged value, or an
// untagged element of a compact array, which carries the tag of its type
// description.
//
// Which fields are used depends on Tag:
//   - null-data: none.
//   - array, structure: Elems; Form is the form of the element count.
//   - boolean, bcd, unsigned, long-unsigned, double-long-unsigned,
//     long64-unsigned, enum, and the signed integer, long, double-long and
//     long64: Value, the content read as a big-endian unsigned number (two's
//     complement for the signed types, so integer -1 is 0xff). Use Int and
//     Uint to read it; the encoder refuses a Value that does not fit.
//   - octet-string, visible-string, utf8-string: Bytes; Form is the form of
//     the length.
//   - bit-string: BitLen bits, first bit the most significant bit of
//     Bytes[0]; Bytes holds (BitLen+7)/8 bytes, unused bits as read; Form is
//     the form of the bit count.
//   - float32, float64, date-time, date, time: Bytes, of the fixed size.
//   - compact-array: Type, the type description, and Elems, the contents
//     decoded by it; Form is the form of the contents length.
//
// The zero Data is null-data. Data values compare with Equal.
type Data struct {
	Tag    Tag
	Value  uint64
	Bytes  []byte
	BitLen int
	Elems  []Data
	Type   *TypeDesc
	Form   LengthForm
}

// maxDepth bounds the nesting of arrays, structures and type descriptions.
const maxDepth = 64

// path names the field being read; it is turned into text only for errors.
type path struct {
	parent *path
	name   string
	index  int // -1: no index
}

func (p *path) String() string {
	if p == nil {
		return "data"
	}
	var parts []string
	for q := p; q != nil; q = q.parent {
		s := q.name
		if q.index >= 0 {
			s += "[" + strconv.Itoa(q.index) + "]"
		}
		parts = append(parts, s)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// ParseData reads exactly one tagged Data value filling b.
func ParseData(b []byte) (Data, error) {
	r := &reader{b: b}
	d, err := r.data(&path{name: "data", index: -1}, 0)
	if err != nil {
		return Data{}, err
	}
	if r.remaining() != 0 {
		return Data{}, parseErr("data", r.off, "%d bytes after the value", r.remaining())
	}
	return d, nil
}

// data reads one tagged Data value.
func (r *reader) data(p *path, depth int) (Data, error) {
	if depth > maxDepth {
		return Data{}, parseErr(p.String(), r.off, "nested deeper than %d", maxDepth)
	}
	at := r.off
	c, err := r.byte(p.at())
	if err != nil {
		return Data{}, err
	}
	t := Tag(c)
	switch t.kind() {
	case kindUnknown:
		return Data{}, parseErr(p.String(), at, "unknown data tag 0x%02x", c)
	case kindList:
		n, form, err := r.length(p.sub("count"))
		if err != nil {
			return Data{}, err
		}
		// Every tagged element takes at least its tag byte.
		if n > r.remaining() {
			return Data{}, parseErr(p.String()+".count", at+1, "%s of %d elements, %d bytes remain", t, n, r.remaining())
		}
		d := Data{Tag: t, Form: form, Elems: make([]Data, n)}
		// One allocation for the elements' paths, not one each.
		kids := make([]path, n)
		for i := range d.Elems {
			kids[i] = path{parent: p, name: t.String(), index: i}
			if d.Elems[i], err = r.data(&kids[i], depth+1); err != nil {
				return Data{}, err
			}
		}
		return d, nil
	case kindCompact:
		return r.compact(p, depth)
	}
	return r.content(p, t)
}

// content reads the content of a value of a scalar tag t (not a list and
// not a compact array).
func (r *reader) content(p *path, t Tag) (Data, error) {
	d := Data{Tag: t}
	switch t.kind() {
	case kindNull:
	case kindInt, kindUint:
		v, err := r.uint(p.at(), t.size())
		if err != nil {
			return Data{}, err
		}
		d.Value = v
	case kindFixed:
		s, err := r.bytes(p.at(), t.size())
		if err != nil {
			return Data{}, err
		}
		d.Bytes = bytes.Clone(s)
	case kindString:
		at := r.off
		n, form, err := r.length(p.sub("length"))
		if err != nil {
			return Data{}, err
		}
		if n > r.remaining() {
			return Data{}, parseErr(p.String()+".length", at, "%s of %d bytes, %d remain", t, n, r.remaining())
		}
		s, _ := r.bytes(p.at(), n)
		d.Bytes, d.Form = bytes.Clone(s), form
	case kindBits:
		at := r.off
		n, form, err := r.length(p.sub("bit-count"))
		if err != nil {
			return Data{}, err
		}
		nb := (n + 7) / 8
		if nb > r.remaining() {
			return Data{}, parseErr(p.String()+".bit-count", at, "bit-string of %d bits needs %d bytes, %d remain", n, nb, r.remaining())
		}
		s, _ := r.bytes(p.at(), nb)
		d.Bytes, d.BitLen, d.Form = bytes.Clone(s), n, form
	default:
		return Data{}, parseErr(p.String(), r.off, "%s is not a simple type", t)
	}
	return d, nil
}

// MarshalBinary returns the A-XDR encoding of d, tag included.
func (d Data) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// AppendBinary appends the A-XDR encoding of d, tag included, to b.
func (d Data) AppendBinary(b []byte) ([]byte, error) {
	return d.appendTagged(b, 0)
}

func (d *Data) appendTagged(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, invalid("data nested deeper than %d", maxDepth)
	}
	switch d.Tag.kind() {
	case kindUnknown:
		return nil, invalid("unknown data tag 0x%02x", uint8(d.Tag))
	case kindList:
		if len(d.Elems) > maxLength {
			return nil, invalid("%s of %d elements, at most %d", d.Tag, len(d.Elems), maxLength)
		}
		b = append(b, byte(d.Tag))
		b = appendLength(b, len(d.Elems), d.Form)
		var err error
		for i := range d.Elems {
			if b, err = d.Elems[i].appendTagged(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case kindCompact:
		return d.appendCompact(b, depth)
	}
	return d.appendContent(append(b, byte(d.Tag)))
}

// appendContent appends the content of a scalar value, without its tag.
func (d *Data) appendContent(b []byte) ([]byte, error) {
	switch d.Tag.kind() {
	case kindNull:
		return b, nil
	case kindInt, kindUint:
		n := d.Tag.size()
		if n < 8 && d.Value>>(8*n) != 0 {
			return nil, invalid("%s value 0x%x does not fit %d bytes", d.Tag, d.Value, n)
		}
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(d.Value>>(8*i)))
		}
		return b, nil
	case kindFixed:
		if len(d.Bytes) != d.Tag.size() {
			return nil, invalid("%s of %d bytes, want %d", d.Tag, len(d.Bytes), d.Tag.size())
		}
		return append(b, d.Bytes...), nil
	case kindString:
		if len(d.Bytes) > maxLength {
			return nil, invalid("%s of %d bytes, at most %d", d.Tag, len(d.Bytes), maxLength)
		}
		b = appendLength(b, len(d.Bytes), d.Form)
		return append(b, d.Bytes...), nil
	case kindBits:
		if d.BitLen < 0 || d.BitLen > maxLength || len(d.Bytes) != (d.BitLen+7)/8 {
			return nil, invalid("bit-string of %d bits with %d bytes", d.BitLen, len(d.Bytes))
		}
		b = appendLength(b, d.BitLen, d.Form)
		return append(b, d.Bytes...), nil
	}
	return nil, invalid("%s is not a simple type", d.Tag)
}

// Equal reports whether d and e are the same value written the same way.
func (d Data) Equal(e Data) bool {
	if d.Tag != e.Tag || d.Value != e.Value || !bytes.Equal(d.Bytes, e.Bytes) ||
		d.BitLen != e.BitLen || d.Form != e.Form || len(d.Elems) != len(e.Elems) {
		return false
	}
	if (d.Type == nil) != (e.Type == nil) || d.Type != nil && !d.Type.Equal(*e.Type) {
		return false
	}
	for i := range d.Elems {
		if !d.Elems[i].Equal(e.Elems[i]) {
			return false
		}
	}
	return true
}

// Int returns the value of a signed or unsigned number, sign-extended for
// the signed types (integer, long, double-long, long64).
func (d Data) Int() int64 {
	if d.Tag.kind() == kindInt {
		shift := 64 - 8*d.Tag.size()
		return int64(d.Value<<shift) >> shift
	}
	return int64(d.Value)
}

// Uint returns Value, the content of a number read as unsigned.
func (d Data) Uint() uint64 { return d.Value }

// Bool returns the value of a boolean: true unless the byte is zero.
func (d Data) Bool() bool { return d.Value != 0 }

// Float returns the value of a float32 or float64, and false for other tags.
func (d Data) Float() (float64, bool) {
	switch {
	case d.Tag == TagFloat32 && len(d.Bytes) == 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(d.Bytes))), true
	case d.Tag == TagFloat64 && len(d.Bytes) == 8:
		return math.Float64frombits(binary.BigEndian.Uint64(d.Bytes)), true
	}
	return 0, false
}

// Constructors for readable code. Each returns a value in the minimal form.

// Null returns null-data.
func Null() Data { return Data{} }

// Array returns an array of elems.
func Array(elems ...Data) Data { return Data{Tag: TagArray, Elems: elems} }

// Structure returns a structure of elems.
func Structure(elems ...Data) Data { return Data{Tag: TagStructure, Elems: elems} }

// Boolean returns a boolean, written 01 for true and 00 for false.
func Boolean(v bool) Data {
	if v {
		return Data{Tag: TagBoolean, Value: 1}
	}
	return Data{Tag: TagBoolean}
}

// BitString returns a bit-string of n bits taken from the most significant
// bits of b; b must hold (n+7)/8 bytes.
func BitString(b []byte, n int) Data { return Data{Tag: TagBitString, Bytes: b, BitLen: n} }

// DoubleLong returns a double-long (int32).
func DoubleLong(v int32) Data { return Data{Tag: TagDoubleLong, Value: uint64(uint32(v))} }

// DoubleLongUnsigned returns a double-long-unsigned (uint32).
func DoubleLongUnsigned(v uint32) Data { return Data{Tag: TagDoubleLongUnsigned, Value: uint64(v)} }

// OctetString returns an octet-string holding b.
func OctetString(b []byte) Data { return Data{Tag: TagOctetString, Bytes: b} }

// VisibleString returns a visible-string holding s.
func VisibleString(s string) Data { return Data{Tag: TagVisibleString, Bytes: []byte(s)} }

// UTF8String returns a utf8-string holding s.
func UTF8String(s string) Data { return Data{Tag: TagUTF8String, Bytes: []byte(s)} }

// Integer returns an integer (int8).
func Integer(v int8) Data { return Data{Tag: TagInteger, Value: uint64(uint8(v))} }

// Long returns a long (int16).
func Long(v int16) Data { return Data{Tag: TagLong, Value: uint64(uint16(v))} }

// Unsigned returns an unsigned (uint8).
func Unsigned(v uint8) Data { return Data{Tag: TagUnsigned, Value: uint64(v)} }

// LongUnsigned returns a long-unsigned (uint16).
func LongUnsigned(v uint16) Data { return Data{Tag: TagLongUnsigned, Value: uint64(v)} }

// Long64 returns a long64 (int64).
func Long64(v int64) Data { return Data{Tag: TagLong64, Value: uint64(v)} }

// Long64Unsigned returns a long64-unsigned (uint64).
func Long64Unsigned(v uint64) Data { return Data{Tag: TagLong64Unsigned, Value: v} }

// Enum returns an enum.
func Enum(v uint8) Data { return Data{Tag: TagEnum, Value: uint64(v)} }

// Float32 returns a float32.
func Float32(v float32) Data {
	return Data{Tag: TagFloat32, Bytes: binary.BigEndian.AppendUint32(nil, math.Float32bits(v))}
}

// Float64 returns a float64.
func Float64(v float64) Data {
	return Data{Tag: TagFloat64, Bytes: binary.BigEndian.AppendUint64(nil, math.Float64bits(v))}
}

// CompactArray returns a compact-array of elems, each following td.
func CompactArray(td TypeDesc, elems ...Data) Data {
	return Data{Tag: TagCompactArray, Type: &td, Elems: elems}
}
