package conformance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// DeviceConfig configures a run against a device.
type DeviceConfig struct {
	// Transport reaches the device. Required.
	Transport Transport
	// Keystore holds the parties' keys and the device's. Required.
	Keystore *Keystore
	// Name describes the device in the reports (its URL).
	Name string
	// Only, when not nil, selects the cases to run by id (Select).
	Only func(id string) bool
	// Now is the clock (counters start at its Unix milliseconds); time.Now
	// when nil.
	Now func() time.Time
}

// RunDevice runs the device cases against the device of cfg. Cases run in
// order and some change the device's state as a real exchange would: the
// COS cases, last, replace its supplier.
func RunDevice(ctx context.Context, cfg DeviceConfig) (*Report, error) {
	if cfg.Transport == nil || cfg.Keystore == nil {
		return nil, errors.New("conformance: a device run needs a transport and a keystore")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	gas := false
	switch k := cfg.Keystore.Manifest.Device.Kind; k {
	case "", "electricity":
	case "gas":
		gas = true
	default:
		return nil, fmt.Errorf("conformance: device kind %q: the suite drives electricity (ESME) and gas (GSME) meters", k)
	}
	env := &deviceEnv{t: cfg.Transport, ks: cfg.Keystore, now: cfg.Now, counters: map[smki.EUI]uint64{}, invoke: 0x20000000, gas: gas}
	rep := &Report{Target: TargetDevice, Name: cfg.Name, Started: cfg.Now()}
	runSteps(ctx, rep, deviceSteps, env, cfg.Only, cfg.Now)
	rep.Duration = cfg.Now().Sub(rep.Started)
	return rep, nil
}

// deviceEnv is the state of a device run.
type deviceEnv struct {
	t        Transport
	ks       *Keystore
	now      func() time.Time
	counters map[smki.EUI]uint64
	invoke   uint32
	// gas says the device is a gas meter (GSME): the cases send its use
	// cases, with GBZ payloads, instead of an ESME's.
	gas bool
	// zseq is the last ZCL sequence number of a GBZ command.
	zseq uint8
	// last is the last command the device accepted from the supplier, for
	// the replay cases.
	last []byte
	// lastCounter is its counter.
	lastCounter uint64
	// cos is set once COS-01 replaced the supplier.
	cos bool
	// seq is the sequence number of the last CS02b built; seqUsed the
	// highest used.
	seq, seqUsed int64
}

// next returns a fresh originator counter for eui: above the last one used
// and at least the clock in milliseconds, as DCC tools set it (section 7).
func (e *deviceEnv) next(eui smki.EUI) uint64 {
	c := max(e.counters[eui]+1, uint64(e.now().UnixMilli()))
	e.counters[eui] = c
	return c
}

func (e *deviceEnv) nextInvoke() uint32 {
	e.invoke++
	return e.invoke
}

// cmd describes a command the suite builds.
type cmd struct {
	from    *party
	code    uint16
	payload []byte
	counter uint64                // a fresh one when 0
	signer  crypto.Signer         // signs when not nil
	macKey  commands.KeyAgreement // the ACB's when nil
	noMAC   bool
	urp     *commands.UnknownRemoteParty
	to      smki.EUI // the device when zero
}

func (e *deviceEnv) build(ctx context.Context, c cmd) (*commands.Message, []byte, error) {
	if c.counter == 0 {
		c.counter = e.next(c.from.eui)
	}
	if c.to.IsZero() {
		c.to = e.ks.Manifest.Device.EUI
	}
	m := &commands.Message{CRA: commands.Command, Counter: c.counter, Originator: c.from.eui, Recipient: c.to,
		Code: commands.MessageCode(c.code), Payload: c.payload, URP: c.urp}
	if c.signer != nil {
		if err := commands.Sign(rand.Reader, c.signer, m); err != nil {
			return nil, nil, err
		}
	}
	if !c.noMAC {
		ka := c.macKey
		if ka == nil {
			ka = e.ks.acb.ka
		}
		if err := commands.AddMAC(ctx, ka, e.ks.DeviceKA, m); err != nil {
			return nil, nil, err
		}
	}
	b, err := m.Marshal()
	return m, b, err
}

// send delivers b and returns the reply.
func (e *deviceEnv) send(ctx context.Context, b []byte) (Reply, error) {
	return e.t.Send(ctx, e.ks.Manifest.Device.EUI, b)
}

// accepted sends b, a command the device must execute, and checks its
// response: a response to m, from the device to recipient (m's originator
// unless given), signed by the device's DS key or MAC'd for recipient.
func (e *deviceEnv) accepted(ctx context.Context, m *commands.Message, b []byte, recipient *party) (*commands.Message, error) {
	rep, err := e.send(ctx, b)
	if err != nil {
		return nil, err
	}
	if rep.Response == nil {
		why := "no response"
		if rep.Reason != "" {
			why += " (discarded: " + rep.Reason + ")"
		}
		return nil, failf("the device must execute and answer this command: %s", why)
	}
	if recipient == nil {
		recipient = e.partyOf(m.Originator)
	}
	r, err := commands.Parse(rep.Response)
	if err != nil {
		return nil, failf("the response does not parse: %v", err)
	}
	if r.CRA != commands.Response || r.Counter != m.Counter || r.Originator != e.ks.Manifest.Device.EUI || r.Recipient != m.Originator || r.Code != m.Code {
		return nil, failf("response header %s counter %d %s->%s %s does not answer command %d from %s %s (section 3: a response repeats the command's counter)",
			r.CRA, r.Counter, r.Originator, r.Recipient, r.Code, m.Counter, m.Originator, m.Code)
	}
	switch {
	case r.Signed() && r.HasMAC():
		return nil, failf("response both signed and MAC'd (section 3: never both)")
	case r.Signed():
		if err := commands.VerifySignature(e.ks.DeviceDS, r); err != nil {
			return nil, failf("response signature does not verify with the device's DS key: %v", err)
		}
	case r.HasMAC():
		if recipient == nil || recipient.ka == nil {
			return r, nil // no key to check it with: the header is all the suite can check
		}
		if err := commands.CheckMAC(ctx, recipient.ka, e.ks.DeviceKA, r); err != nil {
			return nil, failf("response MAC does not verify with the recipient's KA key (section 5): %v", err)
		}
	default:
		return nil, failf("response neither signed nor MAC'd")
	}
	return r, nil
}

// seal adds the ACB's MAC to m, altered after it was built, and returns
// its bytes.
func (e *deviceEnv) seal(ctx context.Context, m *commands.Message) ([]byte, error) {
	if err := commands.AddMAC(ctx, e.ks.acb.ka, e.ks.DeviceKA, m); err != nil {
		return nil, err
	}
	return m.Marshal()
}

func (e *deviceEnv) partyOf(eui smki.EUI) *party {
	for _, p := range []*party{e.ks.acb, e.ks.supplier, e.ks.netop, e.ks.tcos, e.ks.newSupplier, e.ks.other} {
		if p != nil && p.eui == eui {
			return p
		}
	}
	return nil
}

// refused sends b, which the device must discard, and fails if it answers.
func (e *deviceEnv) refused(ctx context.Context, b []byte, what string) (string, error) {
	rep, err := e.send(ctx, b)
	if err != nil {
		return "", err
	}
	if rep.Response != nil {
		return "", failf("the device answered %s (%d bytes); it must discard it", what, len(rep.Response))
	}
	if rep.Reason != "" {
		return fmt.Sprintf("discarded %s (reason given: %s)", what, rep.Reason), nil
	}
	return "discarded " + what, nil
}

// The commands the device cases send. An ESME gets ECS45 (read the load
// switch status) and ECS42 (close the load switch: the supply stays on),
// DLMS payloads; a GSME gets GCS33 (read the valve status) and GCS39 (arm
// the valve: the gas stays off until the consumer opens it), GBZ payloads
// (gbcs-payloads.md 5.3).

// useCase names a use case the cases send, for their details.
func (e *deviceEnv) useCase(code uint16) string {
	switch code {
	case device.CodeGCS33:
		return "GCS33"
	case device.CodeGCS39:
		return "GCS39"
	case device.CodeECS45:
		return "ECS45"
	}
	return "ECS42"
}

// readCode is the non-critical read's message code.
func (e *deviceEnv) readCode() uint16 {
	if e.gas {
		return device.CodeGCS33
	}
	return device.CodeECS45
}

// criticalCode is the critical command's message code.
func (e *deviceEnv) criticalCode() uint16 {
	if e.gas {
		return device.CodeGCS39
	}
	return device.CodeECS42
}

func (e *deviceEnv) readPayload() []byte {
	if e.gas {
		return e.gbz(gbz.NewReadValveStatus())
	}
	b, _ := dlms.LoadSwitchStatusRequest(e.nextInvoke()).MarshalBinary()
	return b
}

func (e *deviceEnv) criticalPayload() []byte {
	if e.gas {
		now, _ := gbz.NewUTC(e.now())
		return e.gbz(gbz.NewChangeSupply(gbz.ChangeSupply{IssuerEventID: now, RequestDateTime: now,
			ProposedSupplyStatus: gbz.SupplyArmed, SupplyControlBits: 0x01}))
	}
	b, _ := dlms.LoadSwitchRequest(e.nextInvoke(), dlms.ScriptCloseLoadSwitch).MarshalBinary()
	return b
}

// gbz numbers p's components with a fresh ZCL sequence number and encodes
// it.
func (e *deviceEnv) gbz(p *gbz.Payload) []byte {
	e.zseq++
	for i := range p.Components {
		p.Components[i].ZCL.Sequence = e.zseq
	}
	b, _ := p.Marshal()
	return b
}

// read builds a non-critical read from the supplier.
func (e *deviceEnv) read(ctx context.Context) (*commands.Message, []byte, error) {
	return e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload()})
}

