package device

import (
	"context"
)

// execute runs an authenticated, authorised command against the meter's
// state and returns the plaintext response payload. A payload that does not
// decode discards the command as malformed (its counter is still spent).
func (m *Meter) execute(ctx context.Context, cmd *command) ([]byte, error) {
	code := uint16(cmd.msg.Code)
	p := cmd.msg.Payload
	bad := func(err error) error { return &DiscardError{Reason: ReasonMalformed, Err: err} }
	now := m.env.now()
	switch cmd.uc.op {
	case opSupplyEnable, opSupplyDisable, opSupplyArm, opSupplyStatus:
		id, err := DecodeSupplyCommand(code, p)
		if err != nil {
			return nil, bad(err)
		}
		return EncodeSupplyResponse(m.switchSupply(cmd.uc.op, id)), nil
	case opBalanceReset:
		id, err := DecodeBalanceReset(p)
		if err != nil {
			return nil, bad(err)
		}
		m.balance = 0
		return EncodeBalanceResetResponse(id, true), nil
	case opBalanceRead:
		if err := DecodeReadRequest(p); err != nil {
			return nil, bad(err)
		}
		return EncodeBalance(Balance{MilliPence: m.balance}), nil
	case opRegisters:
		if err := DecodeReadRequest(p); err != nil {
			return nil, bad(err)
		}
		return EncodeRegisterReading(RegisterReading{At: now.UTC().Truncate(1e9), ImportWh: m.model.registerAt(now)}), nil
	case opProfile:
		q, err := DecodeProfileRequest(p)
		if err != nil {
			return nil, bad(err)
		}
		out, err := EncodeProfileLog(m.model.profile(now, q.From, q.To))
		if err != nil {
			return nil, bad(err)
		}
		return out, nil
	case opDailyLog:
		days, err := DecodeDailyLogRequest(p)
		if err != nil {
			return nil, bad(err)
		}
		out, err := EncodeDailyLog(m.model.dailyLog(now, days))
		if err != nil {
			return nil, bad(err)
		}
		return out, nil
	case opTariff:
		t, err := DecodeTariff(p)
		if err != nil {
			return nil, bad(err)
		}
		m.tariff = &t
		return EncodeStatus(StatusOK), nil
	case opCIN:
		cin, err := DecodeCIN(p)
		if err != nil {
			return nil, bad(err)
		}
		m.cin, m.hasCIN = cin, true
		return EncodeStatus(StatusOK), nil
	case opCredentialsList, opCredentialsUpdate, opRekey, opInstallCert:
		return m.executeCredentials(ctx, cmd)
	}
	return nil, discard(ReasonUnsupported, "use case %s has no executor", cmd.uc.name)
}

// switchSupply runs the supply-switch state machine. Disable opens the
// switch from any state; enable (ESME only) closes it from any state; arm
// moves a disabled switch to armed (the consumer's button then closes it)
// and leaves an armed one armed, but is refused on a closed switch; a status
// read changes nothing.
func (m *Meter) switchSupply(o op, invokeID uint32) SupplyResponse {
	r := SupplyResponse{InvokeID: invokeID, OK: true}
	switch o {
	case opSupplyEnable:
		m.supply = SupplyEnabled
	case opSupplyDisable:
		m.supply = SupplyDisabled
	case opSupplyArm:
		if m.supply == SupplyEnabled {
			r.OK = false
		} else {
			m.supply = SupplyArmed
		}
	case opSupplyStatus:
		r.Status = true
	}
	r.State = m.supply
	return r
}
