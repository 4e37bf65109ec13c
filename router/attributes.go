package router

import (
	"context"
	"fmt"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
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
// of the commands that carry them (tariffs, with package device's decoder,
// the encoding the reference meter executes). A payload that does not
// decode is malformed: the meter would not execute it either, and an
// attribute limit must not be dodged by an odd encoding.
func attributes(m *commands.Message) (map[string]int64, error) {
	switch uint16(m.Code) {
	case device.CodeECS01a, device.CodeGCS01a:
		t, err := device.DecodeTariff(m.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: tariff payload: %w", ErrMalformed, err)
		}
		a := map[string]int64{AttrStandingCharge: int64(t.StandingChargeMilliPence)}
		for i, r := range t.Rates {
			p := int64(r.PriceMilliPence)
			if i == 0 || p > a[AttrMaxPrice] {
				a[AttrMaxPrice] = p
			}
			if i == 0 || p < a[AttrMinPrice] {
				a[AttrMinPrice] = p
			}
		}
		return a, nil
	}
	return nil, nil
}

// ForwardReleased carries a command an operator (or its user) released
// from quarantine through the rest of the pipeline, as SubmitReleased does,
// for the quarantine record anomaly.Detector.Release returned.
func (r *Router) ForwardReleased(ctx context.Context, q anomaly.Quarantine) (Receipt, error) {
	if q.State != anomaly.StateReleased {
		return Receipt{}, fmt.Errorf("%w: quarantined command %s is %s, not released", ErrBadRequest, q.Ref, q.State)
	}
	return r.SubmitReleased(ctx, Caller{EUI: q.User, Role: q.UserRole}, q.Command)
}