// critical builds the critical command from p, signed by signer.
func (e *deviceEnv) critical(ctx context.Context, p *party, signer crypto.Signer) (*commands.Message, []byte, error) {
	return e.build(ctx, cmd{from: p, code: e.criticalCode(), payload: e.criticalPayload(), signer: signer})
}

func dstep(id, section, title string, sev Severity, run func(context.Context, *deviceEnv) (string, error)) step[*deviceEnv] {
	return step[*deviceEnv]{Case: Case{ID: id, Section: section, Title: title, Target: TargetDevice, Severity: sev}, run: run}
}

// deviceSteps are the device cases, in the order they run.
var deviceSteps = []step[*deviceEnv]{
	dstep("MAC-01", "gbcs-security 5", "a command MAC'd by the ACB is executed and answered with a response MAC'd for its originator", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, nil); err != nil {
				return "", err
			}
			e.last, e.lastCounter = b, m.Counter
			return fmt.Sprintf("%s counter %d executed; response MAC verified", e.useCase(e.readCode()), m.Counter), nil
		}),
	dstep("MAC-02", "gbcs-security 5", "a command whose MAC has one bit flipped is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			b[len(b)-1] ^= 0x01
			return e.refused(ctx, b, "a command with a flipped MAC bit")
		}),
	dstep("MAC-03", "gbcs-security 5", "a command MAC'd with a key other than the ACB's is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			k, err := commands.NewECDHKeyFromECDSA(mustKey())
			if err != nil {
				return "", err
			}
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), macKey: k})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command MAC'd with a stranger's key")
		}),
	dstep("MAC-04", "gbcs-security 3, 5", "a command whose MAC is truncated to 8 bytes (lengths adjusted) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			t, err := truncateMAC(b, 4)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, t, "a command with an 8-byte MAC")
		}),
	dstep("MAC-05", "gbcs-security 5", "a command altered after the MAC (one payload bit) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			b[len(b)-12-1-len(m.Payload)/2] ^= 0x01 // inside the payload (the signature field 00 follows it)
			return e.refused(ctx, b, "a command altered after its MAC")
		}),
	dstep("CTR-01", "gbcs-security 7", "the same command delivered again (replay) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if e.last == nil {
				return "", skipf("MAC-01 did not leave an accepted command to replay")
			}
			return e.refused(ctx, e.last, "a replayed command")
		}),
	dstep("CTR-02", "gbcs-security 7", "a new command with a counter equal to the last accepted is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, nil); err != nil {
				return "", skipf("a fresh command was not accepted first: %v", err)
			}
			_, b, err = e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), counter: m.Counter})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, fmt.Sprintf("a command with the counter %d just accepted", m.Counter))
		}),
	dstep("CTR-03", "gbcs-security 7", "a command with a counter below the last accepted is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			last := e.counters[e.ks.supplier.eui]
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), counter: last - 1000})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command with a lower counter")
		}),
	dstep("SIG-01", "gbcs-security 4", "a critical command signed by the supplier and MAC'd is executed; its response is signed by the device", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, b, err := e.critical(ctx, e.ks.supplier, e.ks.supplier.ds)
			if err != nil {
				return "", err
			}
			r, err := e.accepted(ctx, m, b, nil)
			if err != nil {
				return "", err
			}
			if !r.Signed() {
				return "", failf("the response to a critical command is %s, want signed by the device (section 4)", r.Form())
			}
			return e.useCase(e.criticalCode()) + " executed, response signature verified with the device's DS key", nil
		}),
	dstep("SIG-02", "gbcs-security 4", "a critical command signed with a key other than the supplier's is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.critical(ctx, e.ks.supplier, mustKey())
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a critical command signed with a stranger's key")
		}),
	dstep("SIG-03", "gbcs-security 4, 9", "a critical command signed by the network operator, a role that may not send it, is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if e.ks.netop == nil {
				return "", skipf("the keystore names no network operator")
			}
			_, b, err := e.critical(ctx, e.ks.netop, e.ks.netop.ds)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a supplier-only critical command from the network operator")
		}),
	dstep("SIG-04", "gbcs-security 4", "a critical command whose signature is malleated (s replaced by n-s) still verifies and is executed: GBCS does not require low-S", SeverityWarning,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, _, err := e.critical(ctx, e.ks.supplier, e.ks.supplier.ds)
			if err != nil {
				return "", err
			}
			n := elliptic.P256().Params().N
			s := new(big.Int).SetBytes(m.Signature[32:])
			new(big.Int).Sub(n, s).FillBytes(m.Signature[32:])
			b, err := e.seal(ctx, m)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, nil); err != nil {
				return "", err
			}
			return "high-S signature accepted", nil
		}),
	dstep("SIG-05", "gbcs-security 4", "a critical command whose signature has one bit of s flipped is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, _, err := e.critical(ctx, e.ks.supplier, e.ks.supplier.ds)
			if err != nil {
				return "", err
			}
			m.Signature[63] ^= 0x01
			b, err := e.seal(ctx, m)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a critical command with an altered signature (MAC valid)")
		}),
	dstep("SIG-06", "gbcs-security 4", "a critical command carrying a DER ECDSA-Sig-Value instead of raw r||s (MAC valid) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, _, err := e.critical(ctx, e.ks.supplier, e.ks.supplier.ds)
			if err != nil {
				return "", err
			}
			b, err := derSigned(ctx, m, e.ks.supplier.ds, e)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a critical command with a DER signature")
		}),
	dstep("SIG-07", "gbcs-security 4", "a critical command MAC'd but unsigned (signature field 00) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.critical(ctx, e.ks.supplier, nil)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "an unsigned critical command")
		}),
	dstep("PRE-01", "gbcs-security 3, 4", "a pre-command (no MAC header, no signature field) is discarded: only the ACB's MAC'd command executes", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.criticalCode(), payload: e.criticalPayload(), noMAC: true})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a pre-command")
		}),
	dstep("PRE-02", "gbcs-security 3, 4", "a signed pre-command (signed, no MAC header) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.criticalCode(), payload: e.criticalPayload(), noMAC: true, signer: e.ks.supplier.ds})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a signed pre-command without the ACB's MAC")
		}),
	dstep("PRE-03", "gbcs-security 3, 4", "the two steps: pre-command signed by the supplier, then MAC'd by the ACB around exactly those bytes, is executed", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, _, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.criticalCode(), payload: e.criticalPayload(), noMAC: true})
			if err != nil {
				return "", err
			}
			if !m.IsPreCommand() {
				return "", fmt.Errorf("conformance: built a %s, not a pre-command", m.Form())
			}
			if err := commands.SignPreCommand(rand.Reader, e.ks.supplier.ds, m); err != nil {
				return "", err
			}
			b, err := e.seal(ctx, m)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, nil); err != nil {
				return "", err
			}
			return "signed pre-command with the ACB's MAC executed", nil
		}),
	dstep("URP-01", "gbcs-security 6, 8", "an unknown remote party's read through the ACB is answered encrypted to that party's KA certificate, which the ACB cannot decrypt", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			o := e.ks.other
			if o == nil {
				return "", skipf("the keystore names no other user")
			}
			if e.gas {
				return "", skipf("not covered for a gas meter yet (it sends the ESME's ECS22b)")
			}
			now := e.now().UTC()
			from, err := dlms.NewDateTime(now.Add(-2 * time.Hour))
			if err != nil {
				return "", err
			}
			to, err := dlms.NewDateTime(now)
			if err != nil {
				return "", err
			}
			counter := e.next(e.ks.acb.eui)
			pp := dlms.NewProtectionParameters(counter, o.eui, e.ks.Manifest.Device.EUI)
			p, err := dlms.HalfHourProfileRequest(e.nextInvoke(), from, to, pp).MarshalBinary()
			if err != nil {
				return "", err
			}
			urp := &commands.UnknownRemoteParty{EUI: o.eui, Counter: e.next(o.eui), KACertificate: o.kaDER}
			m, b, err := e.build(ctx, cmd{from: e.ks.acb, code: device.CodeECS22b, payload: p, counter: counter, urp: urp})
			if err != nil {
				return "", err
			}
			r, err := e.accepted(ctx, m, b, e.ks.acb)
			if err != nil {
				return "", err
			}
			if r.URP == nil || r.URP.EUI != o.eui {
				return "", failf("the response does not name the unknown remote party %s in its other-information (section 8)", o.eui)
			}
			if _, err := commands.OpenPayload(ctx, o.ka, e.ks.DeviceKA, r); err != nil {
				return "", failf("the other user cannot decrypt its response (section 6): %v", err)
			}
			if _, err := commands.OpenPayload(ctx, e.ks.acb.ka, e.ks.DeviceKA, r); err == nil {
				return "", failf("the ACB can decrypt the other user's response: it is not encrypted to the other user's key")
			}
			return fmt.Sprintf("response in the %d-byte other-information form, decrypted by %s only", r.OtherInfoForm(), o.eui), nil
		}),
	dstep("FRM-01", "gbcs-security 3", "a command whose MAC header and content lengths use non-minimal long forms (82 00 xx) is executed", SeverityWarning,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m := &commands.Message{CRA: commands.Command, Counter: e.next(e.ks.supplier.eui), Originator: e.ks.supplier.eui,
				Recipient: e.ks.Manifest.Device.EUI, Code: commands.MessageCode(e.readCode()), Payload: e.readPayload(),
				Lengths: commands.Lengths{MACHeader: 2, Content: 2}}
			b, err := e.seal(ctx, m)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, nil); err != nil {
				return "", err
			}
			return "long-form lengths read", nil
		}),
	dstep("FRM-02", "gbcs-security 3", "a MAC'd command whose block has no signature-length field (a pre-command inside a MAC header) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			m, _, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), noMAC: true})
			if err != nil {
				return "", err
			}
			b, err := macAround(ctx, m, e)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a MAC'd block without signature field")
		}),
	dstep("FRM-03", "gbcs-security 3", "a command cut short (its last 5 bytes missing) is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b[:len(b)-5], "a truncated command")
		}),
	dstep("FRM-04", "gbcs-security 3", "a command with bytes after its MAC is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			_, b, err := e.read(ctx)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, append(b, 0x00, 0x00), "a command with trailing bytes")
		}),
	dstep("FRM-05", "gbcs-security 3", "a command correctly MAC'd for the device but addressed to another EUI is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			other := e.ks.Manifest.Device.EUI
			other[7] ^= 0xFF
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), to: other})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command for "+other.String())
		}),
	dstep("CS02B-01", "gbcs-security 9", "CS02b supplierBySupplier (0x0102) re-installing the supplier's certificates with a higher sequence number is executed", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			seq := e.cs02bSeq()
			if _, err := e.cs02bSupplier(ctx, seq); err != nil {
				return "", err
			}
			return fmt.Sprintf("sequence number %d accepted", seq), nil
		}),
	dstep("CS02B-02", "gbcs-security 9", "CS02b supplierBySupplier with the sequence number just used is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			b, err := e.cs02bSupplierBytes(ctx, e.seq)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, fmt.Sprintf("a CS02b with the spent sequence number %d", e.seq))
		}),
	dstep("CS02B-03", "gbcs-security 9", "CS02b supplierBySupplier with a lower sequence number is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			b, err := e.cs02bSupplierBytes(ctx, e.seq-1)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, fmt.Sprintf("a CS02b with sequence number %d", e.seq-1))
		}),
	dstep("CS02B-04", "gbcs-security 9", "CS02b supplierBySupplier MAC'd but signed by a stranger is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			p, err := e.cs02bPayload(asn.SupplierBySupplier, e.cs02bSeq(), nil, e.ks.supplier)
			if err != nil {
				return "", err
			}
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: 0x0102, payload: p, signer: mustKey()})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a CS02b with a stranger's signature")
		}),
	dstep("CS02B-05", "gbcs-security 9", "CS02b supplierByTransCoS (0x0107) signed by the supplier, not the TCoS party, is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if e.ks.newSupplier == nil {
				return "", skipf("the keystore names no new supplier")
			}
			p, err := e.cs02bPayload(asn.SupplierByTransCoS, e.cs02bSeq(), new(int64), e.ks.newSupplier)
			if err != nil {
				return "", err
			}
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: 0x0107, payload: p, signer: e.ks.supplier.ds})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a supplierByTransCoS update authorised by the supplier")
		}),
	dstep("CTR-04", "gbcs-security 7", "a command with a counter 2^40 above the last accepted is discarded (GBCS sets no bound: a device accepting it is a warning)", SeverityWarning,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			c := e.next(e.ks.supplier.eui) + 1<<40
			e.counters[e.ks.supplier.eui] = c
			_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: e.readCode(), payload: e.readPayload(), counter: c})
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "a command with a counter 2^40 ahead")
		}),
	dstep("COS-01", "gbcs-security 9", "change of supplier: CS02b supplierByTransCoS (0x0107) signed by the TCoS party replaces the supplier's cells and is answered to the TCoS", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if e.ks.tcos == nil || e.ks.newSupplier == nil {
				return "", skipf("the keystore names no TCoS party or no new supplier")
			}
			p, err := e.cs02bPayload(asn.SupplierByTransCoS, e.cs02bSeq(), new(int64), e.ks.newSupplier)
			if err != nil {
				return "", err
			}
			m, b, err := e.build(ctx, cmd{from: e.ks.tcos, code: 0x0107, payload: p, signer: e.ks.tcos.ds})
			if err != nil {
				return "", err
			}
			r, err := e.accepted(ctx, m, b, e.ks.tcos)
			if err != nil {
				return "", err
			}
			res, err := asn.Parse[asn.UpdateSecurityCredentialsResponse](r.Payload)
			if err != nil {
				return "", failf("the CS02b response payload: %v", err)
			}
			if res.ExecutionOutcome == nil || len(res.ExecutionOutcome.ReplacementOutcomes) == 0 ||
				res.ExecutionOutcome.ReplacementOutcomes[0].ReplacingSubjectUniqueID.EUI() != e.ks.newSupplier.eui {
				return "", failf("the CS02b response does not report the new supplier %s installed", e.ks.newSupplier.eui)
			}
			e.cos = true
			return "supplier cells now hold " + e.ks.newSupplier.eui.String(), nil
		}),
	dstep("COS-02", "gbcs-security 9", "after the change of supplier, a critical command signed by the old supplier is discarded", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if !e.cos {
				return "", skipf("COS-01 did not change the supplier")
			}
			_, b, err := e.critical(ctx, e.ks.supplier, e.ks.supplier.ds)
			if err != nil {
				return "", err
			}
			return e.refused(ctx, b, "the old supplier's signed command")
		}),
	dstep("COS-03", "gbcs-security 9", "after the change of supplier, the new supplier's critical command is executed and answered to it", SeverityError,
		func(ctx context.Context, e *deviceEnv) (string, error) {
			if !e.cos {
				return "", skipf("COS-01 did not change the supplier")
			}
			m, b, err := e.critical(ctx, e.ks.newSupplier, e.ks.newSupplier.ds)
			if err != nil {
				return "", err
			}
			if _, err := e.accepted(ctx, m, b, e.ks.newSupplier); err != nil {
				return "", err
			}
			return "the new supplier's " + e.useCase(e.criticalCode()) + " executed", nil
		}),
}

