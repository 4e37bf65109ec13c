package commands

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// ErrNoKey is wrapped by key look-ups that find no key; Check reports it as
// VerdictNoKey rather than as a failure.
var ErrNoKey = errors.New("commands: no key")

// ErrUntrusted is wrapped by key look-ups that found the key but cannot
// vouch for it, such as a certificate outside its validity period at the
// time asked: Check reports the check as invalid, since the message cannot
// be trusted, with the reason.
var ErrUntrusted = errors.New("commands: key not trusted")

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

// Summary describes a message for people and for JSON output, completely:
// MessageFromJSON rebuilds the message from its JSON, byte for byte when
// nothing was edited (gbcs inspect --json, then gbcs encode).
type Summary struct {
	Form        string   `json:"form"`
	CRA         string   `json:"cra"`
	CRAFlag     int      `json:"cra_flag"`
	Counter     uint64   `json:"originator_counter"`
	Originator  smki.EUI `json:"originator"`
	Recipient   smki.EUI `json:"recipient"`
	DateTime    string   `json:"date_time,omitempty"`
	Time        string   `json:"time,omitempty"`
	MessageCode string   `json:"message_code"`
	UseCase     string   `json:"use_case,omitempty"`
	Title       string   `json:"title,omitempty"`
	Critical    bool     `json:"critical"`
	PreCommand  bool     `json:"pre_command"`
	// OtherInformation is the other-information field after the code.
	OtherInformation OtherInformation `json:"other_information"`
	// Lengths lists framing lengths read in a non-minimal form; nil when
	// all were minimal.
	Lengths    *Lengths `json:"length_forms,omitempty"`
	PayloadLen int      `json:"payload_length"`
	Payload    Payload  `json:"payload"`
	// Encrypted reports whether the payload carries ciphered blocks.
	Encrypted bool   `json:"payload_encrypted"`
	Signed    bool   `json:"signed"`
	Signature string `json:"signature,omitempty"`
	MACed     bool   `json:"mac_header"`
	MAC       string `json:"mac,omitempty"`
}

// OtherInformation describes the other-information field (spec
// gbcs-payloads.md 1.4): its form by length and the supplementary fields.
type OtherInformation struct {
	// Form is the field's length: 2, 10, 18, 26, or more with a
	// certificate.
	Form int `json:"form"`
	// SRP is the supplementary remote party id (forms 10 and up).
	SRP *smki.EUI `json:"supplementary_remote_party,omitempty"`
	// SRPCounter is its counter (forms 18 and up).
	SRPCounter *uint64 `json:"supplementary_remote_party_counter,omitempty"`
	// OriginatorCounter is the supplementary originator counter (form 26).
	OriginatorCounter *uint64 `json:"supplementary_originator_counter,omitempty"`
	// KACertificate is the DER of the SRP's KA certificate, in hex (> 26).
	KACertificate string `json:"ka_certificate,omitempty"`
}

// Summarize describes m.
func Summarize(m *Message) Summary {
	s := Summary{
		Form: m.Form().String(), CRA: m.CRA.String(), CRAFlag: int(m.CRA), Counter: m.Counter, Originator: m.Originator,
		Recipient: m.Recipient, MessageCode: m.Code.String(), PreCommand: m.IsPreCommand(),
		PayloadLen: len(m.Payload), Payload: ReadPayload(m),
		Signed: m.Signed(), MACed: m.HasMAC(),
		OtherInformation: OtherInformation{Form: m.OtherInfoForm()},
	}
	s.Encrypted = len(cipheredBlocks(s.Payload.Tree)) > 0
	if m.Lengths != (Lengths{}) {
		l := m.Lengths
		s.Lengths = &l
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
	if u := m.URP; u != nil {
		o := &s.OtherInformation
		e := u.EUI
		o.SRP = &e
		if !u.NoCounter {
			c := u.Counter
			o.SRPCounter = &c
		}
		o.OriginatorCounter = u.OriginatorCounter
		if u.KACertificate != nil {
			o.KACertificate = hex.EncodeToString(u.KACertificate)
		}
	}
	if m.Signature != nil {
		s.Signature = hex.EncodeToString(m.Signature)
	}
	if m.MAC != nil {
		s.MAC = hex.EncodeToString(m.MAC)
	}
	return s
}

// MessageFromJSON rebuilds a message from the JSON of its Summary (one
// object, or an array of one), as gbcs encode does: the payload from its
// tree when it was decoded, else from its hex; the framing lengths recomputed
// around what changed (a length read in a non-minimal form is kept in that
// form while it can hold the value); the signature and MAC as given. Fields
// that describe rather than define (use case, title, critical, time,
// payload_length, the payload's use-case reading) are ignored.
func MessageFromJSON(b []byte) (*Message, error) {
	var in struct {
		Summary
		Payload struct {
			Structure Structure       `json:"structure"`
			Decoded   bool            `json:"decoded"`
			Tree      json.RawMessage `json:"tree"`
			Hex       string          `json:"hex"`
		} `json:"payload"`
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(t, &arr); err != nil {
			return nil, fmt.Errorf("%w: message JSON: %v", ErrInvalid, err)
		}
		if len(arr) != 1 {
			return nil, fmt.Errorf("%w: message JSON: an array of %d messages, want one", ErrInvalid, len(arr))
		}
		b = arr[0]
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%w: message JSON: %v", ErrInvalid, err)
	}
	s := &in.Summary
	form, err := ParseForm(s.Form)
	if err != nil {
		return nil, err
	}
	cra := CRA(s.CRAFlag)
	if !cra.Valid() {
		return nil, fmt.Errorf("%w: cra_flag %d, want 1, 2 or 3", ErrInvalid, s.CRAFlag)
	}
	code, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s.MessageCode), "0x"), 16, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: message_code %q", ErrInvalid, s.MessageCode)
	}
	m := &Message{CRA: cra, Counter: s.Counter, Originator: s.Originator, Recipient: s.Recipient, Code: MessageCode(code)}
	if s.Lengths != nil {
		m.Lengths = *s.Lengths
	}
	if s.DateTime != "" {
		if m.DateTime, err = hexField("date_time", s.DateTime, dateTimeLen); err != nil {
			return nil, err
		}
	}
	if m.URP, err = s.OtherInformation.urp(); err != nil {
		return nil, err
	}
	if m.Payload, err = EncodePayload(m.Code, cra, in.Payload.Structure, in.Payload.Decoded, in.Payload.Tree, in.Payload.Hex); err != nil {
		return nil, err
	}
	if form == FormSigned || form == FormMACSigned {
		if m.Signature, err = hexField("signature", s.Signature, signatureLen); err != nil {
			return nil, err
		}
	}
	if form == FormMAC || form == FormMACSigned {
		if m.MAC, err = hexField("mac", s.MAC, macLen); err != nil {
			return nil, err
		}
	}
	m.EmptySignatureField = form == FormUnprotected
	return m, nil
}

