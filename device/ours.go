package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

// This file executes the use cases whose payload layout gbcs-payloads.md
// leaves open: ECS66 and ECS82 in the DLMS grammar (commands/dlms ours.go),
// GCS01a, GCS13a, GCS17, GCS36, GCS60 and GCS61 in the GBZ grammar
// (commands/gbz ours.go). The grammar is GB's; the choice of COSEM objects
// and ZCL commands is the codec packages' "our layout".

// dailyLogDays is how far back the daily consumption log reaches: 731 days
// (our choice).
const dailyLogDays = 731

// addOurUseCases adds the use cases of this file to the meter's catalogue.
func addOurUseCases(ucs map[uint16]*useCase) {
	ucs[CodeECS66] = &useCase{name: "ECS66", kind: Electricity, roles: readersAll, exec: (*Meter).execDailyLog, dlms: true}  // SR 4.17: IS, GS, ED, GT, OU
	ucs[CodeECS82] = &useCase{name: "ECS82", kind: Electricity, roles: supplierOnly, exec: (*Meter).execBalance, dlms: true} // SR 4.18: IS, GS
	ucs[CodeGCS01a] = &useCase{name: "GCS01a", kind: Gas, roles: supplierOnly, exec: (*Meter).execGasTariff}                 // SR 1.1.1
	ucs[CodeGCS13a] = &useCase{name: "GCS13a", kind: Gas, roles: supplierNO, exec: (*Meter).execGasRegister}                 // SR 4.1.1
	ucs[CodeGCS17] = &useCase{name: "GCS17", kind: Gas, roles: readersAll, exec: (*Meter).execGasProfile}                    // SR 4.8.1
	ucs[CodeGCS36] = &useCase{name: "GCS36", kind: Gas, roles: otherOnly, exec: (*Meter).execGasCIN}                         // SR 9.1
	ucs[CodeGCS60] = &useCase{name: "GCS60", kind: Gas, roles: supplierOnly, exec: (*Meter).execGasBalance}                  // SR 4.18
	ucs[CodeGCS61] = &useCase{name: "GCS61", kind: Gas, roles: readersAll, exec: (*Meter).execGasProfile}                    // SR 4.17
}

// execDailyLog is ECS66: the completed UTC days of the 731-day log whose
// start lies in the requested range, from and to included, as records of
// the day start (seconds since 2000) and the energy in Wh, encrypted. A range
// that names no instant is answered with action result other-reason.
func (m *Meter) execDailyLog(ctx context.Context, x *exchange) ([]byte, error) {
	q, v, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	o := v.(dlms.ProtectedAttributesRequest).Objects[0]
	from, to, ok := dateRange(o.From, o.To)
	if !ok {
		return encodeAPDU(x.uc.name, dlms.NewActionResponse(q.InvokeID, resultOtherReason))
	}
	var l dlms.DailyConsumptionLog
	for _, d := range m.model.days(x.now, from, to, dailyLogDays) {
		l.Days = append(l.Days, dlms.DailyConsumption{Start: since2000(d.start), Wh: d.wh})
	}
	return m.protectedResponse(ctx, x, q.InvokeID, l.Data())
}

// execBalance is ECS82: the meter balance as current_credit_amount, in
// thousandths of a penny, clamped to what a double-long holds.
func (m *Meter) execBalance(_ context.Context, x *exchange) ([]byte, error) {
	q, _, err := readRequest(x)
	if err != nil {
		return nil, err
	}
	return encodeAPDU(x.uc.name, dlms.MeterBalanceResponse(q.InvokeID, clampInt32(m.balance), resultSuccess))
}

func clampInt32(v int64) int32 { return int32(max(-1<<31, min(v, 1<<31-1))) }

