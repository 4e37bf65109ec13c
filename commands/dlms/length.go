package dlms

import "fmt"

// LengthForm records how a length or count was written when it was not in
// its shortest form, so that a decoded value is written back byte for byte.
// A-XDR writes a length below 128 as one byte and a larger one as 81 xx or
// 82 xx xx; the decoder also accepts 81 and 82 for smaller values.
type LengthForm uint8

// Length forms. The zero value, LengthMinimal, is what constructors use and
// what the encoder falls back to when a recorded form can no longer hold the
// length.
const (
	// LengthMinimal is the shortest form.
	LengthMinimal LengthForm = iota
	// Length81 is 81 xx for a length below 128.
	Length81
	// Length82 is 82 xx xx for a length below 256.
	Length82
)

// String returns "minimal", "81" or "82".
func (f LengthForm) String() string {
	switch f {
	case LengthMinimal:
		return "minimal"
	case Length81:
		return "81"
	case Length82:
		return "82"
	}
	return fmt.Sprintf("LengthForm(%d)", uint8(f))
}

// MarshalText implements encoding.TextMarshaler.
func (f LengthForm) MarshalText() ([]byte, error) {
	if f > Length82 {
		return nil, invalid("length form %d", uint8(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LengthForm) UnmarshalText(b []byte) error {
	switch string(b) {
	case "", "minimal":
		*f = LengthMinimal
	case "81":
		*f = Length81
	case "82":
		*f = Length82
	default:
		return invalid("length form %q, want minimal, 81 or 82", b)
	}
	return nil
}

// maxLength is the largest length the 82 xx xx form holds.
const maxLength = 0xFFFF

// appendLength writes n in form f, or in the minimal form when f cannot
// hold n. The caller has checked n <= maxLength.
func appendLength(b []byte, n int, f LengthForm) []byte {
	switch {
	case n >= 0x100 || f == Length82:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n >= 0x80 || f == Length81:
		return append(b, 0x81, byte(n))
	}
	return append(b, byte(n))
}

// field names the part of the input being read; it is turned into text
// only for an error, so that reading allocates no names.
type field struct {
	p      *path
	suffix string
}

// name is a field named by a fixed string.
func name(s string) field { return field{suffix: s} }

func (f field) String() string {
	switch {
	case f.p == nil:
		return f.suffix
	case f.suffix == "":
		return f.p.String()
	}
	return f.p.String() + "." + f.suffix
}

// at is the field p itself; sub is its part named s.
func (p *path) at() field          { return field{p: p} }
func (p *path) sub(s string) field { return field{p: p, suffix: s} }

// reader walks an input, reporting offsets relative to the start of the
// outermost input.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) byte(f field) (byte, error) {
	if r.off >= len(r.b) {
		return 0, parseErr(f.String(), r.off, "input ends, want 1 byte")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(f field, n int) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, parseErr(f.String(), r.off, "want %d bytes, %d remain", n, r.remaining())
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) uint(f field, n int) (uint64, error) {
	s, err := r.bytes(f, n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range s {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// length reads an A-XDR length or quantity and its form. It does not check
// the value against the input; callers bound it.
func (r *reader) length(f field) (int, LengthForm, error) {
	at := r.off
	c, err := r.byte(f)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case c < 0x80:
		return int(c), LengthMinimal, nil
	case c == 0x81:
		v, err := r.uint(f, 1)
		if err != nil {
			return 0, 0, err
		}
		if v < 0x80 {
			return int(v), Length81, nil
		}
		return int(v), LengthMinimal, nil
	case c == 0x82:
		v, err := r.uint(f, 2)
		if err != nil {
			return 0, 0, err
		}
		if v < 0x100 {
			return int(v), Length82, nil
		}
		return int(v), LengthMinimal, nil
	}
	return 0, 0, parseErr(f.String(), at, "length byte 0x%02x: want < 0x80, 0x81 or 0x82", c)
}

// minimalLength reads a length that must be in its shortest form: the
// counts at APDU level, where no form is recorded.
func (r *reader) minimalLength(f field) (int, error) {
	at := r.off
	n, form, err := r.length(f)
	if err != nil {
		return 0, err
	}
	if form != LengthMinimal {
		return 0, parseErr(f.String(), at, "count %d not in its shortest form", n)
	}
	return n, nil
}
