package router

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/metertrust/metertrust/commands/dlms"
)

// tariffParams are the parameters of service request 1.1.1 (Update Import
// Tariff): either a whole GB tariff, as package dlms types it (the 21
// attributes of an ECS01a command), or the simple form most callers need (a
// daily standing charge and time-of-use rates by half-hour slot), which the
// router expands into a GB tariff.
type tariffParams struct {
	Tariff                   *dlms.Tariff `json:"tariff,omitempty"`
	StandingChargeMilliPence *int64       `json:"standingChargeMilliPence,omitempty"`
	Rates                    []tariffRate `json:"rates,omitempty"`
	// Activation, in the simple form, is when the tariff comes into force:
	// absent for now, or a time to come, which makes the command
	// future-dated (the meter then raises a future-dated outcome alert,
	// 0x00CC, for each activation attribute when it applies it).
	Activation *time.Time `json:"activation,omitempty"`
}

type tariffRate struct {
	FromSlot        int   `json:"fromSlot"`
	PriceMilliPence int64 `json:"priceMilliPence"`
}

// Script table and commodity of the simple form: the day profile's switches
// run the tariff script table 0-0:10.0.100.255 with the rate number as
// selector; prices apply to active import energy, register 1-0:1.8.0.255
// (class 3, attribute 2).
var (
	tariffScripts   = dlms.MustParseOBIS("0-0:10.0.100.255")
	importRegister  = dlms.MustParseOBIS("1-0:1.8.0.255")
	milliPenceScale = int8(-5) // a thousandth of a penny is 10^-5 pounds
)

// tariffPayload builds an ECS01a Set Tariff and Price command (spec
// gbcs-payloads.md 4.5) from the parameters, activating now. The gas
// tariff (GCS01a) has no GB layout in the spec; it takes the encoding of
// our own that package gbz defines.
func tariffPayload(c payloadContext, params json.RawMessage) ([]byte, error) {
	var q tariffParams
	if err := strictJSON(params, &q); err != nil {
		return nil, err
	}
	if c.code != codeECS01a {
		return oursPayload(c, params)
	}
	t := q.Tariff
	switch {
	case t != nil && (q.StandingChargeMilliPence != nil || q.Rates != nil || q.Activation != nil):
		return nil, fmt.Errorf("%w: parameters: give a tariff or the simple form (standingChargeMilliPence, rates, activation), not both", ErrBadRequest)
	case t == nil:
		var err error
		if t, err = simpleTariff(q); err != nil {
			return nil, err
		}
	}
	return encoded(t.Request(c.invokeID()).MarshalBinary())
}

// simpleTariff expands the simple form: one season from now on, one week
// whose seven days are day profile 1, whose switches start each rate at its
// half-hour slot; rates priced in the price matrix in rate order; the
// standing charge in its own table; every price written exactly, with the
// largest power of ten that keeps it within a DLMS long.
func simpleTariff(q tariffParams) (*dlms.Tariff, error) {
	if q.StandingChargeMilliPence == nil || len(q.Rates) == 0 {
		return nil, fmt.Errorf("%w: parameters: a tariff needs standingChargeMilliPence and at least one rate", ErrBadRequest)
	}
	if len(q.Rates) > 8 {
		return nil, fmt.Errorf("%w: parameters: %d rates, at most 8 (one register monitor each)", ErrBadRequest, len(q.Rates))
	}
	day := dlms.DayProfile{ID: 1}
	var prices []int64
	for i, r := range q.Rates {
		switch {
		case i == 0 && r.FromSlot != 0:
			return nil, fmt.Errorf("%w: parameters: the first rate must start at slot 0, not %d", ErrBadRequest, r.FromSlot)
		case i > 0 && r.FromSlot <= q.Rates[i-1].FromSlot:
			return nil, fmt.Errorf("%w: parameters: rate %d starts at slot %d, not after the previous rate's %d", ErrBadRequest, i, r.FromSlot, q.Rates[i-1].FromSlot)
		case r.FromSlot >= 48:
			return nil, fmt.Errorf("%w: parameters: rate %d starts at slot %d; a day has slots 0 to 47", ErrBadRequest, i, r.FromSlot)
		case r.PriceMilliPence < 0:
			return nil, fmt.Errorf("%w: parameters: rate %d has a negative price", ErrBadRequest, i)
		}
		day.Actions = append(day.Actions, dlms.DayAction{
			Start:    dlms.ClockTime{byte(r.FromSlot / 2), byte(30 * (r.FromSlot % 2)), 0, 0},
			Script:   tariffScripts,
			Selector: uint16(i + 1),
		})
		prices = append(prices, r.PriceMilliPence)
	}
	if *q.StandingChargeMilliPence < 0 {
		return nil, fmt.Errorf("%w: parameters: negative standing charge", ErrBadRequest)
	}
	standing, err := unitCharge([]int64{*q.StandingChargeMilliPence})
	if err != nil {
		return nil, fmt.Errorf("%w: parameters: standing charge: %w", ErrBadRequest, err)
	}
	matrix, err := unitCharge(prices)
	if err != nil {
		return nil, fmt.Errorf("%w: parameters: rates: %w", ErrBadRequest, err)
	}
	activation := dlms.Now
	if q.Activation != nil {
		if activation, err = dlms.NewDateTime(q.Activation.UTC()); err != nil {
			return nil, fmt.Errorf("%w: parameters: activation: %w", ErrBadRequest, err)
		}
	}
	return &dlms.Tariff{
		Seasons:        []dlms.Season{{Name: dlms.HexBytes{1}, Start: dlms.Now, Week: dlms.HexBytes{1}}},
		Weeks:          []dlms.WeekProfile{{Name: dlms.HexBytes{1}, Days: [7]uint8{1, 1, 1, 1, 1, 1, 1}}},
		Days:           []dlms.DayProfile{day},
		SpecialDays:    []dlms.SpecialDay{},
		StandingCharge: standing,
		Prices:         matrix,
		Activation:     activation,
	}, nil
}

// unitCharge writes amounts in thousandths of a penny as a charge table
// whose prices fit a DLMS long: the price scale is raised from 10^-5 while
// every amount divides evenly and one does not fit.
func unitCharge(milliPence []int64) (dlms.UnitCharge, error) {
	u := dlms.UnitCharge{CommodityScale: 0, PriceScale: milliPenceScale, CommodityClass: 3, CommodityOBIS: importRegister, CommodityAttribute: 2}
	div := int64(1)
	for {
		fits, exact := true, true
		for _, v := range milliPence {
			if v%div != 0 {
				exact = false
			}
			if v/div > 32767 {
				fits = false
			}
		}
		if !exact {
			return u, fmt.Errorf("%d thousandths of a penny cannot be written exactly within a DLMS long", milliPence)
		}
		if fits {
			break
		}
		div *= 10
		u.PriceScale++
	}
	for i, v := range milliPence {
		u.Charges = append(u.Charges, dlms.Charge{Index: dlms.HexBytes{byte(i + 1)}, Price: int16(v / div)})
	}
	return u, nil
}

// milliPence converts a scaled amount of pounds to whole thousandths of a
// penny, rounding towards minus infinity (an attribute limit compares whole
// units). An amount beyond int64 (the price scale comes from the caller's
// payload and may be 10^127) saturates, so that it breaches any limit
// rather than wrapping into range.
func milliPence(s dlms.Scaled) int64 {
	r := new(big.Rat).Mul(s.Rat(), big.NewRat(100_000, 1))
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
	switch {
	case q.IsInt64():
		return q.Int64()
	case q.Sign() > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}
