package device

import (
	"context"
	"crypto/ecdh"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// Handle receives one message as a meter does and returns the response to
// send back. A message the meter refuses gets no response: Handle returns a
// *DiscardError carrying the Reason, and the meter counts it. Handle never
// panics, whatever the bytes.
//
// The checks run in this order (GBCS sections 4, 5 and 7): the message
// parses and is a MAC'd command for this meter; the MAC verifies with the
// key agreed between the meter's KA key and the access control broker's KA
// anchor; the originator counter is greater than the last one accepted from
// that originator; the use case is one the meter executes; the originator's
// role may send it (for an unknown remote party, the broker vouches and the
// role is "other"); a critical command's signature verifies with the
// digital-signature cell of that originator in an allowed role. Only then is
// the counter recorded and the command executed.
//
// The response repeats the command's counter with CRA flag 2, is addressed
// to the command's originator, is signed with the meter's DS key when the
// command was critical, carries a sensitive payload encrypted to the
// recipient user (the unknown remote party's KA certificate when the command
// carried one), and is MAC'd with the key agreed between the meter's KA key
// and the recipient's KA key.
func (m *Meter) Handle(ctx context.Context, msg []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
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
	return resp, nil
}

// command is a parsed, authenticated command and what Handle learnt about
// it along the way.
type command struct {
	msg  *commands.Message
	uc   useCase
	role smki.Role
	// replyKA is the recipient's key-agreement key, for the response MAC.
	replyKA *ecdh.PublicKey
	// encryptTo is the key a sensitive response payload is encrypted to.
	encryptTo *ecdh.PublicKey
	// cs02b is the decoded credential update, for CS02b.
	cs02b *credentialUpdate
}

func (m *Meter) handle(ctx context.Context, raw []byte) ([]byte, error) {
	msg, err := commands.Parse(raw)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonMalformed, Err: err}
	}
	switch {
	case msg.CRA != commands.Command:
		return nil, discard(ReasonNotCommand, "CRA flag %s", msg.CRA)
	case !msg.HasMAC():
		return nil, discard(ReasonNotCommand, "command %s without MAC header", msg.Code)
	case msg.Recipient != m.eui:
		return nil, discard(ReasonWrongRecipient, "addressed to %s", msg.Recipient)
	}
	an := m.anchors

	// 1. The access control broker's MAC.
	if err := m.checkMAC(ctx, an, msg); err != nil {
		return nil, err
	}
	// 2. The originator counter.
	if last, ok := m.lastCounter(msg.Originator); ok && msg.Counter <= last {
		return nil, discard(ReasonReplay, "counter %d from %s, last accepted %d", msg.Counter, msg.Originator, last)
	}
	// 3. Use case, role and signature.
	cmd := &command{msg: msg}
	if err := m.authorise(ctx, an, cmd); err != nil {
		return nil, err
	}
	// 4. Execute. The counter is recorded once the command is known
	// authentic and authorised, whether or not its payload then executes.
	m.recordCounter(msg.Originator, msg.Counter)
	payload, err := m.execute(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return m.respond(ctx, cmd, payload)
}