// execGasTariff is GCS01a: the meter stores the typed gas tariff. Its start
// time decides when it takes effect, as ECS01a's activation time does: now
// (0, or a time already past) at once; a future time schedules it, and at
// that time the meter raises one GBZ future-dated outcome alert (0x00CD) per
// command component; StartNever cancels the waiting tariff. The response is
// one Default Response, status success, per component.
func (m *Meter) execGasTariff(_ context.Context, x *exchange) ([]byte, error) {
	p, v, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	t := v.(*gbz.GasTariff)
	set := &Tariff{Gas: t, Originator: x.msg.Originator, Counter: x.msg.Counter, raw: x.msg.Payload}
	ok := gbz.StatusSuccess
	switch start := t.Information.StartTime; {
	case start == gbz.StartNever:
		m.cancelScheduled(func(s *scheduled) bool { return s.tariff != nil })
	case start == gbz.StartNow || !start.Time().After(x.now):
		set.ActivatedAt = x.now
		m.tariff = set.own()
	default:
		set.ActivatedAt = start.Time()
		m.cancelScheduled(func(s *scheduled) bool { return s.tariff != nil })
		m.schedule(&scheduled{at: set.ActivatedAt, code: x.code, originator: x.msg.Originator, counter: x.msg.Counter,
			tariff: set.own(), components: components(p)})
	}
	return encodeResponse(x.uc.name, gbz.NewGasTariffResponse(ok, ok, ok))
}

// components returns the cluster and ZCL header of each of p's components,
// for outcome alerts.
func components(p *gbz.Payload) []gbz.Component {
	out := make([]gbz.Component, len(p.Components))
	for i, c := range p.Components {
		out[i] = gbz.Component{Cluster: c.Cluster, ZCL: c.ZCL}
	}
	return out
}

// activateGasTariff puts a future-dated GCS01a tariff in force and raises
// one GBZ future-dated outcome alert (0x00CD, alert code 8F66) per command
// component.
func (m *Meter) activateGasTariff(ctx context.Context, s *scheduled) error {
	m.tariff = s.tariff
	var errs []error
	for _, c := range s.components {
		errs = append(errs, m.raiseAlert(ctx, CodeFutureDatedGBZ, s.originator, func(*commands.Message) ([]byte, error) {
			return gbzFutureDatedAlert(uint16(asn.AlertFutureDatedSuccess), s.at, gbz.FutureDated{MessageCode: s.code,
				OriginatorCounter: s.counter, Cluster: c.Cluster, FrameControl: c.ZCL.FrameControl, Command: c.ZCL.Command})
		}))
	}
	return errors.Join(errs...)
}

// encodeResponse encodes a GBZ response payload the meter built as the
// codec laid it out (sequence numbers included).
func encodeResponse(name string, p *gbz.Payload) ([]byte, error) {
	b, err := p.Marshal()
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s response: %w", name, err)}
	}
	return b, nil
}

// sealGBZ encodes the ZCL plaintext pt of a sensitive GSME response and
// returns its ciphered block.
func (m *Meter) sealGBZ(ctx context.Context, x *exchange, pt interface{ AppendBinary([]byte) ([]byte, error) }) (gbz.Hex, error) {
	b, err := pt.AppendBinary(nil)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("encoding the %s plaintext: %w", x.uc.name, err)}
	}
	return x.seal(ctx, m, b)
}

// gbzTime returns t as a ZigBee UTCTime, or 0 when it lies outside the
// range.
func gbzTime(t time.Time) gbz.UTC {
	u, err := gbz.NewUTC(t)
	if err != nil {
		return 0
	}
	return u
}

// execGasRegister is GCS13a: a Publish Snapshot of the consumption register
// now, in Wh, encrypted.
func (m *Meter) execGasRegister(ctx context.Context, x *exchange) ([]byte, error) {
	p, _, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	snap := gbz.NewRegisterSnapshot(gbz.RegisterReading{Time: gbzTime(x.now), Wh: m.model.registerAt(x.now)})
	block, err := m.sealGBZ(ctx, x, snap)
	if err != nil {
		return nil, err
	}
	return encodeGBZ(x.uc.name, gbz.NewConsumptionRegisterResponse(block), p.Components[0].ZCL.Sequence)
}

