package router

import (
	"context"
	"fmt"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
)

// Attribute names the router reports to anomaly detection for attribute
// limits (GBCS section 10: "a tariff price far outside the normal range").
const (
	// AttrMaxPrice is the highest unit price of a tariff, in thousandths
	// of a penny per kWh.
	AttrMaxPrice = "price"
	// AttrMinPrice is the lowest unit price of a tariff.
	AttrMinPrice = "min-price"
	// AttrStandingCharge is a tariff's daily standing charge, in
	// thousandths of a penny.
	AttrStandingCharge = "standing-charge"
)

// attributes extracts the values attribute limits check from the payload
// of the commands that carry them: the prices of a tariff, read from a GB
// ECS01a command (spec gbcs-payloads.md 4.5) or the GSME tariff of our own
// (package gbz), in thousandths of a penny. A payload that does not decode
// is malformed: the meter would not execute it either, and an attribute
// limit must not be dodged by an odd encoding.
func attributes(m *commands.Message) (map[string]int64, error) {
	var standing, prices []dlms.Scaled
	switch uint16(m.Code) {
	case codeECS01a:
		a, err := dlms.Parse(m.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: tariff payload: %w", ErrMalformed, err)
		}
		if a.AccessRequest == nil {
			return nil, fmt.Errorf("%w: tariff payload: a DLMS %s, want an ACCESS-Request", ErrMalformed, a.Kind())
		}
		t, err := dlms.ReadTariff(a.AccessRequest)
		if err != nil {
			return nil, fmt.Errorf("%w: tariff payload: %w", ErrMalformed, err)
		}
		standing, prices = t.StandingCharges(), t.UnitPrices()
	case codeGCS01a:
		var err error
		if standing, prices, err = gasTariffPrices(m.Payload); err != nil {
			return nil, fmt.Errorf("%w: tariff payload: %w", ErrMalformed, err)
		}
	default:
		return nil, nil
	}
	a := map[string]int64{}
	for i, s := range standing {
		if v := milliPence(s); i == 0 || v > a[AttrStandingCharge] {
			a[AttrStandingCharge] = v
		}
	}
	for i, s := range prices {
		p := milliPence(s)
		if i == 0 || p > a[AttrMaxPrice] {
			a[AttrMaxPrice] = p
		}
		if i == 0 || p < a[AttrMinPrice] {
			a[AttrMinPrice] = p
		}
	}
	return a, nil
}

// ForwardReleased carries a command an operator (or its user) released
// from quarantine through the rest of the pipeline, as SubmitReleased does,
// for the quarantine record anomaly.Detector.Release returned.
func (r *Router) ForwardReleased(ctx context.Context, q anomaly.Quarantine) (Receipt, error) {
	if q.State != anomaly.StateReleased {
		return Receipt{}, fmt.Errorf("%w: quarantined command %s is %s, not released", ErrBadRequest, q.Ref, q.State)
	}
	rc, err := r.SubmitReleased(ctx, Caller{EUI: q.User, Role: q.UserRole}, q.Command)
	return rc, audited(err) // the pipeline audited its refusal
}
