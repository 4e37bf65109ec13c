package asn

import (
	"slices"
	"time"
)

// Universal and context tags used by the payloads.
const (
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagNull            = 0x05
	tagEnumerated      = 0x0A
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
)

// self is the name a node uses in its DERLengths for its own TLV.
const self = "self"

// maxLength is the largest length the encoder writes (three length bytes,
// 83 hh mm ll); the framing around a payload cannot carry more.
const maxLength = 0xFFFFFF

// reader walks the bytes of one TLV's content, remembering the offset of its
// first byte in the payload so errors name positions in the caller's input.
type reader struct {
	b   []byte
	off int
}

func (r *reader) empty() bool { return len(r.b) == 0 }

// peek returns the next tag byte, if any.
func (r *reader) peek() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	return r.b[0], true
}

// done reports trailing bytes after the last field of a SEQUENCE or payload.
func (r *reader) done(field string) error {
	if len(r.b) != 0 {
		return parseErr(field, r.off, "%d unexpected trailing bytes starting 0x%02X", len(r.b), r.b[0])
	}
	return nil
}

// next reads one TLV whose tag must be tag and returns a reader over its
// content, and whether its length was written in the DER form 81 xx (which
// the encoder writes only when told to).
//
// Accepted length forms: one byte for 0 to 127; 81 xx for 128 to 255; 82 hh
// ll for 128 to 65535 (so 82 00 xx, the GB form, for 128 to 255); 83 for
// 65536 and more. A long form for a length the short form can hold, or a
// leading zero where the GB rule does not write one, is refused: no encoder
// produces it, and refusing it keeps decode then encode exact.
func (r *reader) next(field string, tag byte) (reader, bool, error) {
	start := r.off
	if len(r.b) == 0 {
		return reader{}, false, parseErr(field, start, "truncated: want tag 0x%02X, have no bytes", tag)
	}
	if r.b[0] != tag {
		return reader{}, false, parseErr(field, start, "want tag 0x%02X, have 0x%02X", tag, r.b[0])
	}
	n, hdr, der81, err := readLength(r.b[1:], field, start+1)
	if err != nil {
		return reader{}, false, err
	}
	if avail := len(r.b) - 1 - hdr; n > avail {
		return reader{}, false, parseErr(field, start+1, "length %d exceeds the %d bytes that remain", n, avail)
	}
	content := reader{b: r.b[1+hdr : 1+hdr+n : 1+hdr+n], off: start + 1 + hdr}
	r.b = r.b[1+hdr+n:]
	r.off += 1 + hdr + n
	return content, der81, nil
}

// readLength decodes a length at the start of b; off is b's offset in the
// payload. It returns the length, the size of its encoding and whether it
// was the DER form 81 xx.
func readLength(b []byte, field string, off int) (n, size int, der81 bool, err error) {
	if len(b) == 0 {
		return 0, 0, false, parseErr(field, off, "truncated: no length byte")
	}
	c := b[0]
	if c < 0x80 {
		return int(c), 1, false, nil
	}
	k := int(c & 0x7F)
	switch {
	case c == 0x80:
		return 0, 0, false, parseErr(field, off, "indefinite length is not allowed")
	case k > 3:
		return 0, 0, false, parseErr(field, off, "unsupported length form 0x%02X", c)
	case len(b) < 1+k:
		return 0, 0, false, parseErr(field, off, "truncated: length needs %d bytes, have %d", k, len(b)-1)
	}
	for _, d := range b[1 : 1+k] {
		n = n<<8 | int(d)
	}
	switch {
	case n < 0x80:
		return 0, 0, false, parseErr(field, off, "length %d in long form % X; lengths below 128 take one byte", n, b[:1+k])
	case k == 3 && n <= 0xFFFF:
		return 0, 0, false, parseErr(field, off, "length %d in non-minimal form % X", n, b[:1+k])
	}
	return n, 1 + k, k == 1, nil
}

// raw reads one TLV with the given tag and returns a copy of all of it:
// tag, length and content. Certificates and certification requests are kept
// this way.
func (r *reader) raw(field string, tag byte) ([]byte, error) {
	before := r.b
	if _, _, err := r.next(field, tag); err != nil {
		return nil, err
	}
	return slices.Clone(before[:len(before)-len(r.b)]), nil
}