func hexField(name, v string, n int) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("%w: %s %q: want %d bytes in hex", ErrInvalid, name, v, n)
	}
	return b, nil
}

func (o OtherInformation) urp() (*UnknownRemoteParty, error) {
	if o.SRP == nil {
		if o.SRPCounter != nil || o.OriginatorCounter != nil || o.KACertificate != "" {
			return nil, fmt.Errorf("%w: other_information: supplementary fields without a supplementary_remote_party", ErrInvalid)
		}
		return nil, nil
	}
	u := &UnknownRemoteParty{EUI: *o.SRP, NoCounter: o.SRPCounter == nil, OriginatorCounter: o.OriginatorCounter}
	if o.SRPCounter != nil {
		u.Counter = *o.SRPCounter
	}
	if o.KACertificate != "" {
		c, err := hex.DecodeString(o.KACertificate)
		if err != nil {
			return nil, fmt.Errorf("%w: other_information.ka_certificate: %v", ErrInvalid, err)
		}
		u.KACertificate = c
	}
	return u, nil
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

// verdict turns the outcome of a check into a verdict. Only a check that ran
// and failed is invalid; a key that is missing or cannot be used is no-key,
// never an invalid signature or MAC.
func verdict(err error) (Verdict, string) {
	switch {
	case err == nil:
		return VerdictValid, ""
	case errors.Is(err, ErrUntrusted):
		return VerdictInvalid, err.Error()
	case errors.Is(err, ErrNoKey), errors.Is(err, ErrKey):
		return VerdictNoKey, err.Error()
	}
	return VerdictInvalid, err.Error()
}

func checkSignature(ctx context.Context, keys Keys, m *Message) (Verdict, string) {
	if m.Signature == nil {
		if u, ok := LookupCode(m.Code); ok && u.Critical() && m.CRA == Command && m.HasMAC() {
			// A device refuses it: as a message, it is invalid.
			return VerdictInvalid, "critical command without signature"
		}
		return VerdictAbsent, ""
	}
	pub, err := keys.SignatureKey(ctx, m.Originator)
	switch {
	case errors.Is(err, ErrUntrusted):
		return VerdictInvalid, err.Error()
	case err != nil:
		// Whatever else stopped the key loading (absent, unreadable, a
		// certificate that does not parse), no check ran.
		return VerdictNoKey, err.Error()
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
		if errors.Is(err, ErrUntrusted) {
			return VerdictInvalid, err.Error()
		}
		why := fmt.Sprintf("%s private with %s public", p.private, p.public)
		if !errors.Is(err, ErrNoKey) {
			why += ": " + err.Error()
		}
		missing = append(missing, why)
	}
	return VerdictNoKey, fmt.Sprintf("no usable key-agreement pair (%s; or %s)", missing[0], missing[1])
}

// Decrypt returns the plaintexts of m's ciphered blocks, in order, using the
// encryption recipient's key-agreement private key (the supplementary remote
// party's when m names one, else the header recipient's) with the originator
// device's public key, or the device's private key with the user's public
// key, whichever keys holds.
func Decrypt(ctx context.Context, keys Keys, m *Message) ([][]byte, error) {
	user := m.EncryptionRecipient()
	var lastErr error
	for _, p := range []macPair{{user, m.Originator}, {m.Originator, user}} {
		ka, err := keys.AgreementKey(ctx, p.private)
		if err == nil {
			var pub *ecdh.PublicKey
			if pub, err = keys.AgreementPublicKey(ctx, p.public); err == nil {
				return OpenPayload(ctx, ka, pub, m)
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
