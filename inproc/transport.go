package inproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// deliverer is what FleetTransport needs of device.Fleet.
type deliverer interface {
	Deliver(ctx context.Context, eui smki.EUI, msg []byte) ([]byte, error)
}

// FleetTransport is the router's transport to the in-process reference-meter
// fleet (package device). A meter's discard (which a real meter signals by
// silence) and an unknown meter are final refusals; a discard as a replay is
// reported as the router's ErrDeviceReplay, one for a bad MAC as its
// ErrDeviceMAC. It lives here, where the router
// and the meters are assembled, so that the router does not import the
// reference meter.
type FleetTransport struct {
	fleet deliverer
}

// NewFleetTransport returns a transport to f, normally a *device.Fleet.
func NewFleetTransport(f deliverer) *FleetTransport { return &FleetTransport{fleet: f} }

// Send delivers msg to the meter and returns its response.
func (t *FleetTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	resp, err := t.fleet.Deliver(ctx, target, msg)
	if err != nil {
		var d *device.DiscardError
		if errors.Is(err, device.ErrReplay) {
			return nil, fmt.Errorf("%w: %w: %w", router.ErrDeviceRefused, router.ErrDeviceReplay, err)
		}
		if errors.Is(err, device.ErrBadMAC) {
			return nil, fmt.Errorf("%w: %w: %w", router.ErrDeviceRefused, router.ErrDeviceMAC, err)
		}
		if errors.As(err, &d) || errors.Is(err, device.ErrNoMeter) {
			return nil, fmt.Errorf("%w: %w", router.ErrDeviceRefused, err)
		}
		return nil, fmt.Errorf("fleet delivery to %s: %w", target, err)
	}
	return resp, nil
}

// alertLog is what FleetTransport reads alerts from (device.Fleet).
type alertLog interface {
	Alerts(since uint64, limit int) ([]device.FleetAlert, uint64)
	AlertLog() string
}

// Alerts implements router.AlertSource over the fleet's alert log, when
// the fleet keeps one (a *device.Fleet does).
func (t *FleetTransport) Alerts(_ context.Context, since uint64, limit int) (router.AlertPage, error) {
	l, ok := t.fleet.(alertLog)
	if !ok {
		return router.AlertPage{Next: since}, nil
	}
	as, next := l.Alerts(since, limit)
	p := router.AlertPage{Log: l.AlertLog(), Next: next, Alerts: make([]router.RawAlert, len(as))}
	for i, a := range as {
		p.Alerts[i] = router.RawAlert{Index: a.Index, Device: a.Device, At: a.At, Message: a.Message}
	}
	return p, nil
}
