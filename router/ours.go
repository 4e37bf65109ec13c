package router

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

// oursPayload builds the commands of the use cases whose layout the spec
// does not give (ECS66, ECS82, GCS01a, GCS13a, GCS17, GCS60, GCS61): the
// real grammar of their fuel with a choice of objects of our own, as
// packages dlms and gbz define them (docs/device.md lists them).
func oursPayload(c payloadContext, params json.RawMessage) ([]byte, error) {
	switch c.code {
	case codeECS82:
		if err := noParams(params); err != nil {
			return nil, err
		}
		return encoded(dlms.MeterBalanceRequest(c.invokeID()).MarshalBinary())
	case codeGCS60:
		if err := noParams(params); err != nil {
			return nil, err
		}
		return encoded(gbz.NewReadMeterBalance().Marshal())
	case codeGCS13a:
		if err := noParams(params); err != nil {
			return nil, err
		}
		q := gbz.GetSnapshot{EarliestStartTime: 0, LatestEndTime: 0xFFFFFFFF, Offset: 0, Cause: 1}
		return encoded(gbz.NewReadConsumptionRegister(q).Marshal())
	case codeECS66, codeGCS61:
		from, to, err := dailyLogRange(params, c.now)
		if err != nil {
			return nil, err
		}
		if c.code == codeGCS61 {
			days := uint8(to.Sub(from) / (24 * time.Hour))
			return encoded(gbz.NewReadProfile(gbz.GetProfile{Channel: gbz.ChannelConsumptionDelivered, EndTime: utc(to), Periods: days}).Marshal())
		}
		// The days whose start lies in [from, to]: to less a second ends
		// before the day starting at to.
		f, err := dlms.NewDateTime(from)
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: %w", ErrBadRequest, err)
		}
		t, err := dlms.NewDateTime(to.Add(-time.Second))
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: %w", ErrBadRequest, err)
		}
		return encoded(dlms.DailyConsumptionLogRequest(c.invokeID(), f, t, c.protection()).MarshalBinary())
	case codeGCS17:
		var q struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		}
		if err := strictJSON(params, &q); err != nil {
			return nil, err
		}
		periods := q.To.Sub(q.From) / (30 * time.Minute)
		if periods < 1 || periods > 255 {
			return nil, fmt.Errorf("%w: parameters: %d half hours asked for; a gas profile read takes 1 to 255", ErrBadRequest, periods)
		}
		return encoded(gbz.NewReadProfile(gbz.GetProfile{Channel: gbz.ChannelConsumptionDelivered, EndTime: utc(q.To), Periods: uint8(periods)}).Marshal())
	case codeGCS01a:
		var q tariffParams
		if err := strictJSON(params, &q); err != nil {
			return nil, err
		}
		if q.Tariff != nil {
			return nil, fmt.Errorf("%w: parameters: a gas tariff takes the simple form (standingChargeMilliPence, rates)", ErrBadRequest)
		}
		t, err := gasTariff(c, q)
		if err != nil {
			return nil, err
		}
		gp, err := gbz.NewGasTariff(*t)
		if err != nil {
			return nil, fmt.Errorf("%w: parameters: %w", ErrBadRequest, err)
		}
		return encoded(gp.Marshal())
	}
	return nil, fmt.Errorf("%w: message code 0x%04X has no payload builder", ErrBadRequest, c.code)
}

