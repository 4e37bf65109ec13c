package device

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// Handle receives one message as a meter does and returns the response to
// send back. A message the meter refuses gets no response: Handle returns a
// *DiscardError carrying the Reason, and the meter counts it. Handle never
// panics, whatever the bytes.
//
// Before it reads the message, the meter executes the future-dated commands
// that have fallen due (see Tick).
//
// The checks run in this order (gbcs-security.md 4, 5 and 7;
// gbcs-payloads.md 1.2): the message parses and is a command for this meter
// in a protected form; a MAC'd command's MAC verifies with the key agreed
// between the meter's KA key and the access control broker's KA anchor, and
// its counter is greater than the last one accepted from that originator;
// the use case is one the meter executes and the command comes in a form
// the catalogue gives for its code; the originator's role may send it (for
// an unknown remote party, the broker vouches; CS02a and CS02b name their
// authorising party in the payload); a signed command's signature verifies
// with the digital-signature cell of that originator in that role, and, when
// it came without MAC header, its counter is then checked. Only then is the
// counter recorded and the command executed.
//
// The response repeats the command's counter with CRA flag 2, is addressed
// to the command's originator and takes the form the catalogue gives for
// the code: signed with the meter's DS key and no MAC header when the
// command was critical, MAC'd with signature length 00 otherwise. Sensitive
// content is encrypted to the user it is for (gbcs-payloads.md 2).
func (m *Meter) Handle(ctx context.Context, msg []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runDue(ctx)
	resp, err := m.handle(ctx, msg)
	if err != nil {
		var d *DiscardError
		if !errors.As(err, &d) {
			d = &DiscardError{Reason: ReasonInternal, Err: err}
		}
		m.discards[d.Reason]++
		m.env.log.DebugContext(ctx, "discarded message", "eui", m.eui, "reason", d.Reason.String(), "error", d.Err)
		return nil, d
	}
	m.accepted++
	if len(resp) > m.env.maxMessage {
		return segmented(resp, m.env.maxMessage)
	}
	return resp, nil
}

// segmented splits a response too large for one message into general block
// transfer segments of at most max bytes of the message each (the block
// header and length add up to 10 bytes to each), sent back to back.
func segmented(resp []byte, max int) ([]byte, error) {
	segs, err := commands.Segment(resp, max)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("segmenting a %d-byte response: %w", len(resp), err)}
	}
	return bytes.Join(segs, nil), nil
}

// exchange is one command on its way through the meter, and its response
// as it is built.
type exchange struct {
	msg  *commands.Message
	form commands.Form
	code uint16
	uc   *useCase
	// role is the originator's role: for an unknown remote party, the role
	// of the supplementary remote party when the anchors hold it, else
	// RoleOther.
	role smki.Role
	now  time.Time
	// out is the response; the executor fills its payload.
	out     *commands.Message
	outForm commands.Form
	// replyKA is the recipient's key-agreement key, for a MAC'd response.
	replyKA *ecdh.PublicKey
	// encryptTo is the key-agreement key of the user a sensitive response
	// is encrypted to.
	encryptTo *ecdh.PublicKey
	// key is the transport key of the response, derived on first use: one
	// key for every ciphered block of a message (gbcs-payloads.md 2.3).
	key []byte
	// after holds state changes that take effect once the response is built
	// (a CS02d key replacement: the response is signed with the old key).
	after []func()
	// cs02a and cs02b are the credential payloads, decoded while
	// authorising.
	cs02a *cs02aRequest
	cs02b *cs02bRequest
}

