package router

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// ServiceRequestInput is a DUIS-style service request in JSON: the first of
// the two steps of a critical command. The router answers with the command
// for the caller to sign (a pre-command) or, for a non-critical request, to
// submit as it is.
type ServiceRequestInput struct {
	// Ref is the service reference variant, such as "7.2".
	Ref string `json:"serviceReference"`
	// Target is the device.
	Target smki.EUI `json:"target"`
	// Fuel selects the use case: "electricity" (ESME, the default) or "gas"
	// (GSME).
	Fuel string `json:"fuel,omitempty"`
	// Counter is the originator counter; zero lets the router choose one:
	// the clock in milliseconds, or one above the last forwarded when that
	// is later, and at most 2^32 above the last. A counter the pipeline
	// would refuse (not above the last forwarded, more than 2^32 above it,
	// or, for the pair's first command, more than a day ahead of the clock)
	// is refused at once.
	Counter uint64 `json:"counter,omitempty"`
	// Parameters are the request's own parameters (see SupportedServiceRequests).
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// PreCommand is the command built from a service request.
type PreCommand struct {
	// Message is the command, hex-encoded; sign it when Critical.
	Message string `json:"message"`
	// Code is the GBCS message code, Ref the service reference variant.
	Code string `json:"messageCode"`
	Ref  string `json:"serviceReference"`
	// Critical says whether the caller must sign it before submitting.
	Critical bool `json:"critical"`
	// Counter is the originator counter written into it.
	Counter uint64 `json:"counter"`
	// Target is the device.
	Target smki.EUI `json:"target"`
}

// payloadContext is what a command's payload depends on besides the
// request's parameters: the DLMS invoke id and protection parameters repeat
// the header counter and name the real user and the device (spec
// gbcs-payloads.md 2.4, 4.1).
type payloadContext struct {
	code    uint16
	counter uint64
	user    smki.EUI // the caller: the originator, or the SRP in URP form
	target  smki.EUI
	now     time.Time
}

func (c payloadContext) invokeID() uint32 { return dlms.InvokeID(c.counter) }

func (c payloadContext) protection() dlms.ProtectionParameters {
	return dlms.NewProtectionParameters(c.counter, c.user, c.target)
}

type srBuilder struct {
	elec, gas uint16
	payload   func(c payloadContext, params json.RawMessage) ([]byte, error)
}

func noParams(params json.RawMessage) error {
	if len(bytes.TrimSpace(params)) == 0 || string(bytes.TrimSpace(params)) == "null" || string(bytes.TrimSpace(params)) == "{}" {
		return nil
	}
	return fmt.Errorf("%w: this service request takes no parameters", ErrBadRequest)
}

func strictJSON(params json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(params))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: parameters: %v", ErrBadRequest, err)
	}
	if d.More() {
		return fmt.Errorf("%w: parameters: trailing data", ErrBadRequest)
	}
	return nil
}

// encoded returns the bytes of a payload value built by the codec packages.
func encoded(b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the payload: %w", ErrBadRequest, err)
	}
	return b, nil
}

// The message codes of the use cases the router builds.
const (
	codeECS01a = dlms.CodeECS01a
	codeECS04b = dlms.CodeECS04b
	codeECS17b = dlms.CodeECS17b
	codeECS22b = dlms.CodeECS22b
	codeECS42  = dlms.CodeECS42
	codeECS43  = dlms.CodeECS43
	codeECS44  = dlms.CodeECS44
	codeECS45  = dlms.CodeECS45
	codeECS50  = dlms.CodeECS50
	codeECS66  = 0x0060
	codeECS82  = 0x0069
	codeGCS01a = 0x006B
	codeGCS13a = 0x0074
	codeGCS17  = 0x0078
	codeGCS32  = gbz.CodeGCS32
	codeGCS33  = gbz.CodeGCS33
	codeGCS36  = 0x0083
	codeGCS39  = gbz.CodeGCS39
	codeGCS60  = 0x008D
	codeGCS61  = 0x00A0
)