// dailyLogRange reads the parameters of service request 4.17 and returns
// the completed UTC days they ask for, as the midnights that start the first
// and end the last, 1 to 31 days: either {"days": N}, the N days before
// today, or {"from": T1, "to": T2} (RFC 3339), the days lying wholly in
// [T1, T2) and before today.
func dailyLogRange(params json.RawMessage, now time.Time) (from, to time.Time, err error) {
	var q struct {
		Days int       `json:"days"`
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	if err := strictJSON(params, &q); err != nil {
		return time.Time{}, time.Time{}, err
	}
	const day = 24 * time.Hour
	today := now.UTC().Truncate(day)
	switch {
	case q.Days != 0 && (!q.From.IsZero() || !q.To.IsZero()):
		return time.Time{}, time.Time{}, fmt.Errorf("%w: parameters: days or from and to, not both", ErrBadRequest)
	case q.Days != 0:
		if q.Days < 1 || q.Days > 31 {
			return time.Time{}, time.Time{}, fmt.Errorf("%w: parameters: days must be 1 to 31, not %d", ErrBadRequest, q.Days)
		}
		return today.AddDate(0, 0, -q.Days), today, nil
	case q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To):
		return time.Time{}, time.Time{}, fmt.Errorf("%w: parameters: want days (1 to 31), or from before to, both RFC 3339 times", ErrBadRequest)
	}
	from = q.From.UTC().Truncate(day)
	if from.Before(q.From) {
		from = from.Add(day)
	}
	if to = q.To.UTC().Truncate(day); to.After(today) {
		to = today
	}
	if n := to.Sub(from) / day; n < 1 || n > 31 {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: parameters: from %s to %s holds %d completed days; a daily log read takes 1 to 31",
			ErrBadRequest, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), max(n, 0))
	}
	return from, to, nil
}

// gasTariff expands the simple tariff form into the GCS01a tariff of our
// own layout: tariff information with the standing charge, the price matrix
// in rate order, and one day profile switching tiers at the rates' slots;
// prices in pounds with five decimal places (thousandths of a penny),
// activating now.
func gasTariff(c payloadContext, q tariffParams) (*gbz.GasTariff, error) {
	if _, err := simpleTariff(q); err != nil { // the same checks as the electricity tariff
		return nil, err
	}
	if *q.StandingChargeMilliPence > math.MaxUint32 {
		return nil, fmt.Errorf("%w: parameters: standing charge too large for a gas tariff", ErrBadRequest)
	}
	t := &gbz.GasTariff{
		Information: gbz.PublishTariffInformation{IssuerEventID: utc(c.now), StartTime: gbz.StartNow, TariffType: gbz.TariffTOU,
			PriceTiers: uint8(len(q.Rates)), Currency: 826, PriceTrailingDigit: 5 << 4, StandingCharge: uint32(*q.StandingChargeMilliPence)},
		PriceMatrix: gbz.PublishPriceMatrix{IssuerEventID: utc(c.now), StartTime: gbz.StartNow, Commands: 1, SubPayloadControl: 1},
		DayProfile:  gbz.PublishDayProfile{IssuerEventID: utc(c.now), DayID: 1, Commands: 1},
	}
	for i, r := range q.Rates {
		if r.PriceMilliPence > math.MaxUint32 {
			return nil, fmt.Errorf("%w: parameters: rate %d price too large", ErrBadRequest, i)
		}
		t.PriceMatrix.Entries = append(t.PriceMatrix.Entries, gbz.PriceEntry{ID: uint8(i + 1), Price: uint32(r.PriceMilliPence)})
		t.DayProfile.Entries = append(t.DayProfile.Entries, gbz.ScheduleEntry{StartMinute: uint16(30 * r.FromSlot), Tier: uint8(i + 1)})
	}
	return t, nil
}

// gasTariffPrices reads the standing charge and unit prices of a GCS01a
// command for attribute limits.
func gasTariffPrices(payload []byte) (standing, prices []dlms.Scaled, err error) {
	p, err := gbz.Parse(payload)
	if err != nil {
		return nil, nil, err
	}
	t, err := gbz.ReadGasTariff(p)
	if err != nil {
		return nil, nil, err
	}
	return t.StandingCharges(), t.UnitPrices(), nil
}

// gasCINPayload builds GCS36, which has a gas meter display a CIN, in the
// layout of our own package gbz defines (the device management cluster's
// Update CIN).
func gasCINPayload(c payloadContext, cin []byte) ([]byte, error) {
	p, err := gbz.NewUpdateCIN(gbz.UpdateCIN{IssuerEventID: utc(c.now), CIN: cin})
	if err != nil {
		return nil, err
	}
	return encoded(p.Marshal())
}
