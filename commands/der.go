package commands

import "fmt"

// reader walks a byte slice, remembering the absolute offset of its start so
// errors name positions in the caller's input.
type reader struct {
	b    []byte
	pos  int
	base int
}

func (r *reader) off() int       { return r.base + r.pos }
func (r *reader) remaining() int { return len(r.b) - r.pos }

func (r *reader) byte(field string) (byte, error) {
	if r.remaining() < 1 {
		return 0, parseErr(field, r.off(), "truncated: need 1 byte, have 0")
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(field string, n int) ([]byte, error) {
	if n < 0 || r.remaining() < n {
		return nil, parseErr(field, r.off(), "truncated: need %d bytes, have %d", n, r.remaining())
	}
	s := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *reader) expect(field string, want byte) error {
	at := r.off()
	c, err := r.byte(field)
	if err != nil {
		return err
	}
	if c != want {
		return parseErr(field, at, "want 0x%02X, have 0x%02X", want, c)
	}
	return nil
}

// length reads a DER length (short form, or long form 81 xx / 82 xx xx /
// 83 xx xx xx) and bounds it against what remains. Non-minimal encodings are
// refused, as DER requires, so that parsing then building gives back the same
// bytes.
func (r *reader) length(field string) (int, error) {
	at := r.off()
	n, long, err := r.lengthAsFound(field)
	if err != nil {
		return 0, err
	}
	if long != 0 {
		return 0, parseErr(field+".length", at, "non-minimal length encoding % X", r.b[at-r.base:r.pos])
	}
	return n, nil
}

// lengthAsFound reads a length like length but accepts a non-minimal long
// form (81 05, 82 00 90), as the GBCS parser does. long is 0 when the
// encoding was minimal and otherwise the number of bytes after the 0x8N
// byte, which appendLengthForm takes to write the same bytes again.
func (r *reader) lengthAsFound(field string) (n, long int, err error) {
	at := r.off()
	if r.remaining() < 1 {
		return 0, 0, parseErr(field+".length", at, "truncated: need 1 byte, have 0")
	}
	c := r.b[r.pos]
	r.pos++
	n = int(c)
	if c&0x80 != 0 {
		k := int(c & 0x7f)
		if k == 0 || k > 3 {
			return 0, 0, parseErr(field+".length", at, "unsupported length form 0x%02X", c)
		}
		if r.remaining() < k {
			return 0, 0, parseErr(field+".length", r.off(), "truncated: need %d bytes, have %d", k, r.remaining())
		}
		n = 0
		for _, d := range r.b[r.pos : r.pos+k] {
			n = n<<8 | int(d)
		}
		r.pos += k
		if lenBytes(n) != 1+k {
			long = k
		}
	}
	if n > r.remaining() {
		return 0, 0, parseErr(field+".length", at, "length %d exceeds the %d bytes that remain", n, r.remaining())
	}
	return n, long, nil
}

// lenBytes reports the size of the DER length encoding of n.
func lenBytes(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	default:
		return 4
	}
}

// appendLengthForm appends n in the long form of long bytes (81, 82 or 83)
// when long is set and can hold n, otherwise in minimal DER form: a length
// read non-minimally is written back the same way until the value outgrows
// the form.
func appendLengthForm(b []byte, n, long int) ([]byte, error) {
	if long < 1 || long > 3 || n < 0 || n >= 1<<(8*long) {
		return appendLength(b, n)
	}
	b = append(b, 0x80|byte(long))
	for i := long - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b, nil
}

// lenBytesForm is the size appendLengthForm writes.
func lenBytesForm(n, long int) int {
	if long < 1 || long > 3 || n < 0 || n >= 1<<(8*long) {
		return lenBytes(n)
	}
	return 1 + long
}

// appendLength appends n in minimal DER length form.
func appendLength(b []byte, n int) ([]byte, error) {
	switch {
	case n < 0:
		return b, fmt.Errorf("%w: negative length %d", ErrInvalid, n)
	case n < 0x80:
		return append(b, byte(n)), nil
	case n <= 0xff:
		return append(b, 0x81, byte(n)), nil
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n)), nil
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n)), nil
	}
	return b, fmt.Errorf("%w: length %d too large", ErrInvalid, n)
}
