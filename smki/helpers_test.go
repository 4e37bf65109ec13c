package smki

import (
	"encoding/hex"
	"math/big"
	"testing"
)

// keyIDVector is the method-2 key identifier of the GBCS 18.4 supplier DS
// public key: SHA-1 of the 65-byte point (openssl dgst -sha1) is
// d6116256678ecb41c4d60a8d1e0ff25dd1a1a20a; its last 8 bytes with the top
// nibble set to 0100 give 4E0FF25DD1A1A20A.
const keyIDVector = "4E0FF25DD1A1A20A"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigOne() *big.Int { return big.NewInt(1) }
