package commands

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// ErrNoKey is wrapped by key look-ups that find no key; Check reports it as
// VerdictNoKey rather than as a failure.
var ErrNoKey = errors.New("commands: no key")

// Keys finds the keys Check and Decrypt need, by party. A file keystore or an
// HSM-backed store satisfies it; a missing key is an error wrapping ErrNoKey.
type Keys interface {
	// SignatureKey returns the party's digital-signature public key.
	SignatureKey(ctx context.Context, eui smki.EUI) (*ecdsa.PublicKey, error)
	// AgreementKey returns the party's key-agreement private key.
	AgreementKey(ctx context.Context, eui smki.EUI) (KeyAgreement, error)
	// AgreementPublicKey returns the party's key-agreement public key.
	AgreementPublicKey(ctx context.Context, eui smki.EUI) (*ecdh.PublicKey, error)
}

// Verdict is the outcome of one check.
type Verdict string

// The verdicts.
const (
	VerdictValid   Verdict = "valid"
	VerdictInvalid Verdict = "invalid"
	VerdictAbsent  Verdict = "absent"
	VerdictNoKey   Verdict = "no-key"
)

// Summary describes a message for people and for JSON output.
type Summary struct {
	CRA         string    `json:"cra"`
	CRAFlag     int       `json:"cra_flag"`
	Counter     uint64    `json:"originator_counter"`
	Originator  smki.EUI  `json:"originator"`
	Recipient   smki.EUI  `json:"recipient"`
	DateTime    string    `json:"date_time,omitempty"`
	Time        string    `json:"time,omitempty"`
	MessageCode string    `json:"message_code"`
	UseCase     string    `json:"use_case,omitempty"`
	Title       string    `json:"title,omitempty"`
	Critical    bool      `json:"critical"`
	PreCommand  bool      `json:"pre_command"`
	URP         *URPBrief `json:"unknown_remote_party,omitempty"`
	PayloadLen  int       `json:"payload_length"`
	Payload     string    `json:"payload"`
	Encrypted   bool      `json:"payload_encrypted"`
	Signed      bool      `json:"signed"`
	Signature   string    `json:"signature,omitempty"`
	MACed       bool      `json:"mac_header"`
	MAC         string    `json:"mac,omitempty"`
	// Decoded is the payload decoded by DecodePayload (CS02 payloads);
	// DecodeError says why a payload that should decode did not.
	Decoded     any    `json:"payload_decoded,omitempty"`
	DecodeError string `json:"payload_decode_error,omitempty"`
}

// URPBrief summarises unknown-remote-party fields.
type URPBrief struct {
	EUI            smki.EUI `json:"eui"`
	Counter        uint64   `json:"counter"`
	CertificateLen int      `json:"ka_certificate_length,omitempty"`
}

// Summarize describes m.
func Summarize(m *Message) Summary {
	s := Summary{
		CRA: m.CRA.String(), CRAFlag: int(m.CRA), Counter: m.Counter, Originator: m.Originator,
		Recipient: m.Recipient, MessageCode: m.Code.String(), PreCommand: m.IsPreCommand(),
		PayloadLen: len(m.Payload), Payload: hex.EncodeToString(m.Payload), Encrypted: IsProtected(m.Payload),
		Signed: m.Signed(), MACed: m.HasMAC(),
	}
	if m.DateTime != nil {
		s.DateTime = hex.EncodeToString(m.DateTime)
		if t, err := DecodeDateTime(m.DateTime); err == nil {
			s.Time = t.Format(time.RFC3339Nano)
		}
	}
	if u, ok := LookupCode(m.Code); ok {
		s.UseCase, s.Title, s.Critical = u.Name, u.Title, u.Critical()
	}
	if m.URP != nil {
		s.URP = &URPBrief{EUI: m.URP.EUI, Counter: m.URP.Counter, CertificateLen: len(m.URP.KACertificate)}
	}
	if m.Signature != nil {
		s.Signature = hex.EncodeToString(m.Signature)
	}
	if m.MAC != nil {
		s.MAC = hex.EncodeToString(m.MAC)
	}
	if d, err := DecodePayload(m); err != nil {
		s.DecodeError = err.Error()
	} else if d != nil {
		s.Decoded = d
	}
	return s
}

// Report is the outcome of Check: the message's summary and a verdict for
// its signature and its MAC, with the reason of any verdict but valid.
type Report struct {
	Summary
	SignatureVerdict Verdict `json:"signature_check"`
	SignatureReason  string  `json:"signature_reason,omitempty"`
	MACVerdict       Verdict `json:"mac_check"`
	MACReason        string  `json:"mac_reason,omitempty"`
}

// Invalid reports whether either check found the message invalid.
func (r Report) Invalid() bool {
	return r.SignatureVerdict == VerdictInvalid || r.MACVerdict == VerdictInvalid
}