// seq is the sequence number of the last CS02b the suite built.
func (e *deviceEnv) cs02bSeq() int64 {
	s := max(e.now().Unix(), e.seqUsed+1)
	e.seqUsed = s
	e.seq = s
	return s
}

func (e *deviceEnv) cs02bPayload(mode asn.CredentialsReplacementMode, seq int64, floor *int64, p *party) ([]byte, error) {
	r := asn.RemotePartyRole(smki.RoleSupplier)
	c := &asn.UpdateSecurityCredentialsCommand{
		AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{CredentialsReplacementMode: mode,
			AuthorisingRemotePartySeqNumber: asn.SeqNumber(seq)},
		Replacements: []asn.TrustAnchorReplacement{
			{ReplacementCertificate: asn.Certificate{Raw: p.dsDER}, TargetTrustAnchorCell: asn.Cell(r, asn.DigitalSignature, asn.CellManagement)},
			{ReplacementCertificate: asn.Certificate{Raw: p.kaDER}, TargetTrustAnchorCell: asn.Cell(r, asn.KeyAgreement, asn.CellManagement)},
		},
		CertificationPathCertificates: []asn.Certificate{},
	}
	if floor != nil {
		f := asn.SeqNumber(*floor)
		c.AuthorisingRemotePartyControl.NewRemotePartyFloorSeqNumber = &f
	}
	return c.Marshal()
}