func (m *Meter) handle(ctx context.Context, raw []byte) ([]byte, error) {
	msg, err := commands.Parse(raw)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonMalformed, Err: err}
	}
	if msg.CRA != commands.Command {
		return nil, discard(ReasonNotCommand, "CRA flag %s", msg.CRA)
	}
	if msg.Recipient != m.eui {
		return nil, discard(ReasonWrongRecipient, "addressed to %s", msg.Recipient)
	}
	x := &exchange{msg: msg, form: msg.Form(), code: uint16(msg.Code), now: m.env.now()}
	defer func() { clear(x.key) }()
	an := m.anchors

	// 1. The access control broker's MAC and the counter, for the MAC'd
	// forms; a signed command without MAC header has its counter checked
	// once its signature is.
	switch x.form {
	case commands.FormMAC, commands.FormMACSigned:
		if err := m.checkMAC(ctx, an, msg); err != nil {
			return nil, err
		}
		if err := m.checkCounter(msg); err != nil {
			return nil, err
		}
	case commands.FormSigned:
	default:
		return nil, discard(ReasonNotCommand, "command %s in form %s, neither MAC'd nor signed", msg.Code, x.form)
	}

	// 2. Use case and form.
	uc, ok := lookupUseCase(x.code, m.kind)
	if !ok {
		return nil, discard(ReasonUnsupported, "message code %s on a %s", msg.Code, m.kind)
	}
	x.uc = uc
	if forms := commandForms(x.code); !slices.Contains(forms, x.form) {
		switch x.form {
		case commands.FormSigned:
			return nil, discard(ReasonNotCommand, "%s command signed without MAC header, want %v", uc.name, forms)
		case commands.FormMAC:
			return nil, discard(ReasonBadSignature, "%s command without signature, want %v", uc.name, forms)
		default:
			return nil, discard(ReasonMalformed, "%s command in form %s, want %v", uc.name, x.form, forms)
		}
	}

	// 3. Role and signature.
	if err := m.authorise(ctx, an, x); err != nil {
		return nil, err
	}
	if x.form == commands.FormSigned {
		if err := m.checkCounter(msg); err != nil {
			return nil, err
		}
	}
	if err := m.prepareResponse(an, x); err != nil {
		return nil, err
	}

	// 4. Execute. The counter is recorded once the command is known
	// authentic and authorised, whether or not its payload then executes.
	// From then on the meter finishes the exchange whatever becomes of its
	// caller: a request cancelled now (the head end gone) must not leave
	// the counter consumed and the command neither executed nor journaled,
	// which a resend would then find a replay.
	m.recordCounter(msg.Originator, msg.Counter)
	ctx = context.WithoutCancel(ctx)
	payload, err := uc.exec(m, ctx, x)
	if err != nil {
		return nil, err
	}
	x.out.Payload = payload
	resp, err := m.seal(ctx, x.out, x.outForm, x.replyKA)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("%s response: %w", uc.name, err)}
	}
	for _, f := range x.after {
		f()
	}
	return resp, nil
}

// checkCounter refuses a counter not greater than the last one accepted from
// the message's originator.
func (m *Meter) checkCounter(msg *commands.Message) error {
	if last, ok := m.lastCounter(msg.Originator); ok && msg.Counter <= last {
		return discard(ReasonReplay, "counter %d from %s, last accepted %d", msg.Counter, msg.Originator, last)
	}
	return nil
}

func (m *Meter) checkMAC(ctx context.Context, an *Anchors, msg *commands.Message) error {
	acb := an.anchor(smki.RoleAccessControlBroker)
	tried := false
	for _, c := range acb.Cells {
		if c.KeyUsage != UsageKeyAgreement || c.Usage != asn.CellManagement {
			continue
		}
		tried = true
		err := commands.CheckMAC(ctx, m.ka, c.ka, msg)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return &DiscardError{Reason: ReasonInternal, Err: err}
		}
	}
	if !tried {
		return discard(ReasonBadMAC, "no access control broker key-agreement anchor to check the MAC with")
	}
	return &DiscardError{Reason: ReasonBadMAC, Err: commands.ErrMAC}
}

