package dlms

import "fmt"

// Tag is the one-byte type tag of an A-XDR Data value (IEC 62056-6-2; the
// GBCS subset is gbcs-payloads.md 4.2).
type Tag uint8

// The Data tags this package reads and writes.
const (
	TagNull               Tag = 0x00 // null-data, no content
	TagArray              Tag = 0x01 // array: count, then elements
	TagStructure          Tag = 0x02 // structure: count, then elements
	TagBoolean            Tag = 0x03 // boolean, 1 byte
	TagBitString          Tag = 0x04 // bit-string: bit count, then bytes
	TagDoubleLong         Tag = 0x05 // double-long, 4 bytes signed
	TagDoubleLongUnsigned Tag = 0x06 // double-long-unsigned, 4 bytes
	TagOctetString        Tag = 0x09 // octet-string: length, then bytes
	TagVisibleString      Tag = 0x0A // visible-string: length, then bytes
	TagUTF8String         Tag = 0x0C // utf8-string: length, then bytes
	TagBCD                Tag = 0x0D // bcd, 1 byte
	TagInteger            Tag = 0x0F // integer, 1 byte signed
	TagLong               Tag = 0x10 // long, 2 bytes signed
	TagUnsigned           Tag = 0x11 // unsigned, 1 byte
	TagLongUnsigned       Tag = 0x12 // long-unsigned, 2 bytes
	TagCompactArray       Tag = 0x13 // compact-array: type description, contents length, contents
	TagLong64             Tag = 0x14 // long64, 8 bytes signed
	TagLong64Unsigned     Tag = 0x15 // long64-unsigned, 8 bytes
	TagEnum               Tag = 0x16 // enum, 1 byte
	TagFloat32            Tag = 0x17 // float32, 4 bytes IEEE 754
	TagFloat64            Tag = 0x18 // float64, 8 bytes IEEE 754
	TagDateTime           Tag = 0x19 // date-time, 12 bytes (4.3)
	TagDate               Tag = 0x1A // date, 5 bytes
	TagTime               Tag = 0x1B // time, 4 bytes
)

// tagKind says how the content after a tag is laid out.
type tagKind uint8

const (
	kindUnknown tagKind = iota
	kindNull            // nothing
	kindList            // array or structure: count then Data
	kindInt             // fixed-size two's complement number
	kindUint            // fixed-size unsigned number (boolean, bcd, enum too)
	kindFixed           // fixed-size bytes (floats, date, time, date-time)
	kindString          // length then bytes
	kindBits            // bit count then bytes
	kindCompact         // compact-array
)

type tagInfo struct {
	name string
	kind tagKind
	size int // content size of the fixed-size kinds
}

var tags = map[Tag]tagInfo{
	TagNull:               {"null-data", kindNull, 0},
	TagArray:              {"array", kindList, 0},
	TagStructure:          {"structure", kindList, 0},
	TagBoolean:            {"boolean", kindUint, 1},
	TagBitString:          {"bit-string", kindBits, 0},
	TagDoubleLong:         {"double-long", kindInt, 4},
	TagDoubleLongUnsigned: {"double-long-unsigned", kindUint, 4},
	TagOctetString:        {"octet-string", kindString, 0},
	TagVisibleString:      {"visible-string", kindString, 0},
	TagUTF8String:         {"utf8-string", kindString, 0},
	TagBCD:                {"bcd", kindUint, 1},
	TagInteger:            {"integer", kindInt, 1},
	TagLong:               {"long", kindInt, 2},
	TagUnsigned:           {"unsigned", kindUint, 1},
	TagLongUnsigned:       {"long-unsigned", kindUint, 2},
	TagCompactArray:       {"compact-array", kindCompact, 0},
	TagLong64:             {"long64", kindInt, 8},
	TagLong64Unsigned:     {"long64-unsigned", kindUint, 8},
	TagEnum:               {"enum", kindUint, 1},
	TagFloat32:            {"float32", kindFixed, 4},
	TagFloat64:            {"float64", kindFixed, 8},
	TagDateTime:           {"date-time", kindFixed, 12},
	TagDate:               {"date", kindFixed, 5},
	TagTime:               {"time", kindFixed, 4},
}

// String returns the IEC 62056-6-2 name of the tag, such as "long-unsigned",
// or "tag 0xNN" for a tag this package does not know.
func (t Tag) String() string {
	if i := tagTable[t]; i.known {
		return i.name
	}
	return fmt.Sprintf("tag 0x%02x", uint8(t))
}

// Known reports whether the package can read and write values of tag t.
func (t Tag) Known() bool { return tagTable[t].known }

func (t Tag) kind() tagKind { return tagTable[t].kind }
func (t Tag) size() int     { return tagTable[t].size }

// tagTable is tags indexed by tag byte: the decoder asks it for every value
// it reads, and an array look-up costs a fraction of a map's.
var tagTable = func() (a [256]struct {
	tagInfo
	known bool
}) {
	for t, i := range tags {
		a[t].tagInfo, a[t].known = i, true
	}
	return a
}()