func (e *deviceEnv) cs02bSupplierBytes(ctx context.Context, seq int64) ([]byte, error) {
	p, err := e.cs02bPayload(asn.SupplierBySupplier, seq, nil, e.ks.supplier)
	if err != nil {
		return nil, err
	}
	_, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: 0x0102, payload: p, signer: e.ks.supplier.ds})
	return b, err
}

func (e *deviceEnv) cs02bSupplier(ctx context.Context, seq int64) (*commands.Message, error) {
	p, err := e.cs02bPayload(asn.SupplierBySupplier, seq, nil, e.ks.supplier)
	if err != nil {
		return nil, err
	}
	m, b, err := e.build(ctx, cmd{from: e.ks.supplier, code: 0x0102, payload: p, signer: e.ks.supplier.ds})
	if err != nil {
		return nil, err
	}
	return e.accepted(ctx, m, b, nil)
}

// truncateMAC drops n bytes of the MAC at the end of a MAC'd message b and
// lowers its MAC header length to match (short-form header only).
func truncateMAC(b []byte, n int) ([]byte, error) {
	if len(b) < 8 || b[0] != 0xDD || b[7]&0x80 != 0 {
		return nil, errors.New("conformance: truncateMAC wants a MAC header with a short-form length")
	}
	out := append([]byte(nil), b[:len(b)-n]...)
	out[7] -= byte(n)
	return out, nil
}

