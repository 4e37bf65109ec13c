package commands

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// KeyAgreement is a static ECDH private key on P-256: a key file or an HSM
// object. ECDH returns the shared secret Z, the x-coordinate of the shared
// point (32 bytes). Callers must not log or store Z.
type KeyAgreement interface {
	ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error)
}

// OtherInfo is the 33-byte OtherInfo of the SP 800-56A single-step KDF as
// GBCS section 5 lays it out: the algorithm id 60 85 74 06 08 03 00, the
// originator EUI, 09, the CRA flag (MAC keys) or mode byte 04 (encryption
// keys), the originator counter and the recipient EUI.
type OtherInfo [33]byte

// algorithmID is the fixed prefix of OtherInfo.
var algorithmID = [7]byte{0x60, 0x85, 0x74, 0x06, 0x08, 0x03, 0x00}

// ModeEncryption is the mode byte of OtherInfo for the transport key that
// encrypts sensitive payloads (GBCS section 6).
const ModeEncryption byte = 0x04

// NewOtherInfo lays out OtherInfo for originator, mode (a CRA flag or
// ModeEncryption), counter and recipient.
func NewOtherInfo(originator smki.EUI, mode byte, counter uint64, recipient smki.EUI) OtherInfo {
	var o OtherInfo
	copy(o[0:7], algorithmID[:])
	copy(o[7:15], originator[:])
	o[15] = 0x09
	o[16] = mode
	binary.BigEndian.PutUint64(o[17:25], counter)
	copy(o[25:33], recipient[:])
	return o
}

// MACInfo returns the OtherInfo of m's MAC key: m's originator, CRA flag,
// counter and recipient.
func (m *Message) MACInfo() OtherInfo {
	return NewOtherInfo(m.Originator, byte(m.CRA), m.Counter, m.Recipient)
}

// DeriveKey is the SP 800-56A single-step KDF with SHA-256 that GBCS uses:
// SHA-256(00000001 || z || info)[0:16], an AES-128 key. The caller owns the
// result and must neither log nor store it.
func DeriveKey(z []byte, info OtherInfo) []byte {
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write(info[:])
	var sum [sha256.Size]byte
	k := h.Sum(sum[:0])
	out := make([]byte, 16)
	copy(out, k)
	clear(sum[:])
	return out
}

// iv is the 12-byte GCM nonce of GBCS: originator EUI || 00000000.
func iv(originator smki.EUI) []byte {
	v := make([]byte, 12)
	copy(v, originator[:])
	return v
}

// GMAC computes the AES-128-GMAC of aad under key with the GBCS IV
// (originator || 00000000), truncated to 12 bytes. A 12-byte GCM tag is the
// first 12 bytes of the 16-byte tag (NIST SP 800-38D section 7.1); the 18.4
// vector checks it.
func GMAC(key []byte, originator smki.EUI, aad []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return g.Seal(make([]byte, 0, macLen), iv(originator), nil, aad), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("%w: AES-128 key of %d bytes", ErrKey, len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	g, err := cipher.NewGCMWithTagSize(blk, macLen)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return g, nil
}

// MAC computes m's 12-byte MAC under key (from DeriveKey with m.MACInfo()),
// over MACData. It does not set m.MAC.
func MAC(key []byte, m *Message) ([]byte, error) {
	aad, err := m.MACData()
	if err != nil {
		return nil, err
	}
	return GMAC(key, m.Originator, aad)
}

// VerifyMAC checks m.MAC under key in constant time. It returns ErrNoMAC
// when m has no MAC and ErrMAC when it does not match.
func VerifyMAC(key []byte, m *Message) error {
	if m.MAC == nil {
		return ErrNoMAC
	}
	want, err := MAC(key, m)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, m.MAC) != 1 {
		return ErrMAC
	}
	return nil
}

// macKey derives m's MAC key by ECDH between ka and peer. For a command ka is
// the access control broker's key and peer the device's KA key (or the
// mirror on the device); for a response or alert ka is the device's key and
// peer the recipient's.
func macKey(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: peer key-agreement key must be P-256", ErrKey)
	}
	z, err := ka.ECDH(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("commands: key agreement for %s message from %s: %w", m.CRA, m.Originator, err)
	}
	defer clear(z)
	return DeriveKey(z, m.MACInfo()), nil
}

// AddMAC computes m's MAC by ECDH between ka and peer (see CheckMAC for
// which keys) and sets m.MAC, so Marshal adds the MAC header. The derived key
// never leaves the package and is cleared after use.
func AddMAC(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) error {
	key, err := macKey(ctx, ka, peer, m)
	if err != nil {
		return err
	}
	defer clear(key)
	mac, err := MAC(key, m)
	if err != nil {
		return err
	}
	m.MAC = mac
	return nil
}

// CheckMAC verifies m.MAC by ECDH between ka and peer: for a command the
// ACB's key and the device's KA key (or the mirror on the device); for a
// response or alert the device's key and the recipient's. It returns
// ErrNoMAC or ErrMAC on failure.
func CheckMAC(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) error {
	if m.MAC == nil {
		return ErrNoMAC
	}
	key, err := macKey(ctx, ka, peer, m)
	if err != nil {
		return err
	}
	defer clear(key)
	return VerifyMAC(key, m)
}
