package commands

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// Encryption of sensitive payloads (GBCS section 6; spec gbcs-payloads.md
// section 2): AES-128-GCM with a 12-byte tag, authenticated data the single
// byte 0x31, IV = originator EUI || 00000000, under the transport key derived
// with mode byte 04 from the device's and the user's KA keys. The ciphertext
// sits in ciphered blocks inside the DLMS or GBZ payload (31, a zero
// invocation counter, the ciphertext, the tag); every block of a message is
// under the same key and IV, as GB's meters write them.
const securityHeaderEncrypted = 0x31

// EncryptionInfo returns the OtherInfo of m's transport key (spec
// gbcs-payloads.md 2.3): the header originator (the device), mode 04, the
// supplementary originator counter when the other-information has the
// 26-byte form and the header counter otherwise, and the supplementary
// remote party when the other-information names one (the user the payload is
// for), otherwise the header recipient. The DLMS protection parameters inside
// the payload are never KDF inputs (spec 2.4).
func (m *Message) EncryptionInfo() OtherInfo {
	return NewOtherInfo(m.Originator, ModeEncryption, m.encryptionCounter(), m.EncryptionRecipient())
}

// EncryptionRecipient is the party whose key-agreement key, with the
// originating device's, keys m's encrypted content: the supplementary remote
// party if the other-information names one, else the header recipient.
func (m *Message) EncryptionRecipient() smki.EUI {
	if m.URP != nil {
		return m.URP.EUI
	}
	return m.Recipient
}

func (m *Message) encryptionCounter() uint64 {
	if m.URP != nil && m.URP.OriginatorCounter != nil {
		return *m.URP.OriginatorCounter
	}
	return m.Counter
}

// SealBlock encrypts plaintext under key (from DeriveKey with an
// EncryptionInfo) into a ciphered block as DLMS and GBZ payloads carry it
// (spec 2.2): the security control 31, a zero invocation counter, the
// ciphertext and the 12-byte tag, with IV originator || 00000000 and AAD 31.
func SealBlock(key []byte, originator smki.EUI, plaintext []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, securityHeaderLen+len(plaintext)+macLen)
	out = append(out, securityHeaderEncrypted, 0, 0, 0, 0)
	return g.Seal(out, iv(originator), plaintext, []byte{securityHeaderEncrypted}), nil
}

// OpenBlock authenticates and decrypts a ciphered block (spec 2.2). The
// invocation counter is ignored, as the GBCS parser ignores it (it is zero in
// every real message). Malformed input gets ErrMalformed, a failed tag
// ErrDecrypt.
func OpenBlock(key []byte, originator smki.EUI, block []byte) ([]byte, error) {
	if len(block) < securityHeaderLen+macLen {
		return nil, parseErr("ciphered-block", 0, "truncated: %d bytes, need at least %d", len(block), securityHeaderLen+macLen)
	}
	if block[0] != securityHeaderEncrypted {
		return nil, parseErr("ciphered-block.security-control", 0, "want 0x31 (authenticated encryption), have 0x%02X", block[0])
	}
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, iv(originator), block[securityHeaderLen:], []byte{securityHeaderEncrypted})
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// encryptionKey derives m's transport key by ECDH between ka and peer: on the
// device, its KA key and the recipient user's KA public key; at the user, the
// mirror.
func encryptionKey(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: peer key-agreement key must be P-256", ErrKey)
	}
	z, err := ka.ECDH(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("commands: transport key agreement for message from %s: %w", m.Originator, err)
	}
	defer clear(z)
	return DeriveKey(z, m.EncryptionInfo()), nil
}

// EncryptionKey derives the transport key of m's encrypted content (spec
// gbcs-payloads.md 2.3) by ECDH between ka and peer: on the device, its KA
// key and the KA public key of m.EncryptionRecipient(); at that user, the
// mirror. The caller owns the key and must clear it after use.
func EncryptionKey(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) ([]byte, error) {
	return encryptionKey(ctx, ka, peer, m)
}

// OpenPayload decrypts every ciphered block of m's payload (spec
// gbcs-payloads.md 2.1: DLMS protected results and ECS68 alerts, encrypted
// GBZ components, GCS53 alerts), all under the one key of m, and returns the
// plaintexts in order. m is not changed. A payload without ciphered blocks
// gets an error; a block that fails authentication ErrDecrypt.
func OpenPayload(ctx context.Context, ka KeyAgreement, peer *ecdh.PublicKey, m *Message) ([][]byte, error) {
	st, tree, err := ParsePayload(m)
	if err != nil {
		return nil, fmt.Errorf("commands: %s payload of %s message %s does not parse: %w", st, m.CRA, m.Code, err)
	}
	blocks := cipheredBlocks(tree)
	if len(blocks) == 0 {
		return nil, fmt.Errorf("commands: %s payload of %s message %s holds no ciphered block", st, m.CRA, m.Code)
	}
	key, err := encryptionKey(ctx, ka, peer, m)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	out := make([][]byte, len(blocks))
	for i, b := range blocks {
		if out[i], err = OpenBlock(key, m.Originator, *b); err != nil {
			return nil, fmt.Errorf("commands: ciphered block %d of %s message %s: %w", i, m.CRA, m.Code, err)
		}
	}
	return out, nil
}
