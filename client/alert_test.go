package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands/dlms"
)

// TestOpenAlert sends a future-dated tariff (1.1.1, ECS01a activating in a
// second): when it comes into force the meter raises its outcome alerts
// (0x00CC, one per activation attribute), the router collects and verifies
// them and delivers them to the supplier, whose Watch sees them and whose
// OpenAlert checks the meter's signature and reads the outcome.
func TestOpenAlert(t *testing.T) {
	sys, c := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	meter := sys.Meters[0]
	at := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	rc, err := c.Send(ctx, "1.1.1", meter, map[string]any{"standingChargeMilliPence": 25000,
		"rates": []map[string]any{{"fromSlot": 0, "priceMilliPence": 24000}}, "activation": at.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Wait(ctx, rc.ID, 0); err != nil || d.Kind != client.KindResponse {
		t.Fatalf("the tariff's response: %+v, %v", d, err)
	}
	cmd, err := c.Command(ctx, rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []*client.Alert
	errDone := errors.New("done")
	err = c.Watch(ctx, "", func(ev client.Event) error {
		if ev.Delivery == nil || ev.Delivery.Kind != client.KindAlert {
			return nil
		}
		d := *ev.Delivery
		if d.Alert == nil || d.Alert.Device != meter || d.Alert.Code != "0x00CC" || d.Alert.Rerouted {
			t.Errorf("the router's account of the alert: %+v", d.Alert)
		}
		a, err := c.OpenAlert(ctx, d)
		if err != nil {
			return err
		}
		alerts = append(alerts, a)
		if len(alerts) == 6 {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Watch = %v after %d alerts", err, len(alerts))
	}
	for i, a := range alerts {
		f, ok := a.UseCase.(dlms.FutureDatedAlert)
		if !ok {
			t.Fatalf("alert %d reads as %T", i, a.UseCase)
		}
		when, _ := f.Time.Time()
		if f.AlertCode != dlms.AlertFutureDatedSuccess || f.Counter != cmd.Counter || f.MessageCode != dlms.CodeECS01a || !when.Equal(at) || a.Rerouted {
			t.Errorf("alert %d = %+v (at %s)", i, f, when)
		}
	}
	// A response is not an alert; an alert whose account does not match
	// its bytes is refused.
	d, _ := c.Wait(ctx, rc.ID, 0)
	if _, err := c.OpenAlert(ctx, d); !errors.Is(err, client.ErrNotAlert) {
		t.Errorf("OpenAlert of a response: %v", err)
	}
	ds, _, err := c.Responses(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Kind == client.KindAlert {
			d.Alert.Counter++
			if _, err := c.OpenAlert(ctx, d); err == nil {
				t.Error("OpenAlert took an alert whose account does not match its bytes")
			}
			d.Alert.Counter--
			d.Body[len(d.Body)-1] ^= 1
			if _, err := c.OpenAlert(ctx, d); err == nil {
				t.Error("OpenAlert took an alert whose signature does not verify")
			}
			break
		}
	}
}