// authorise finds the originator's role and checks that it may send the
// command and, for a signed command, its signature. CS02a and CS02b name
// their authorising party in the payload (cs02.go).
func (m *Meter) authorise(ctx context.Context, an *Anchors, x *exchange) error {
	switch {
	case x.code == CodeCS02a:
		return m.authoriseProvideCredentials(an, x)
	case x.code >= CodeCS02bFirst && x.code <= CodeCS02bLast:
		return m.authoriseUpdateCredentials(an, x)
	}
	msg := x.msg
	allowed := x.uc.roles
	acb := an.anchor(smki.RoleAccessControlBroker)
	if msg.URP != nil {
		// The broker speaks for a supplementary remote party: a party the
		// anchors hold (a supplier on whose behalf the DCC sends), or an
		// unknown remote party, role "other".
		if !acb.holds(msg.Originator) {
			return discard(ReasonUnknownSigner, "unknown-remote-party command from %s, which is not the access control broker", msg.Originator)
		}
		x.role = smki.RoleOther
		if r, ok := an.roleOf(msg.URP.EUI); ok {
			x.role = r
		}
		if x.form != commands.FormMAC {
			return discard(ReasonRoleNotAllowed, "a supplementary remote party may not send critical command %s", x.uc.name)
		}
	} else {
		known := false
		for _, r := range allowed {
			if a := an.anchor(r); a != nil && a.holds(msg.Originator) {
				x.role, known = r, true
				break
			}
		}
		if !known {
			if r, ok := an.roleOf(msg.Originator); ok {
				return discard(ReasonRoleNotAllowed, "%s (%s) may not send %s", msg.Originator, r, x.uc.name)
			}
			return discard(ReasonUnknownSigner, "%s is in no trust anchor", msg.Originator)
		}
	}
	if !slices.Contains(allowed, x.role) {
		return discard(ReasonRoleNotAllowed, "%s (%s) may not send %s", msg.Originator, x.role, x.uc.name)
	}
	if msg.Signed() {
		return verifyFrom(an, x.role, msg, x.uc.name)
	}
	return nil
}

// verifyFrom checks msg's signature with the digital-signature management
// cell of its originator in role.
func verifyFrom(an *Anchors, role smki.Role, msg *commands.Message, name string) error {
	a := an.anchor(role)
	if a == nil {
		return discard(ReasonUnknownSigner, "%s: devices keep no %s anchor", name, role)
	}
	ds := a.find(msg.Originator, UsageDigitalSignature, asn.CellManagement)
	if ds == nil {
		return discard(ReasonUnknownSigner, "%s (%s) has no digital-signature anchor", msg.Originator, role)
	}
	if err := commands.VerifySignature(ds.sig, msg); err != nil {
		return &DiscardError{Reason: ReasonBadSignature, Err: fmt.Errorf("%s from %s (%s): %w", name, msg.Originator, role, err)}
	}
	return nil
}

// prepareResponse builds the response header and finds the keys the
// response needs: the recipient's key-agreement anchor when the response is
// MAC'd, and the key of the user a sensitive payload is encrypted to. A
// command the meter cannot answer is refused before its counter is spent.
func (m *Meter) prepareResponse(an *Anchors, x *exchange) error {
	in := x.msg
	x.outForm = responseForm(x.code, x.form)
	x.out = &commands.Message{
		CRA:        commands.Response,
		Counter:    in.Counter,
		Originator: m.eui,
		Recipient:  in.Originator,
		Code:       in.Code,
	}
	if x.uc.dlms && x.outForm == commands.FormSigned {
		// A signed ESME response carries the time of execution in its
		// header (constructed vector 04; RTDS has it in 145 responses).
		dt, err := dlms.NewDateTime(x.now)
		if err == nil {
			x.out.DateTime = dt[:]
		}
	}
	if in.URP != nil {
		x.out.URP = &commands.UnknownRemoteParty{EUI: in.URP.EUI, Counter: in.URP.Counter, NoCounter: in.URP.NoCounter}
	}
	if x.outForm == commands.FormMAC {
		replyRole := x.role
		if in.URP != nil {
			replyRole = smki.RoleAccessControlBroker
		}
		a := an.anchor(replyRole)
		var ka *Cell
		if a != nil {
			ka = a.find(in.Originator, UsageKeyAgreement, asn.CellManagement)
		}
		if ka == nil {
			return discard(ReasonRejected, "%s (%s) has no key-agreement anchor to answer to", in.Originator, replyRole)
		}
		x.replyKA = ka.ka
	}
	if Sensitive(x.code) {
		peer, err := m.encryptionPeer(an, x)
		if err != nil {
			return err
		}
		x.encryptTo = peer
	}
	if in.URP != nil && in.URP.KACertificate != nil && !in.URP.NoCounter {
		// The 26-byte form: the meter's own counter, which the transport
		// key then takes (gbcs-payloads.md 1.4, 1.5, 2.3). Taken last, so
		// that a command refused above spends none.
		c := m.nextCounter(x.now)
		x.out.URP.OriginatorCounter = &c
	}
	return nil
}