func (m *Meter) checkMAC(ctx context.Context, an *Anchors, msg *commands.Message) error {
	acb := an.anchor(smki.RoleAccessControlBroker)
	tried := false
	for _, c := range acb.Cells {
		if c.KeyUsage != UsageKeyAgreement || c.Usage != Management {
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

// authorise finds the use case, the originator's role and, for critical
// commands, checks the signature.
func (m *Meter) authorise(ctx context.Context, an *Anchors, cmd *command) error {
	msg := cmd.msg
	code := uint16(msg.Code)
	var allowed []smki.Role
	var signers []smki.Role
	if code >= CodeCS02bFirst && code <= CodeCS02bLast {
		mode, ok := replacementModes[code]
		if !ok {
			return discard(ReasonUnsupported, "CS02b message code %s", msg.Code)
		}
		cmd.uc = useCase{name: "CS02b", kind: anyKind, op: opCredentialsUpdate, critical: true}
		allowed, signers = []smki.Role{mode.signer}, []smki.Role{mode.signer}
	} else {
		uc, ok := useCases[code]
		if !ok || (uc.kind != anyKind && uc.kind != m.kind) {
			return discard(ReasonUnsupported, "message code %s on a %s", msg.Code, m.kind)
		}
		cmd.uc, allowed = uc, uc.roles
		if uc.critical {
			signers = uc.roles
		}
	}

	// Who is the originator? The broker speaking for an unknown remote
	// party is role "other"; otherwise the anchors say.
	acb := an.anchor(smki.RoleAccessControlBroker)
	role, known := smki.Role(0), false
	if msg.URP != nil {
		if !acb.holds(msg.Originator) {
			return discard(ReasonUnknownSigner, "unknown-remote-party command from %s, which is not the access control broker", msg.Originator)
		}
		role, known = smki.RoleOther, true
	} else {
		for _, r := range allowed {
			if a := an.anchor(r); a != nil && a.holds(msg.Originator) {
				role, known = r, true
				break
			}
		}
		if !known {
			if r, ok := an.roleOf(msg.Originator); ok {
				return discard(ReasonRoleNotAllowed, "%s (%s) may not send %s", msg.Originator, r, cmd.uc.name)
			}
			return discard(ReasonUnknownSigner, "%s is in no trust anchor", msg.Originator)
		}
	}
	if !containsRole(allowed, role) {
		return discard(ReasonRoleNotAllowed, "%s (%s) may not send %s", msg.Originator, role, cmd.uc.name)
	}

	if len(signers) > 0 {
		if role == smki.RoleOther {
			return discard(ReasonRoleNotAllowed, "an unknown remote party may not send critical command %s", cmd.uc.name)
		}
		ds := an.anchor(role).find(msg.Originator, UsageDigitalSignature, Management)
		if ds == nil {
			return discard(ReasonUnknownSigner, "%s (%s) has no digital-signature anchor", msg.Originator, role)
		}
		if err := commands.VerifySignature(ds.sig, msg); err != nil {
			return &DiscardError{Reason: ReasonBadSignature, Err: fmt.Errorf("%s from %s (%s): %w", cmd.uc.name, msg.Originator, role, err)}
		}
	}

	// The response needs the recipient's key-agreement key: the broker's
	// for an unknown remote party, else the originator's own.
	replyRole := role
	if role == smki.RoleOther {
		replyRole = smki.RoleAccessControlBroker
	}
	ka := an.anchor(replyRole).find(msg.Originator, UsageKeyAgreement, Management)
	if ka == nil {
		return discard(ReasonRejected, "%s (%s) has no key-agreement anchor to answer to", msg.Originator, replyRole)
	}
	cmd.role, cmd.replyKA = role, ka.ka
	if cmd.uc.sensitive {
		peer, err := m.encryptionPeer(cmd)
		if err != nil {
			return err
		}
		cmd.encryptTo = peer
	}
	if cmd.uc.op == opCredentialsUpdate {
		return m.checkCredentialUpdate(ctx, an, cmd)
	}
	return nil
}

func containsRole(rs []smki.Role, r smki.Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// respond builds, encrypts, signs and MACs the response to cmd.
func (m *Meter) respond(ctx context.Context, cmd *command, payload []byte) ([]byte, error) {
	in := cmd.msg
	out := &commands.Message{
		CRA:        commands.Response,
		Counter:    in.Counter,
		Originator: m.eui,
		Recipient:  in.Originator,
		Code:       in.Code,
		Payload:    payload,
	}
	if in.URP != nil {
		out.URP = &commands.UnknownRemoteParty{EUI: in.URP.EUI, Counter: in.URP.Counter}
	}
	// One key agreement serves both the transport key and the MAC key when
	// the payload is encrypted to the party the response is MAC'd for (every
	// case but an unknown remote party). Z never leaves this function.
	z, err := m.ka.ECDH(ctx, cmd.replyKA)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("key agreement for %s response: %w", cmd.uc.name, err)}
	}
	defer clear(z)
	if cmd.encryptTo != nil {
		if err := m.encrypt(ctx, out, cmd.encryptTo, cmd.replyKA, z); err != nil {
			return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encrypting %s response: %w", cmd.uc.name, err)}
		}
	}
	if cmd.uc.critical {
		if err := commands.Sign(m.env.rand, m.ds, out); err != nil {
			return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("signing %s response: %w", cmd.uc.name, err)}
		}
	}
	key := commands.DeriveKey(z, out.MACInfo())
	defer clear(key)
	if out.MAC, err = commands.MAC(key, out); err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("MAC on %s response: %w", cmd.uc.name, err)}
	}
	b, err := out.Marshal()
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding %s response: %w", cmd.uc.name, err)}
	}
	return b, nil
}

// encrypt replaces out's payload by its protected form, encrypted to peer;
// z is the shared secret with replyKA, reused when peer is that key.
func (m *Meter) encrypt(ctx context.Context, out *commands.Message, peer, replyKA *ecdh.PublicKey, z []byte) error {
	if !peer.Equal(replyKA) {
		return commands.EncryptPayload(ctx, m.ka, peer, out)
	}
	key := commands.DeriveKey(z, out.EncryptionInfo())
	defer clear(key)
	p, err := commands.Seal(key, out.Originator, out.Payload)
	if err != nil {
		return err
	}
	out.Payload = p
	return nil
}

// encryptionPeer returns the key a sensitive response is encrypted to: the
// unknown remote party's KA certificate key, or the originator's
// key-agreement anchor.
func (m *Meter) encryptionPeer(cmd *command) (*ecdh.PublicKey, error) {
	if cmd.role != smki.RoleOther {
		return cmd.replyKA, nil
	}
	urp := cmd.msg.URP
	if urp.KACertificate == nil {
		return nil, discard(ReasonRejected, "sensitive %s for unknown remote party %s without its key-agreement certificate", cmd.uc.name, urp.EUI)
	}
	return urpKey(urp)
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