// Check verifies m's signature (with the originator's signature key) and MAC.
// For a command the MAC key comes from the ACB's key-agreement private key
// and the recipient device's public key, or from the device's private key and
// the ACB's public key, whichever keys holds; acb names the ACB and may be
// nil, in which case a command's MAC is VerdictNoKey. For a response or alert
// it comes from the recipient's private key and the originator device's
// public key, or the mirror.
func Check(ctx context.Context, keys Keys, m *Message, acb *smki.EUI) Report {
	r := Report{Summary: Summarize(m)}
	r.SignatureVerdict, r.SignatureReason = checkSignature(ctx, keys, m)
	r.MACVerdict, r.MACReason = checkMAC(ctx, keys, m, acb)
	return r
}

func verdict(err error) (Verdict, string) {
	switch {
	case err == nil:
		return VerdictValid, ""
	case errors.Is(err, ErrNoKey):
		return VerdictNoKey, err.Error()
	}
	return VerdictInvalid, err.Error()
}

func checkSignature(ctx context.Context, keys Keys, m *Message) (Verdict, string) {
	if m.Signature == nil {
		if u, ok := LookupCode(m.Code); ok && u.Critical() && m.CRA == Command && m.HasMAC() {
			return VerdictAbsent, "critical command without signature"
		}
		return VerdictAbsent, ""
	}
	pub, err := keys.SignatureKey(ctx, m.Originator)
	if err != nil {
		return verdict(err)
	}
	return verdict(VerifySignature(pub, m))
}

// macPair is one way to obtain a MAC key: a private key of one party and the
// public key of the other.
type macPair struct{ private, public smki.EUI }

func checkMAC(ctx context.Context, keys Keys, m *Message, acb *smki.EUI) (Verdict, string) {
	if m.MAC == nil {
		return VerdictAbsent, ""
	}
	var pairs []macPair
	if m.CRA == Command {
		if acb == nil {
			return VerdictNoKey, "a command's MAC needs the ACB's EUI (--acb)"
		}
		pairs = []macPair{{*acb, m.Recipient}, {m.Recipient, *acb}}
	} else {
		pairs = []macPair{{m.Recipient, m.Originator}, {m.Originator, m.Recipient}}
	}
	var missing []string
	for _, p := range pairs {
		ka, err := keys.AgreementKey(ctx, p.private)
		if err == nil {
			var pub *ecdh.PublicKey
			if pub, err = keys.AgreementPublicKey(ctx, p.public); err == nil {
				return verdict(CheckMAC(ctx, ka, pub, m))
			}
		}
		if !errors.Is(err, ErrNoKey) {
			return VerdictInvalid, err.Error()
		}
		missing = append(missing, fmt.Sprintf("%s private with %s public", p.private, p.public))
	}
	return VerdictNoKey, fmt.Sprintf("no key-agreement pair (%s or %s)", missing[0], missing[1])
}

// Decrypt returns the plaintext of m's protected payload, using the
// recipient user's key-agreement private key (the unknown remote party's
// when m carries one) with the originator device's public key, or the
// device's private key with the user's public key.
func Decrypt(ctx context.Context, keys Keys, m *Message) ([]byte, error) {
	user := m.Recipient
	if m.URP != nil {
		user = m.URP.EUI
	}
	var lastErr error
	for _, p := range []macPair{{user, m.Originator}, {m.Originator, user}} {
		ka, err := keys.AgreementKey(ctx, p.private)
		if err == nil {
			var pub *ecdh.PublicKey
			if pub, err = keys.AgreementPublicKey(ctx, p.public); err == nil {
				return DecryptPayload(ctx, ka, pub, m)
			}
		}
		if !errors.Is(err, ErrNoKey) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("commands: decrypting %s message from %s: %w", m.CRA, m.Originator, lastErr)
}

// MACCommand adds the access control broker's MAC to a command on its way to
// a device: acb's key-agreement private key with the recipient device's
// public key, both from keys. It refuses responses and alerts, a message
// that already has a MAC, and a critical command that is not signed yet (a
// bare pre-command).
func MACCommand(ctx context.Context, keys Keys, acb smki.EUI, m *Message) error {
	if m.CRA != Command {
		return fmt.Errorf("%w: message is a %s; the ACB MACs only commands", ErrInvalid, m.CRA)
	}
	if m.HasMAC() {
		return fmt.Errorf("%w: message already has a MAC header", ErrInvalid)
	}
	if u, ok := LookupCode(m.Code); ok && u.Critical() && m.Signature == nil {
		return fmt.Errorf("%w: %s is critical and the pre-command is not signed yet", ErrNoSignature, m.Code)
	}
	ka, err := keys.AgreementKey(ctx, acb)
	if err != nil {
		return fmt.Errorf("commands: ACB %s: %w", acb, err)
	}
	peer, err := keys.AgreementPublicKey(ctx, m.Recipient)
	if err != nil {
		return fmt.Errorf("commands: device %s: %w", m.Recipient, err)
	}
	return AddMAC(ctx, ka, peer, m)
}