// integerContent checks the content of an INTEGER or ENUMERATED.
func integerContent(c reader, field string, maxBytes int) error {
	switch {
	case len(c.b) == 0:
		return parseErr(field, c.off, "empty INTEGER")
	case len(c.b) > maxBytes:
		return parseErr(field, c.off, "INTEGER of %d bytes is too large (at most %d)", len(c.b), maxBytes)
	case len(c.b) > 1 && (c.b[0] == 0x00 && c.b[1]&0x80 == 0 || c.b[0] == 0xFF && c.b[1]&0x80 != 0):
		return parseErr(field, c.off, "non-minimal INTEGER encoding % X", c.b[:2])
	}
	return nil
}

// int reads an INTEGER (or, with tag 0x0A, an ENUMERATED) that fits in an
// int64.
func (r *reader) int(field string, tag byte) (int64, error) {
	c, _, err := r.next(field, tag)
	if err != nil {
		return 0, err
	}
	if err := integerContent(c, field, 8); err != nil {
		return 0, err
	}
	v := int64(int8(c.b[0]))
	for _, d := range c.b[1:] {
		v = v<<8 | int64(d)
	}
	return v, nil
}

// uint reads a non-negative INTEGER below 2^64.
func (r *reader) uint(field string) (uint64, error) {
	c, _, err := r.next(field, tagInteger)
	if err != nil {
		return 0, err
	}
	if err := integerContent(c, field, 9); err != nil {
		return 0, err
	}
	if c.b[0]&0x80 != 0 {
		return 0, parseErr(field, c.off, "negative INTEGER where a counter is expected")
	}
	if len(c.b) == 9 && c.b[0] != 0 {
		return 0, parseErr(field, c.off, "INTEGER does not fit in 64 bits")
	}
	var v uint64
	for _, d := range c.b {
		v = v<<8 | uint64(d)
	}
	return v, nil
}

// octets reads an OCTET STRING (or an IMPLICIT tagged one) and returns a
// copy of its content, never nil.
func (r *reader) octets(field string, tag byte) (Octets, bool, error) {
	c, der81, err := r.next(field, tag)
	if err != nil {
		return nil, false, err
	}
	return append(Octets{}, c.b...), der81, nil
}

// fixed reads an OCTET STRING of exactly len(out) bytes into out.
func (r *reader) fixed(field string, out []byte) error {
	c, _, err := r.next(field, tagOctetString)
	if err != nil {
		return err
	}
	if len(c.b) != len(out) {
		return parseErr(field, c.off, "want %d bytes, have %d", len(out), len(c.b))
	}
	copy(out, c.b)
	return nil
}

// null reads a NULL.
func (r *reader) null(field string) error {
	c, _, err := r.next(field, tagNull)
	if err != nil {
		return err
	}
	if len(c.b) != 0 {
		return parseErr(field, c.off, "NULL with %d content bytes", len(c.b))
	}
	return nil
}

// time reads a GeneralizedTime in the 15-character form YYYYMMDDhhmmssZ.
func (r *reader) time(field string) (GeneralizedTime, error) {
	c, _, err := r.next(field, tagGeneralizedTime)
	if err != nil {
		return GeneralizedTime{}, err
	}
	t, err := parseGeneralizedTime(c.b)
	if err != nil {
		return GeneralizedTime{}, parseErr(field, c.off, "%v", err)
	}
	return t, nil
}

// encoder appends TLVs to b. The first error sticks; later calls do nothing.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(field, format string, args ...any) {
	if e.err == nil {
		e.err = invalid(field, format, args...)
	}
}

// tlv writes tag, then the content body appends, then inserts the length in
// front of the content: one byte below 128, 81 xx when der81 is set and the
// length is 128 to 255, otherwise 82 hh ll (83 beyond 65535).
func (e *encoder) tlv(field string, tag byte, der81 bool, body func()) {
	if e.err != nil {
		return
	}
	e.b = append(e.b, tag)
	start := len(e.b)
	body()
	if e.err != nil {
		return
	}
	n := len(e.b) - start
	var h [4]byte
	var hl int
	switch {
	case n < 0x80:
		h[0], hl = byte(n), 1
	case der81 && n <= 0xFF:
		h[0], h[1], hl = 0x81, byte(n), 2
	case n <= 0xFFFF:
		h[0], h[1], h[2], hl = 0x82, byte(n>>8), byte(n), 3
	case n <= maxLength:
		h[0], h[1], h[2], h[3], hl = 0x83, byte(n>>16), byte(n>>8), byte(n), 4
	default:
		e.fail(field, "content of %d bytes is too long to encode", n)
		return
	}
	e.b = append(e.b, h[:hl]...)
	copy(e.b[start+hl:], e.b[start:start+n])
	copy(e.b[start:], h[:hl])
}