// supplyPayload builds the supply-switch commands: on the ESME a script
// table execute (ECS42/43/44) or a GET of the disconnect control's state
// (ECS45); on the GSME the metering cluster's Change Supply (GCS32, GCS39)
// or the valve status read (GCS33); spec gbcs-payloads.md 4.5, 5.3.
func supplyPayload(c payloadContext, params json.RawMessage) ([]byte, error) {
	if err := noParams(params); err != nil {
		return nil, err
	}
	change := func(st gbz.SupplyStatus) ([]byte, error) {
		return encoded(gbz.NewChangeSupply(gbz.ChangeSupply{IssuerEventID: utc(c.now), ProposedSupplyStatus: st, SupplyControlBits: 1}).Marshal())
	}
	switch c.code {
	case codeECS42:
		return encoded(dlms.LoadSwitchRequest(c.invokeID(), dlms.ScriptCloseLoadSwitch).MarshalBinary())
	case codeECS43:
		return encoded(dlms.LoadSwitchRequest(c.invokeID(), dlms.ScriptOpenLoadSwitch).MarshalBinary())
	case codeECS44:
		return encoded(dlms.LoadSwitchRequest(c.invokeID(), dlms.ScriptArmLoadSwitch).MarshalBinary())
	case codeECS45:
		return encoded(dlms.LoadSwitchStatusRequest(c.invokeID()).MarshalBinary())
	case codeGCS32:
		return change(gbz.SupplyOff)
	case codeGCS39:
		return change(gbz.SupplyArmed)
	case codeGCS33:
		return encoded(gbz.NewReadValveStatus().Marshal())
	}
	return nil, fmt.Errorf("%w: message code 0x%04X is not a supply-switch use case", ErrBadRequest, c.code)
}

// utc is t as a ZigBee UTCTime, or 0 (unspecified) outside its range.
func utc(t time.Time) gbz.UTC {
	u, err := gbz.NewUTC(t)
	if err != nil {
		return 0
	}
	return u
}

// serviceRequests maps the supported service reference variants to the
// GBCS use cases that serve them and their payload builders.
var serviceRequests = map[string]srBuilder{
	"7.1": {elec: codeECS42, payload: supplyPayload},
	"7.2": {elec: codeECS43, gas: codeGCS32, payload: supplyPayload},
	"7.3": {elec: codeECS44, gas: codeGCS39, payload: supplyPayload},
	"7.4": {elec: codeECS45, gas: codeGCS33, payload: supplyPayload},
	"4.1.1": {elec: codeECS17b, gas: codeGCS13a, payload: func(c payloadContext, p json.RawMessage) ([]byte, error) {
		if err := noParams(p); err != nil {
			return nil, err
		}
		if c.code == codeECS17b {
			return encoded(dlms.ImportEnergyRequest(c.invokeID(), c.protection()).MarshalBinary())
		}
		return oursPayload(c, p)
	}},
	"4.18": {elec: codeECS82, gas: codeGCS60, payload: oursPayload},
	"4.8.1": {elec: codeECS22b, gas: codeGCS17, payload: func(c payloadContext, p json.RawMessage) ([]byte, error) {
		var q struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		}
		if err := strictJSON(p, &q); err != nil {
			return nil, err
		}
		if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
			return nil, fmt.Errorf("%w: parameters: want from before to, both RFC 3339 times", ErrBadRequest)
		}
		if c.code != codeECS22b {
			return oursPayload(c, p)
		}
		from, err := dlms.NewDateTime(q.From.UTC())
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: from: %w", ErrBadRequest, err)
		}
		to, err := dlms.NewDateTime(q.To.UTC())
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: to: %w", ErrBadRequest, err)
		}
		return encoded(dlms.HalfHourProfileRequest(c.invokeID(), from, to, c.protection()).MarshalBinary())
	}},
	"4.17":  {elec: codeECS66, gas: codeGCS61, payload: oursPayload},
	"1.1.1": {elec: codeECS01a, gas: codeGCS01a, payload: tariffPayload},
	"1.5": {elec: codeECS04b, payload: func(c payloadContext, p json.RawMessage) ([]byte, error) {
		if err := noParams(p); err != nil {
			return nil, err
		}
		return encoded(dlms.ResetBalanceRequest(c.invokeID()).MarshalBinary())
	}},
	// The device re-key (decision 017): the same CS02 use case on either
	// fuel's meter.
	refIssueCredentials:  {elec: uint16(codeCS02c), gas: uint16(codeCS02c), payload: issueCredentialsPayload},
	refUpdateDeviceCerts: {elec: uint16(codeCS02d), gas: uint16(codeCS02d), payload: updateDeviceCertsPayload},
	refRetrieveDevice:    {elec: uint16(codeCS02e), gas: uint16(codeCS02e), payload: issueCredentialsPayload},
}

