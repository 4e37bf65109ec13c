package device

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/metertrust/metertrust/commands/dlms"
)

// This file executes the ESME use cases, whose payloads are DLMS COSEM
// APDUs (gbcs-payloads.md 4): the command is an ACCESS-Request the codec
// package reads with the use case's typed reader (dlms.Describe), and the
// response an ACCESS-Response that repeats the command's invoke id.

// firmwareVersion is what ECS52 reports: the reference meter's firmware,
// version 1.0.0.0, as the octet-string(4) GB meters answer.
var firmwareVersion = []byte{1, 0, 0, 0}

// maxProfileRecords is the most half-hour records one ECS22b response
// carries: 168 days, whose ciphered block stays within the 65,535 bytes a
// DLMS octet-string holds (gbcs-payloads.md 4.2). A longer range is refused
// with action result other-reason; the caller asks again in parts.
const maxProfileRecords = 168 * slotsPerDay

// Results the meter reports (gbcs-payloads.md 4.1).
const (
	resultSuccess     = 0
	resultOtherReason = 250
)

// readRequest reads the command's payload as the ACCESS-Request of its use
// case and returns the request with the typed value the codec's reader
// gives. A payload that is not one is malformed, with the reader's error.
func readRequest(x *exchange) (*dlms.AccessRequest, any, error) {
	a, err := dlms.Parse(x.msg.Payload)
	if err != nil {
		return nil, nil, malformed(x.uc.name, err)
	}
	if a.AccessRequest == nil {
		return nil, nil, malformed(x.uc.name, fmt.Errorf("a DLMS %s, want an access-request", a.Kind()))
	}
	d, err := dlms.Describe(x.code, a)
	if err != nil {
		return nil, nil, malformed(x.uc.name, err)
	}
	return a.AccessRequest, d.Value, nil
}

// encodeAPDU encodes a response APDU built by the meter; a failure is the
// meter's own fault.
func encodeAPDU(name string, s *dlms.AccessResponse) ([]byte, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s response: %w", name, err)}
	}
	return b, nil
}

// execTariff is ECS01a (gbcs-payloads.md 4.5): the meter stores the typed
// tariff of the 21 set specifications. The activation time decides when it
// takes effect: now (or a time already past) at once; a future time
// schedules it, replacing any tariff already waiting, and at that time the
// meter raises one future-dated outcome alert (0x00CC) per activated
// object; never cancels the waiting tariff. A time that names no instant is
// answered with result other-reason on every specification and changes
// nothing.
func (m *Meter) execTariff(ctx context.Context, x *exchange) ([]byte, error) {
	q, v, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	t := v.(dlms.Tariff)
	results := make([]dlms.DataAccessResult, dlms.TariffSpecCount)
	set := &Tariff{Electricity: &t, Originator: x.msg.Originator, Counter: x.msg.Counter, raw: x.msg.Payload}
	switch act := t.Activation; {
	case act.IsNever():
		m.cancelScheduled(func(s *scheduled) bool { return s.tariff != nil })
	case act.IsNow():
		set.ActivatedAt = x.now
		m.tariff = set.own()
	default:
		at, err := act.Time()
		if err != nil {
			for i := range results {
				results[i] = resultOtherReason
			}
			return encodeAPDU(x.uc.name, dlms.NewSetResponse(q.InvokeID, results...))
		}
		set.ActivatedAt = at
		if !at.After(x.now) {
			m.tariff = set.own()
			break
		}
		m.cancelScheduled(func(s *scheduled) bool { return s.tariff != nil })
		m.schedule(&scheduled{at: at, code: x.code, originator: x.msg.Originator, counter: x.msg.Counter,
			tariff: set.own(), activations: slices.Clone(q.Specs[15:dlms.TariffSpecCount])})
	}
	return encodeAPDU(x.uc.name, dlms.NewSetResponse(q.InvokeID, results...))
}

// execResetBalance is ECS04b (4.5): the three credit objects are set to
// zero, which the meter holds as one balance.
func (m *Meter) execResetBalance(_ context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	m.balance = 0
	return encodeAPDU(x.uc.name, dlms.NewActionResponse(q.InvokeID, resultSuccess, resultSuccess, resultSuccess))
}

// protectedResponse encrypts the plaintext Data v into the response's
// ciphered block and returns the answer to a Get Protected Attributes
// action (4.4): the protection parameters name the meter, the header
// recipient and the header counter (2.4).
func (m *Meter) protectedResponse(ctx context.Context, x *exchange, invokeID uint32, v dlms.Data) ([]byte, error) {
	pt, err := v.AppendBinary(nil)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s plaintext: %w", x.uc.name, err)}
	}
	block, err := x.seal(ctx, m, pt)
	if err != nil {
		return nil, err
	}
	pp := dlms.NewProtectionParameters(x.out.Counter, x.out.Originator, x.out.Recipient)
	return encodeAPDU(x.uc.name, dlms.NewProtectedResponse(invokeID, dlms.ProtectedResult{Protection: pp, Ciphered: block}))
}