// int writes an INTEGER (tag 0x02) or ENUMERATED (0x0A) in minimal two's
// complement.
func (e *encoder) int(tag byte, v int64) {
	if e.err != nil {
		return
	}
	n := 1
	for n < 8 && (v >= 0 && v>>(8*n-1) != 0 || v < 0 && v>>(8*n-1) != -1) {
		n++
	}
	e.b = append(e.b, tag, byte(n))
	for i := n - 1; i >= 0; i-- {
		e.b = append(e.b, byte(v>>(8*i)))
	}
}

// uint writes a non-negative INTEGER.
func (e *encoder) uint(v uint64) {
	if e.err != nil {
		return
	}
	n := 1
	for n < 9 && v>>(8*n-1) != 0 {
		n++
	}
	e.b = append(e.b, tagInteger, byte(n))
	for i := n - 1; i >= 0; i-- {
		if i >= 8 {
			e.b = append(e.b, 0)
			continue
		}
		e.b = append(e.b, byte(v>>(8*i)))
	}
}

// octets writes an OCTET STRING (or an IMPLICIT tagged one).
func (e *encoder) octets(field string, tag byte, der81 bool, v []byte) {
	e.tlv(field, tag, der81, func() { e.b = append(e.b, v...) })
}

// null writes a NULL.
func (e *encoder) null() {
	if e.err == nil {
		e.b = append(e.b, tagNull, 0)
	}
}

// time writes a GeneralizedTime.
func (e *encoder) time(field string, t GeneralizedTime) {
	if e.err != nil {
		return
	}
	if y := t.t.Year(); y < 0 || y > 9999 {
		e.fail(field, "year %d does not fit in a GeneralizedTime", y)
		return
	}
	e.b = append(e.b, tagGeneralizedTime, 15)
	e.b = t.t.UTC().AppendFormat(e.b, generalizedTimeLayout)
}

// raw writes a complete DER element that must be one TLV with the given tag.
func (e *encoder) raw(field string, tag byte, der []byte) {
	if e.err != nil {
		return
	}
	r := reader{b: der}
	if _, err := r.raw(field, tag); err != nil {
		e.fail(field, "not one DER element: %v", err)
		return
	}
	if !r.empty() {
		e.fail(field, "%d bytes after the DER element", len(r.b))
		return
	}
	e.b = append(e.b, der...)
}

// finish returns the encoding or the first error.
func (e *encoder) finish() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

const generalizedTimeLayout = "20060102150405Z"

// parseGeneralizedTime accepts exactly YYYYMMDDhhmmssZ with a valid date and
// time of day.
func parseGeneralizedTime(b []byte) (GeneralizedTime, error) {
	if len(b) != 15 || b[14] != 'Z' {
		return GeneralizedTime{}, errorString("want 15 characters YYYYMMDDhhmmssZ")
	}
	for _, c := range b[:14] {
		if c < '0' || c > '9' {
			return GeneralizedTime{}, errorString("want 15 characters YYYYMMDDhhmmssZ")
		}
	}
	t, err := time.Parse(generalizedTimeLayout, string(b))
	if err != nil || t.Format(generalizedTimeLayout) != string(b) {
		return GeneralizedTime{}, errorString("not a valid date and time: " + string(b))
	}
	return GeneralizedTime{t: t}, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// has reports whether list names name; the DERLengths fields use it.
func has(list []string, name string) bool { return slices.Contains(list, name) }

// record appends name to a DERLengths list when der81 is set.
func record(list *[]string, der81 bool, name string) {
	if der81 {
		*list = append(*list, name)
	}
}

// decodeTop reads a payload that must be exactly one TLV with the given tag,
// hands its content to body, and checks that body consumed it all. lengths
// receives "self" when the TLV's length used the 81 form; a type whose
// payload is always shorter than 128 bytes passes nil.
func decodeTop(b []byte, name string, tag byte, lengths *[]string, body func(*reader) error) error {
	r := reader{b: b}
	s, der81, err := r.next(name, tag)
	if err != nil {
		return err
	}
	if der81 {
		if lengths == nil {
			return parseErr(name, 1, "length form 81 on a %s, which is always shorter than 128 bytes", name)
		}
		record(lengths, der81, self)
	}
	if err := body(&s); err != nil {
		return err
	}
	if err := s.done(name); err != nil {
		return err
	}
	return r.done(name)
}