// blockOf returns the general-signing block of m, DF through the payload,
// followed by sigField (the signature field as the case wants it; nil for
// none).
func blockOf(m *commands.Message, sigField []byte) ([]byte, error) {
	signed, err := m.SignedData()
	if err != nil {
		return nil, err
	}
	return append(append([]byte{0xDF}, signed...), sigField...), nil
}

// macAroundField builds a MAC'd message by hand around m's block followed
// by sigField (nil: no signature field at all), MAC'd with the ACB's key as
// section 5 says: what the commands package refuses to write, for the
// framing and signature-encoding cases.
func macAroundField(ctx context.Context, m *commands.Message, sigField []byte, e *deviceEnv) ([]byte, error) {
	block, err := blockOf(m, sigField)
	if err != nil {
		return nil, err
	}
	z, err := e.ks.acb.ka.ECDH(ctx, e.ks.DeviceKA)
	if err != nil {
		return nil, err
	}
	key := commands.DeriveKey(z, m.MACInfo())
	clear(z)
	defer clear(key)
	aad := append([]byte{0x11, 0, 0, 0, 0, 0}, block...)
	tag, err := commands.GMAC(key, m.Originator, aad)
	if err != nil {
		return nil, err
	}
	rest := 5 + len(block) + len(tag)
	out := []byte{0xDD, 0, 0, 0, 0, 0, 0}
	switch {
	case rest < 0x80:
		out = append(out, byte(rest))
	case rest < 0x100:
		out = append(out, 0x81, byte(rest))
	default:
		out = binary.BigEndian.AppendUint16(append(out, 0x82), uint16(rest))
	}
	out = append(out, 0x11, 0, 0, 0, 0)
	out = append(out, block...)
	return append(out, tag...), nil
}

// macAround is macAroundField with no signature field at all.
func macAround(ctx context.Context, m *commands.Message, e *deviceEnv) ([]byte, error) {
	return macAroundField(ctx, m, nil, e)
}

// derSigned returns m MAC'd with an ASN.1 DER ECDSA-Sig-Value in its
// signature field instead of raw r||s.
func derSigned(ctx context.Context, m *commands.Message, signer crypto.Signer, e *deviceEnv) ([]byte, error) {
	m.Signature, m.MAC = nil, nil
	data, err := m.SignedData()
	if err != nil {
		return nil, err
	}
	der, err := signDER(signer, data)
	if err != nil {
		return nil, err
	}
	return macAroundField(ctx, m, append([]byte{byte(len(der))}, der...), e)
}

// mustKey returns a fresh P-256 key: a stranger's.
func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// signDER signs data with signer and keeps the ASN.1 DER encoding.
func signDER(signer crypto.Signer, data []byte) ([]byte, error) {
	d := sha256.Sum256(data)
	return signer.Sign(rand.Reader, d[:], crypto.SHA256)
}