// SupportedServiceRequests lists the service reference variants
// BuildServiceRequest supports, sorted.
func SupportedServiceRequests() []string {
	var out []string
	for k := range serviceRequests {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// BuildServiceRequest turns a service request into the command the caller
// signs (critical) or submits as it is: addressed from the caller (or, for
// an other user, from the access control broker with the caller as unknown
// remote party), with an originator counter the counter stage will accept
// (spec section 7): a given counter it would refuse is refused here with
// the same error. The caller's role must be eligible for the request;
// ownership and the rest are checked when the command is submitted.
func (r *Router) BuildServiceRequest(ctx context.Context, caller Caller, in ServiceRequestInput) (PreCommand, error) {
	s := &submission{caller: caller}
	if err := r.authenticate(ctx, s); err != nil {
		return PreCommand{}, err
	}
	b, ok := serviceRequests[in.Ref]
	if !ok && in.Ref == refChangeSupply {
		return PreCommand{}, fmt.Errorf("%w: service request 6.23 (change of supplier) is made with POST /v1/changes-of-supplier: the DCC's TCoS signs its command", ErrBadRequest)
	}
	if !ok {
		return PreCommand{}, fmt.Errorf("%w: service request %q is not supported (supported: %s)", ErrBadRequest, in.Ref, strings.Join(SupportedServiceRequests(), ", "))
	}
	if in.Target.IsZero() {
		return PreCommand{}, fmt.Errorf("%w: target device is required", ErrBadRequest)
	}
	code := b.elec
	switch in.Fuel {
	case "", "electricity":
	case "gas":
		code = b.gas
	default:
		return PreCommand{}, fmt.Errorf("%w: fuel %q (want electricity or gas)", ErrBadRequest, in.Fuel)
	}
	if code == 0 {
		return PreCommand{}, fmt.Errorf("%w: service request %s has no %s use case", ErrBadRequest, in.Ref, in.Fuel)
	}
	srs, err := r.cfg.Catalogue.Lookup(commands.MessageCode(code))
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: %w", ErrNotEligible, err)
	}
	i := slices.IndexFunc(srs, func(sr ServiceRequest) bool { return sr.Ref == in.Ref })
	if i < 0 {
		return PreCommand{}, fmt.Errorf("%w: message code 0x%04X does not serve %s", ErrBadRequest, code, in.Ref)
	}
	sr := srs[i]
	if !slices.Contains(sr.Roles, caller.Role) {
		return PreCommand{}, fmt.Errorf("%w: role %s may not send service request %s", ErrNotEligible, caller.Role, sr.Ref)
	}
	originator := caller.EUI
	if caller.Role == smki.UserOther {
		originator = r.cfg.ACB
	}
	// The counter, given or picked, must be one the pipeline will accept
	// (spec section 7): a command built with any other could only be
	// refused when submitted.
	last, known, err := r.cfg.Ledger.LastCounter(ctx, originator, in.Target)
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
	}
	now := r.now()
	counter := in.Counter
	if counter == 0 {
		counter = pickCounter(last, known, now)
	}
	if err := checkCounter(originator, in.Target, last, known, counter, now); err != nil {
		return PreCommand{}, err
	}
	payload, err := b.payload(payloadContext{code: code, counter: counter, user: caller.EUI, target: in.Target, now: now}, in.Parameters)
	if err != nil {
		if KindOf(err) == ErrUnavailable {
			err = fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return PreCommand{}, err
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: originator, Recipient: in.Target,
		Code: commands.MessageCode(code), Payload: payload}
	if caller.Role == smki.UserOther {
		// Refused now rather than when submitted: the consented data
		// period (period.go).
		if err := checkDataPeriod(m, now); err != nil {
			return PreCommand{}, err
		}
		m.URP = &commands.UnknownRemoteParty{EUI: caller.EUI, Counter: counter}
		if u, _ := commands.LookupCode(commands.MessageCode(code)); u.Sensitive {
			// The device encrypts the response to this certificate's key,
			// so that the other user alone reads it (spec section 8).
			der, err := r.cfg.Certificates.KeyAgreementCertificate(ctx, caller.EUI, smki.RoleOther)
			if err != nil {
				return PreCommand{}, fmt.Errorf("%w: key-agreement certificate of %s: %w", ErrCertPath, caller.EUI, err)
			}
			m.URP.KACertificate = der
		}
	}
	raw, err := m.Marshal()
	if err != nil {
		return PreCommand{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return PreCommand{Message: hex.EncodeToString(raw), Code: m.Code.String(), Ref: sr.Ref, Critical: sr.Critical,
		Counter: counter, Target: in.Target}, nil
}
