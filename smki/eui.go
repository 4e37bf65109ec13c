package smki

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// EUI is an EUI-64 entity identifier: the 8-byte name of every party and
// device in GB smart metering.
type EUI [8]byte

// ErrEUI is wrapped by every EUI parsing error.
var ErrEUI = errors.New("smki: invalid EUI-64")

// ParseEUI accepts 16 hex digits, optionally grouped in pairs with hyphens
// ("90B3D51F30010000" or "90-B3-D5-1F-30-01-00-00"), in either case.
func ParseEUI(s string) (EUI, error) {
	var e EUI
	h := s
	if len(s) == 23 {
		for i := 2; i < 23; i += 3 {
			if s[i] != '-' {
				return e, fmt.Errorf("%w: %q: expected '-' at offset %d", ErrEUI, s, i)
			}
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	if len(h) != 16 {
		return e, fmt.Errorf("%w: %q: want 16 hex digits, optionally grouped as 90-B3-D5-1F-30-01-00-00", ErrEUI, s)
	}
	if _, err := hex.Decode(e[:], []byte(h)); err != nil {
		return EUI{}, fmt.Errorf("%w: %q: %v", ErrEUI, s, err)
	}
	return e, nil
}

// MustParseEUI is ParseEUI for constants in tests and examples; it panics on
// error.
func MustParseEUI(s string) EUI {
	e, err := ParseEUI(s)
	if err != nil {
		panic(err)
	}
	return e
}

// String prints the EUI as 16 upper-case hex digits, the canonical form.
func (e EUI) String() string {
	return strings.ToUpper(hex.EncodeToString(e[:]))
}

// Grouped prints the EUI as eight hyphen-separated pairs.
func (e EUI) Grouped() string {
	var b strings.Builder
	for i, c := range e {
		if i > 0 {
			b.WriteByte('-')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// IsZero reports whether e is all zeroes (unset).
func (e EUI) IsZero() bool { return e == EUI{} }

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (e EUI) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseEUI.
func (e *EUI) UnmarshalText(b []byte) error {
	v, err := ParseEUI(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}