// encryptionPeer returns the key-agreement key a sensitive response is
// encrypted to (gbcs-payloads.md 2.3, gbcs-security.md 6): the key of the
// certificate the command carried, else the anchor of the supplementary
// remote party the other-information names, else the originator's anchor.
func (m *Meter) encryptionPeer(an *Anchors, x *exchange) (*ecdh.PublicKey, error) {
	urp := x.msg.URP
	switch {
	case urp != nil && urp.KACertificate != nil:
		return urpKey(urp)
	case urp != nil:
		if c := an.agreementCell(urp.EUI); c != nil {
			return c.ka, nil
		}
		return nil, discard(ReasonRejected, "sensitive %s for unknown remote party %s without its key-agreement certificate", x.uc.name, urp.EUI)
	}
	if a := an.anchor(x.role); a != nil {
		if c := a.find(x.msg.Originator, UsageKeyAgreement, asn.CellManagement); c != nil {
			return c.ka, nil
		}
	}
	return nil, discard(ReasonRejected, "sensitive %s for %s (%s), which has no key-agreement anchor", x.uc.name, x.msg.Originator, x.role)
}

// urpKey reads the key-agreement key of an unknown remote party from the
// certificate carried in the command. The certificate must be a
// key-agreement certificate of the party named in the same fields; the
// broker's MAC vouches for the rest, as the meter holds no path to check it.
func urpKey(urp *commands.UnknownRemoteParty) (*ecdh.PublicKey, error) {
	c, err := smki.ParseCertificate(urp.KACertificate)
	if err != nil {
		return nil, discard(ReasonRejected, "unknown remote party %s certificate: %v", urp.EUI, err)
	}
	if c.EUI != urp.EUI {
		return nil, discard(ReasonRejected, "unknown remote party certificate is for %s, not %s", c.EUI, urp.EUI)
	}
	if c.KeyUsage != x509.KeyUsageKeyAgreement {
		return nil, discard(ReasonRejected, "unknown remote party %s certificate has key usage %s, want keyAgreement", urp.EUI, smki.KeyUsageString(c.KeyUsage))
	}
	k, err := c.PublicKey.ECDH()
	if err != nil {
		return nil, discard(ReasonRejected, "unknown remote party %s certificate key: %v", urp.EUI, err)
	}
	return k, nil
}

// seal encrypts plaintext into a ciphered block (gbcs-payloads.md 2.2) under
// the response's transport key, derived on first use from the meter's KA key
// and the key of the user the content is for.
func (x *exchange) seal(ctx context.Context, m *Meter, plaintext []byte) ([]byte, error) {
	if x.encryptTo == nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("%s: no key to encrypt the response to", x.uc.name)}
	}
	if x.key == nil {
		k, err := commands.EncryptionKey(ctx, m.ka, x.encryptTo, x.out)
		if err != nil {
			return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("%s transport key: %w", x.uc.name, err)}
		}
		x.key = k
	}
	b, err := commands.SealBlock(x.key, x.out.Originator, plaintext)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encrypting the %s response: %w", x.uc.name, err)}
	}
	return b, nil
}

// seal signs out (form FormSigned) or MACs it with the key agreed with
// replyKA (form FormMAC), and encodes it.
func (m *Meter) seal(ctx context.Context, out *commands.Message, form commands.Form, replyKA *ecdh.PublicKey) ([]byte, error) {
	switch form {
	case commands.FormSigned:
		if err := commands.Sign(m.env.rand, m.ds, out); err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
	case commands.FormMAC:
		if err := commands.AddMAC(ctx, m.ka, replyKA, out); err != nil {
			return nil, fmt.Errorf("MAC: %w", err)
		}
	default:
		return nil, fmt.Errorf("a meter sends no %s message", form)
	}
	return out.Marshal()
}

// malformed reports a payload that does not fit its use case's layout, with
// the reader's error as the reason.
func malformed(name string, err error) error {
	return &DiscardError{Reason: ReasonMalformed, Err: fmt.Errorf("%s payload: %w", name, err)}
}
