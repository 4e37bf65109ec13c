package router

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/metertrust/metertrust/commands"
)

// kdfOtherInfoPrefix is the algorithm id of the GBCS KDF OtherInfo (spec
// section 5).
var kdfOtherInfoPrefix = []byte{0x60, 0x85, 0x74, 0x06, 0x08, 0x03, 0x00}

// acbMAC computes the access control broker's 12-byte GMAC of a command from
// Z (spec section 5): K = SHA-256(00000001 || Z || OtherInfo)[0:16],
// IV = originator EUI || 00000000, AAD = 11 00 00 00 00 00 || the
// general-signing block. The derived key lives only in this call.
func acbMAC(m *commands.Message, z []byte) ([]byte, error) {
	if len(z) != 32 {
		return nil, fmt.Errorf("router: shared secret of %d bytes, want 32", len(z))
	}
	oi := make([]byte, 0, 33)
	oi = append(oi, kdfOtherInfoPrefix...)
	oi = append(oi, m.Originator[:]...)
	oi = append(oi, 0x09, byte(m.CRA))
	oi = binary.BigEndian.AppendUint64(oi, m.Counter)
	oi = append(oi, m.Recipient[:]...)
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write(oi)
	sum := h.Sum(nil)
	defer clear(sum)
	block, err := aes.NewCipher(sum[:16])
	if err != nil {
		return nil, fmt.Errorf("router: MAC key: %w", err)
	}
	gcm, err := cipher.NewGCMWithTagSize(block, 12)
	if err != nil {
		return nil, fmt.Errorf("router: GMAC: %w", err)
	}
	aad, err := m.MACData()
	if err != nil {
		return nil, fmt.Errorf("router: MAC data: %w", err)
	}
	iv := make([]byte, 12)
	copy(iv, m.Originator[:])
	return gcm.Seal(nil, iv, nil, aad), nil
}

// verifyRaw checks a raw 64-byte r||s ECDSA P-256 signature over the
// SHA-256 of data (spec section 4).
func verifyRaw(pub *ecdsa.PublicKey, data, sig []byte) bool {
	if pub == nil || len(sig) != 64 {
		return false
	}
	d := sha256.Sum256(data)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, d[:], r, s)
}
