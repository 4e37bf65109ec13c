package smki

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/metertrust/metertrust/internal/trunc"
)

// MaxSerialBytes is the longest serial number RFC 5280 section 4.1.2.2
// allows: 20 octets.
const MaxSerialBytes = 20

// ErrSerial is wrapped by every serial number parsing error.
var ErrSerial = errors.New("smki: invalid serial number")

// ParseSerial reads a certificate serial number written in hex, as the
// tools print it: optionally prefixed 0x, optionally colon-separated
// (openssl's form), in either case, with or without leading zeros. It
// returns the minimal big-endian octets of the positive integer, the form
// the store keys certificates by.
func ParseSerial(s string) ([]byte, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	h = strings.ReplaceAll(h, ":", "")
	switch {
	case h == "":
		return nil, fmt.Errorf("%w: empty", ErrSerial)
	case len(h) > 2*MaxSerialBytes+2:
		return nil, fmt.Errorf("%w: %q is longer than %d octets", ErrSerial, clip(s), MaxSerialBytes)
	}
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: want hex digits", ErrSerial, clip(s))
	}
	out := new(big.Int).SetBytes(b).Bytes()
	if len(out) == 0 {
		out = []byte{0}
	}
	if len(out) > MaxSerialBytes {
		return nil, fmt.Errorf("%w: %q is longer than %d octets", ErrSerial, clip(s), MaxSerialBytes)
	}
	return out, nil
}

// FormatSerial prints a serial number as upper-case hex, whole octets, the
// form ParseSerial reads and the issuing commands print.
func FormatSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// clip shortens caller input quoted in an error.
func clip(s string) string { return trunc.String(s, 64) }
