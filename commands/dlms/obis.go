package dlms

import (
	"fmt"
	"strconv"
	"strings"
)

// OBIS is a COSEM logical name, six bytes A B C D E F, written A-B:C.D.E.F
// (IEC 62056-6-1).
type OBIS [6]byte

// String returns the code as A-B:C.D.E.F in decimal, such as
// "0-0:96.3.10.255".
func (o OBIS) String() string {
	return fmt.Sprintf("%d-%d:%d.%d.%d.%d", o[0], o[1], o[2], o[3], o[4], o[5])
}

// ParseOBIS reads the A-B:C.D.E.F form String writes.
func ParseOBIS(s string) (OBIS, error) {
	var o OBIS
	ab, cdef, ok := strings.Cut(s, ":")
	if !ok {
		return o, invalid("obis %q: want A-B:C.D.E.F", s)
	}
	a, b, ok := strings.Cut(ab, "-")
	if !ok {
		return o, invalid("obis %q: want A-B:C.D.E.F", s)
	}
	parts := append([]string{a, b}, strings.Split(cdef, ".")...)
	if len(parts) != 6 {
		return o, invalid("obis %q: want A-B:C.D.E.F", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil || p == "" || (len(p) > 1 && p[0] == '0') {
			return o, invalid("obis %q: group %d %q is not a number 0 to 255", s, i+1, p)
		}
		o[i] = byte(v)
	}
	return o, nil
}

// MustParseOBIS is ParseOBIS for constants; it panics on a malformed code.
func MustParseOBIS(s string) OBIS {
	o, err := ParseOBIS(s)
	if err != nil {
		panic(err)
	}
	return o
}

// MarshalText implements encoding.TextMarshaler with the A-B:C.D.E.F form.
func (o OBIS) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *OBIS) UnmarshalText(b []byte) error {
	v, err := ParseOBIS(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}