// execGasProfile is GCS17 (half-hour intervals of the 13-month log) and
// GCS61 (days of the 731-day log): the Get Profile Response of the Periods
// intervals ending at EndTime (0: the last completed one), oldest first,
// in Wh, encrypted. A channel other than consumption delivered, or a window
// with no interval in the log, is answered with the Get Profile Response's
// own status and no intervals.
func (m *Meter) execGasProfile(ctx context.Context, x *exchange) ([]byte, error) {
	p, v, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	q := v.(*gbz.GetProfile)
	resp, err := m.gasProfile(x, q)
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("%s plaintext: %w", x.uc.name, err)}
	}
	block, err := m.sealGBZ(ctx, x, resp)
	if err != nil {
		return nil, err
	}
	return encodeGBZ(x.uc.name, gbz.NewProfileResponse(block), p.Components[0].ZCL.Sequence)
}

func (m *Meter) gasProfile(x *exchange, q *gbz.GetProfile) (*gbz.GetProfileResponse, error) {
	daily := x.code == CodeGCS61
	period, step := gbz.Period30Minutes, SlotDuration
	if daily {
		period, step = gbz.PeriodDaily, 24*time.Hour
	}
	fail := func(s gbz.ProfileStatus) (*gbz.GetProfileResponse, error) {
		return &gbz.GetProfileResponse{EndTime: q.EndTime, Status: s, Period: period, Intervals: []uint32{}}, nil
	}
	if q.Channel != gbz.ChannelConsumptionDelivered {
		return fail(gbz.ProfileUndefinedChannel)
	}
	end := x.now.Truncate(step)
	if q.EndTime != 0 {
		if e := q.EndTime.Time().Truncate(step); e.Before(end) {
			end = e
		}
	}
	start := end.Add(-time.Duration(q.Periods) * step)
	if daily {
		days := m.model.days(x.now, start, end.Add(-step), dailyLogDays)
		if len(days) == 0 {
			return fail(gbz.ProfileNoIntervalsAvailable)
		}
		l := gbz.DailyLog{}
		for _, d := range days {
			l.Days = append(l.Days, gbz.DayConsumption{Start: gbzTime(d.start), Wh: d.wh})
		}
		return gbz.NewDailyLogPlaintext(l)
	}
	log := m.model.profile(x.now, start, end)
	if len(log.Values) == 0 {
		return fail(gbz.ProfileNoIntervalsAvailable)
	}
	return gbz.NewProfilePlaintext(gbzTime(log.Start), log.Values)
}

// execGasCIN is GCS36: the Update CIN command's CIN, which the meter
// displays; the response is a Default Response, status success, or
// failure for a CIN the meter cannot display (see validCIN).
func (m *Meter) execGasCIN(_ context.Context, x *exchange) ([]byte, error) {
	p, v, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	st := gbz.StatusSuccess
	if cin := []byte(v.(*gbz.UpdateCIN).CIN); validCIN(cin) {
		m.cin = bytes.Clone(cin)
	} else {
		st = gbz.StatusFailure
	}
	return encodeGBZ(x.uc.name, gbz.NewUpdateCINResponse(st), p.Components[0].ZCL.Sequence)
}

// execGasBalance is GCS60: the prepayment cluster's Credit Remaining, the
// meter balance in thousandths of a penny.
func (m *Meter) execGasBalance(_ context.Context, x *exchange) ([]byte, error) {
	p, _, err := readGBZ(x)
	if err != nil {
		return nil, err
	}
	credit := clampInt32(m.balance)
	resp, err := gbz.NewMeterBalanceResponse(gbz.MeterBalance{Credit: &credit, Status: gbz.StatusSuccess})
	if err != nil {
		return nil, &DiscardError{Reason: ReasonInternal, Err: fmt.Errorf("GCS60 response: %w", err)}
	}
	return encodeGBZ(x.uc.name, resp, p.Components[0].ZCL.Sequence)
}
