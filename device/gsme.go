package device

import (
	"context"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/gbz"
)

// This file executes the GSME use cases: the GBZ (ZigBee) valve use cases
// GCS32, GCS39 and GCS33 (gbcs-payloads.md 5.3), read and built with
// package gbz, and GCS28, whose payload is ASN.1 (3.6, 5.3).

// batteryLifeDays is the remaining battery life GCS33 reports: the model
// keeps no battery, so a fixed ten years.
const batteryLifeDays = 3650

// readGBZ reads the command's payload as its GSME use case's GBZ command
// and returns the payload with the typed value of gbz.Describe.
func readGBZ(x *exchange) (*gbz.Payload, any, error) {
	p, err := gbz.Parse(x.msg.Payload)
	if err != nil {
		return nil, nil, malformed(x.uc.name, err)
	}
	u, err := gbz.Describe(x.code, p)
	if err != nil {
		return nil, nil, malformed(x.uc.name, err)
	}
	if u.Message != "command" {
		return nil, nil, malformed(x.uc.name, fmt.Errorf("a %s %s, want the command", u.Name, u.Message))
	}
	return p, u.Value, nil
}

// encodeGBZ encodes a response payload the meter built, answering command
// component 0 with sequence number seq (gbcs-payloads.md 5.1).
func encodeGBZ(name string, p *gbz.Payload, seq uint8) ([]byte, error) {
	for i := range p.Components {
		p.Components[i].ZCL.Sequence = seq
	}
	b, err := p.Marshal()
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s response: %w", name, err)}
	}
	return b, nil
}

// gbzSupply returns the ZCL supply status of a switch state.
func gbzSupply(s SupplyState) gbz.SupplyStatus {
	switch s {
	case SupplyDisabled:
		return gbz.SupplyOff
	case SupplyArmed:
		return gbz.SupplyArmed
	}
	return gbz.SupplyOn
}

// valveChange is a GCS32 or GCS39 Change Supply waiting for its
// implementation date-time.
type valveChange struct {
	action  supplyAction
	command gbz.Component // the command component's cluster and ZCL header, for the outcome alert
}

// execValve is GCS32 (close the valve) and GCS39 (arm it) (5.3): the Change
// Supply command drives the valve. The success response is the Supply
// Status Response, which repeats the provider and issuer event ids and
// reports the valve's status; a change the valve refuses (arming an open
// valve) is answered with a Default Response, status failure.
//
// An implementation date-time in the future makes the command future-dated:
// the meter answers with the Supply Status Response of the valve as it is,
// naming that time, executes the change then, and raises the GBZ
// future-dated outcome alert (0x00CD) with alert code 8F66 (done) or 8F67
// (refused).
func (m *Meter) execValve(_ context.Context, x *exchange) ([]byte, error) {
	p, v, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	cs := v.(*gbz.ChangeSupply)
	comp := p.Components[0]
	action := supplyDisable
	if x.code == CodeGCS39 {
		action = supplyArm
	}
	resp := gbz.SupplyStatusResponse{ProviderID: cs.ProviderID, IssuerEventID: cs.IssuerEventID}
	if at := cs.ImplementationDateTime; at != 0 && at.Time().After(x.now) {
		m.schedule(&scheduled{at: at.Time(), code: x.code, originator: x.msg.Originator, counter: x.msg.Counter,
			valve: &valveChange{action: action, command: gbz.Component{Cluster: comp.Cluster, ZCL: comp.ZCL}}})
		resp.ImplementationDateTime, resp.SupplyStatus = at, gbzSupply(m.supply)
		return encodeGBZ(x.uc.name, gbz.NewSupplyStatusResponse(resp), comp.ZCL.Sequence)
	}
	if !m.switchSupply(action) {
		return encodeGBZ(x.uc.name, gbz.NewDefaultResponse(gbz.ClusterMetering, gbz.CmdChangeSupply, gbz.StatusFailure), comp.ZCL.Sequence)
	}
	resp.SupplyStatus = gbzSupply(m.supply)
	return encodeGBZ(x.uc.name, gbz.NewSupplyStatusResponse(resp), comp.ZCL.Sequence)
}

// executeValve runs a future-dated Change Supply and raises its outcome
// alert (0x00CD, gbcs-payloads.md 6.3), stamped with the implementation
// time, to the command's originator.
func (m *Meter) executeValve(ctx context.Context, s *scheduled) error {
	alertCode := uint16(asn.AlertFutureDatedSuccess)
	if !m.switchSupply(s.valve.action) {
		alertCode = uint16(asn.AlertFutureDatedFailure)
	}
	c := s.valve.command
	return m.raiseAlert(ctx, CodeFutureDatedGBZ, s.originator, func(*commands.Message) ([]byte, error) {
		return gbzFutureDatedAlert(alertCode, s.at, gbz.FutureDated{MessageCode: s.code, OriginatorCounter: s.counter,
			Cluster: c.Cluster, FrameControl: c.ZCL.FrameControl, Command: c.ZCL.Command})
	})
}

// execValveStatus is GCS33 (5.3): the Read Attributes Response with the
// remaining battery life and the supply status.
func (m *Meter) execValveStatus(_ context.Context, x *exchange) ([]byte, error) {
	p, _, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	days, st := uint16(batteryLifeDays), gbzSupply(m.supply)
	resp, err := gbz.NewValveStatusResponse(gbz.ValveStatus{BatteryLifeDays: &days, SupplyStatus: &st})
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("GCS33 response: %w", err)}
	}
	return encodeGBZ(x.uc.name, resp, p.Components[0].ZCL.Sequence)
}

// execSetClock is GCS28 (3.6, 5.3): the command gives a validity interval
// for the clock; the meter, whose clock is the fleet's, reports its time
// and the status: reliable when its time lies in the interval, unreliable
// when it does not, invalid when the interval ends before it starts.
func (m *Meter) execSetClock(_ context.Context, x *exchange) ([]byte, error) {
	c, err := asn.Parse[asn.SetTimeCommand](x.msg.Payload)
	if err != nil {
		return nil, malformed(x.uc.name, err)
	}
	start, end := c.ValidityIntervalStart.Time(), c.ValidityIntervalEnd.Time()
	r := asn.SetTimeResponse{DeviceTime: asn.NewGeneralizedTime(x.now)}
	switch {
	case end.Before(start):
		r.DeviceTimeStatus = 1 // invalid
	case x.now.Before(start) || x.now.After(end):
		r.DeviceTimeStatus = 2 // unreliable
	}
	return encodeASN(x.uc.name, &r)
}

// encodeASN encodes an ASN.1 response payload the meter built.
func encodeASN(name string, p asn.Payload) ([]byte, error) {
	b, err := p.Marshal()
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s response: %w", name, err)}
	}
	return b, nil
}
