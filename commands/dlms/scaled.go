package dlms

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Scaled is an integer with a decimal scaler, the COSEM way of writing
// quantities and prices: the amount is Value × 10^Exp.
type Scaled struct {
	Value int64 `json:"value"`
	Exp   int8  `json:"exp"`
}

// Rat returns the exact amount.
func (s Scaled) Rat() *big.Rat {
	r := new(big.Rat).SetInt64(s.Value)
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(absInt(int(s.Exp)))), nil)
	if s.Exp >= 0 {
		return r.Mul(r, new(big.Rat).SetInt(p))
	}
	return r.Quo(r, new(big.Rat).SetInt(p))
}

// Float64 returns the amount as the nearest float64.
func (s Scaled) Float64() float64 { return float64(s.Value) * math.Pow10(int(s.Exp)) }

// Cmp compares the amounts of s and t exactly: -1, 0 or +1.
func (s Scaled) Cmp(t Scaled) int { return s.Rat().Cmp(t.Rat()) }

// String returns the exact decimal amount, such as "0.1534" for 1534 with
// exponent -4.
func (s Scaled) String() string {
	digits := strconv.FormatUint(uint64(absInt64(s.Value)), 10)
	sign := ""
	if s.Value < 0 {
		sign = "-"
	}
	switch {
	case s.Exp >= 0:
		if s.Value == 0 {
			return "0"
		}
		return sign + digits + strings.Repeat("0", int(s.Exp))
	case len(digits) <= -int(s.Exp):
		digits = strings.Repeat("0", -int(s.Exp)-len(digits)+1) + digits
	}
	cut := len(digits) + int(s.Exp)
	return sign + digits[:cut] + "." + digits[cut:]
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func absInt64(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}
