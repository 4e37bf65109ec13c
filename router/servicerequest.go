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
	"github.com/metertrust/metertrust/device"
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
	// Counter is the originator counter; zero lets the router choose one
	// above both the clock in milliseconds and the last forwarded.
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

type srBuilder struct {
	elec, gas uint16
	payload   func(code uint16, params json.RawMessage) ([]byte, error)
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

func supplyPayload(code uint16, params json.RawMessage) ([]byte, error) {
	if err := noParams(params); err != nil {
		return nil, err
	}
	return device.EncodeSupplyCommand(code)
}

// serviceRequests maps the supported service reference variants to the
// reference meter's use cases and payload encoders (package device).
var serviceRequests = map[string]srBuilder{
	"7.1": {elec: device.CodeECS42, payload: supplyPayload},
	"7.2": {elec: device.CodeECS43, gas: device.CodeGCS32, payload: supplyPayload},
	"7.3": {elec: device.CodeECS44, gas: device.CodeGCS39, payload: supplyPayload},
	"7.4": {elec: device.CodeECS45, gas: device.CodeGCS33, payload: supplyPayload},
	"4.1.1": {elec: device.CodeECS17b, gas: device.CodeGCS13a, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		if err := noParams(p); err != nil {
			return nil, err
		}
		return device.EncodeReadRequest(), nil
	}},
	"4.18": {elec: device.CodeECS82, gas: device.CodeGCS60, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		if err := noParams(p); err != nil {
			return nil, err
		}
		return device.EncodeReadRequest(), nil
	}},
	"4.8.1": {elec: device.CodeECS22b, gas: device.CodeGCS17, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		var q struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		}
		if err := strictJSON(p, &q); err != nil {
			return nil, err
		}
		return device.EncodeProfileRequest(device.ProfileRequest{From: q.From, To: q.To})
	}},
	"4.17": {elec: device.CodeECS66, gas: device.CodeGCS61, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		var q struct {
			Days int `json:"days"`
		}
		if err := strictJSON(p, &q); err != nil {
			return nil, err
		}
		return device.EncodeDailyLogRequest(q.Days)
	}},
	"1.1.1": {elec: device.CodeECS01a, gas: device.CodeGCS01a, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		var q struct {
			StandingChargeMilliPence uint32 `json:"standingChargeMilliPence"`
			Rates                    []struct {
				FromSlot        uint8  `json:"fromSlot"`
				PriceMilliPence uint32 `json:"priceMilliPence"`
			} `json:"rates"`
		}
		if err := strictJSON(p, &q); err != nil {
			return nil, err
		}
		t := device.Tariff{StandingChargeMilliPence: q.StandingChargeMilliPence}
		for _, r := range q.Rates {
			t.Rates = append(t.Rates, device.TariffRate{FromSlot: r.FromSlot, PriceMilliPence: r.PriceMilliPence})
		}
		return device.EncodeTariff(t)
	}},
	"1.5": {elec: device.CodeECS04b, payload: func(_ uint16, p json.RawMessage) ([]byte, error) {
		if err := noParams(p); err != nil {
			return nil, err
		}
		return device.EncodeBalanceReset(), nil
	}},
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
// remote party), with an originator counter above the last forwarded. The
// caller's role must be eligible for the request; ownership and the rest
// are checked when the command is submitted.
func (r *Router) BuildServiceRequest(ctx context.Context, caller Caller, in ServiceRequestInput) (PreCommand, error) {
	s := &submission{caller: caller}
	if err := r.authenticate(ctx, s); err != nil {
		return PreCommand{}, err
	}
	b, ok := serviceRequests[in.Ref]
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
	payload, err := b.payload(code, in.Parameters)
	if err != nil {
		if KindOf(err) == ErrUnavailable {
			err = fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return PreCommand{}, err
	}
	originator := caller.EUI
	if caller.Role == smki.UserOther {
		originator = r.cfg.ACB
	}
	counter := in.Counter
	if counter == 0 {
		last, _, err := r.cfg.Ledger.LastCounter(ctx, originator, in.Target)
		if err != nil {
			return PreCommand{}, fmt.Errorf("%w: reading counter: %w", ErrUnavailable, err)
		}
		counter = max(uint64(r.now().UnixMilli()), last+1)
	}
	m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: originator, Recipient: in.Target,
		Code: commands.MessageCode(code), Payload: payload}
	if caller.Role == smki.UserOther {
		m.URP = &commands.UnknownRemoteParty{EUI: caller.EUI, Counter: counter}
		if device.Sensitive(code) {
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