// execImportEnergy is ECS17b (4.5): the active import register in Wh, and
// a reactive import register the model does not keep (0 varh), encrypted.
func (m *Meter) execImportEnergy(ctx context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	e := dlms.ImportEnergy{
		ActiveImport:   dlms.Register{Value: clamp32(m.model.registerAt(x.now)), Unit: 30},
		ReactiveImport: dlms.Register{Unit: 32},
	}
	return m.protectedResponse(ctx, x, q.InvokeID, e.Data())
}

// execHalfHourProfile is ECS22b (4.5): the half hours of the 13-month log
// whose start lies in the requested range, from and to included, as records
// of the slot start (seconds since 2000) and the energy in Wh, encrypted. A
// range that names no instant, or spans more than maxProfileRecords half
// hours, is answered with action result other-reason.
func (m *Meter) execHalfHourProfile(ctx context.Context, x *exchange) ([]byte, error) {
	q, v, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	o := v.(dlms.ProtectedAttributesRequest).Objects[0]
	from, to, ok := dateRange(o.From, o.To)
	if !ok || to.Sub(from) >= maxProfileRecords*SlotDuration {
		return encodeAPDU(x.uc.name, dlms.NewActionResponse(q.InvokeID, resultOtherReason))
	}
	log := m.model.profile(x.now, from, to.Add(time.Second))
	var p dlms.HalfHourProfile
	for i, wh := range log.Values {
		at := log.Start.Add(time.Duration(i) * SlotDuration)
		p.Records = append(p.Records, dlms.ProfileRecord{Time: since2000(at), Value: wh})
	}
	return m.protectedResponse(ctx, x, q.InvokeID, p.Data())
}

// dateRange reads a restriction by date: both ends name instants no
// earlier than 2000, the first not after the second.
func dateRange(from, to dlms.DateTime) (time.Time, time.Time, bool) {
	f, err1 := from.Time()
	t, err2 := to.Time()
	if err1 != nil || err2 != nil || f.Before(dlms.Epoch2000) || t.Before(f) {
		return time.Time{}, time.Time{}, false
	}
	return f, t, true
}

// since2000 returns t as the seconds since 2000-01-01 UTC of DLMS profile
// records, clamped to what 32 bits hold.
func since2000(t time.Time) uint32 {
	s := t.Sub(dlms.Epoch2000) / time.Second
	return uint32(max(0, min(s, math.MaxUint32)))
}

func clamp32(v uint64) uint32 { return uint32(min(v, math.MaxUint32)) }

// loadSwitchActions maps the ECS42, ECS43 and ECS44 message codes to what
// their script (4.5) does to the switch.
var loadSwitchActions = map[uint16]supplyAction{
	CodeECS42: supplyEnable,
	CodeECS43: supplyDisable,
	CodeECS44: supplyArm,
}

// execLoadSwitch is ECS42, ECS43 and ECS44 (4.5): the script-table execute
// with the script id of the message code (the codec refuses another), which
// drives the supply switch. An action the switch refuses (arming a closed
// switch) is answered with action result other-reason.
func (m *Meter) execLoadSwitch(_ context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	res := dlms.ActionResult(resultSuccess)
	if !m.switchSupply(loadSwitchActions[x.code]) {
		res = resultOtherReason
	}
	return encodeAPDU(x.uc.name, dlms.NewActionResponse(q.InvokeID, res))
}

// execLoadSwitchStatus is ECS45 (4.5): the control_state enum of the
// disconnect control, whose values are those of SupplyState.
func (m *Meter) execLoadSwitchStatus(_ context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	return encodeAPDU(x.uc.name, dlms.NewGetResponse(q.InvokeID, dlms.Enum(uint8(m.supply)), resultSuccess))
}

// maxCINBytes bounds the CIN a meter displays.
const maxCINBytes = 16

// execCIN is ECS50 (4.5): the CIN octet-string, which the meter displays.
// GB CINs are ASCII digits; a CIN that is empty, longer than 16 bytes or
// not all digits is refused with set result other-reason and changes
// nothing.
func (m *Meter) execCIN(_ context.Context, x *exchange) ([]byte, error) {
	q, v, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	res := dlms.DataAccessResult(resultSuccess)
	if cin := []byte(v.(dlms.HexBytes)); validCIN(cin) {
		m.cin = bytes.Clone(cin)
	} else {
		res = resultOtherReason
	}
	return encodeAPDU(x.uc.name, dlms.NewSetResponse(q.InvokeID, res))
}

func validCIN(cin []byte) bool {
	if len(cin) == 0 || len(cin) > maxCINBytes {
		return false
	}
	for _, c := range cin {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// execFirmwareVersion is ECS52 (4.5): the firmware version octet-string(4).
func (m *Meter) execFirmwareVersion(_ context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	return encodeAPDU(x.uc.name, dlms.NewGetResponse(q.InvokeID, dlms.OctetString(firmwareVersion), resultSuccess))
}
