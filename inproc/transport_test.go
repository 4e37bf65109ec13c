package inproc

import (
	"context"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

type fleetFunc func(ctx context.Context, eui smki.EUI, msg []byte) ([]byte, error)

func (f fleetFunc) Deliver(ctx context.Context, eui smki.EUI, msg []byte) ([]byte, error) {
	return f(ctx, eui, msg)
}

func TestFleetTransport(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantFinal bool
	}{
		{"delivered", nil, false},
		{"meter discards", &device.DiscardError{Reason: device.ReasonBadMAC, Err: device.ErrBadMAC}, true},
		{"meter reports a replay", &device.DiscardError{Reason: device.ReasonReplay, Err: device.ErrReplay}, true},
		{"no such meter", device.ErrNoMeter, true},
		{"other failure", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewFleetTransport(fleetFunc(func(context.Context, smki.EUI, []byte) ([]byte, error) {
				if tt.err != nil {
					return nil, tt.err
				}
				return []byte{1}, nil
			}))
			_, err := tr.Send(context.Background(), smki.EUI{1}, []byte{0})
			if (err != nil) != (tt.err != nil) || errors.Is(err, router.ErrDeviceRefused) != tt.wantFinal || (tt.name == "meter reports a replay") != errors.Is(err, router.ErrDeviceReplay) {
				t.Fatalf("Send: %v", err)
			}
		})
	}
}
