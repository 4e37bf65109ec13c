package dlms

import (
	"encoding/hex"
	"strconv"
)

const hexDigits = "0123456789abcdef"

func hex2(c byte) string { return string([]byte{hexDigits[c>>4], hexDigits[c&0xf]}) }

func itoa(n int) string { return strconv.Itoa(n) }

// HexBytes is a byte string that reads and writes JSON (and text) as
// lower-case hex.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return invalid("hex %q: %v", b, err)
	}
	*h = v
	return nil
}

// String returns the hex form.
func (h HexBytes) String() string { return hex.EncodeToString(h) }
