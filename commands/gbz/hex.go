package gbz

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hex is a byte string that marshals to JSON as a lower-case hex string and
// unmarshals from a hex string in either case. The empty string and null both
// decode to an empty value.
type Hex []byte

// MarshalJSON implements json.Marshaler.
func (h Hex) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2*len(h)+2)
	out = append(out, '"')
	out = hex.AppendEncode(out, h)
	return append(out, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("gbz: hex field: %w", err)
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("gbz: hex field %q: %w", s, err)
	}
	if len(v) == 0 {
		v = nil
	}
	*h = v
	return nil
}

// String returns the lower-case hex form.
func (h Hex) String() string { return hex.EncodeToString(h) }
