package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

func TestAlertIntake(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		rs := db.Router()
		dev := smki.MustParseEUI(rtDevice)
		alert := func(counter uint64, to string) *AlertIntake {
			a := &DeviceAlert{Device: rtDevice, Counter: counter, Code: 0x00CC, Recipient: "2222222222222222", DeliveredTo: to,
				Rerouted: to != "" && to != "2222222222222222", Source: "fleet#1", Message: []byte{0xDF, byte(counter)},
				RaisedAt: rtT0.Add(-time.Minute), ReceivedAt: rtT0}
			in := &AlertIntake{Source: "fleet#1", Next: counter - 999, At: rtT0, Alert: a,
				Audits: []AuditEvent{{Time: rtT0, Actor: "router", Action: "router.alert.received", Object: rtDevice, Outcome: OutcomeSuccess}}}
			if to != "" {
				in.Delivery = &Delivery{Caller: to, Kind: DeliveryAlert, Body: a.Message, Detail: "device alert", At: rtT0}
			}
			return in
		}
		if next, err := rs.AlertCursor(ctx, "fleet#1"); err != nil || next != 0 {
			t.Fatalf("AlertCursor before any = %d, %v", next, err)
		}
		if _, ok, err := rs.LastDeviceAlert(ctx, dev); err != nil || ok {
			t.Fatalf("LastDeviceAlert before any = %v, %v", ok, err)
		}
		// Recorded with its delivery (rerouted to the owner), cursor moved.
		in := alert(1000, rtSupplier)
		if err := rs.RecordAlertIntake(ctx, in); err != nil {
			t.Fatal(err)
		}
		if in.Delivery.Seq != 1 || in.Alert.DeliverySeq != 1 {
			t.Fatalf("delivery seq = %d, alert's = %d", in.Delivery.Seq, in.Alert.DeliverySeq)
		}
		if next, _ := rs.AlertCursor(ctx, "fleet#1"); next != 1 {
			t.Fatalf("cursor = %d, want 1", next)
		}
		ds, err := rs.Deliveries(ctx, smki.MustParseEUI(rtSupplier), 0, 10)
		if err != nil || len(ds) != 1 || ds[0].Kind != DeliveryAlert || ds[0].CommandID != "" || string(ds[0].Body) != string([]byte{0xDF, 0xE8}) {
			t.Fatalf("Deliveries = %+v, %v", ds, err)
		}
		// Consumed by the router: recorded without a delivery.
		if err := rs.RecordAlertIntake(ctx, alert(1002, "")); err != nil {
			t.Fatal(err)
		}
		if last, ok, err := rs.LastDeviceAlert(ctx, dev); err != nil || !ok || last != 1002 {
			t.Fatalf("LastDeviceAlert = %d, %v, %v", last, ok, err)
		}
		// A duplicate and a stale counter change nothing, cursor included.
		for _, tc := range []struct {
			counter uint64
			want    error
		}{{1000, ErrExists}, {1002, ErrExists}, {1001, ErrStaleAlert}} {
			if err := rs.RecordAlertIntake(ctx, alert(tc.counter, rtSupplier)); !errors.Is(err, tc.want) {
				t.Fatalf("counter %d: %v, want %v", tc.counter, err, tc.want)
			}
		}
		if next, _ := rs.AlertCursor(ctx, "fleet#1"); next != 3 {
			t.Fatalf("cursor after refusals = %d, want 3 (from the consumed alert)", next)
		}
		if ds, _ := rs.Deliveries(ctx, smki.MustParseEUI(rtSupplier), 0, 10); len(ds) != 1 {
			t.Fatalf("deliveries after refusals = %+v", ds)
		}
		// A skipped alert (refused by the router) moves the cursor with its
		// audit entry only.
		if err := rs.RecordAlertIntake(ctx, &AlertIntake{Source: "fleet#1", Next: 10, At: rtT0,
			Audits: []AuditEvent{{Time: rtT0, Actor: "router", Action: "router.alert.refused", Object: rtDevice, Outcome: OutcomeRefused}}}); err != nil {
			t.Fatal(err)
		}
		if next, _ := rs.AlertCursor(ctx, "fleet#1"); next != 10 {
			t.Fatalf("cursor = %d, want 10", next)
		}
		as, err := rs.DeviceAlerts(ctx, dev, 0)
		if err != nil || len(as) != 2 {
			t.Fatalf("DeviceAlerts = %+v, %v", as, err)
		}
		if a := as[0]; a.Counter != 1000 || a.Code != 0x00CC || !a.Rerouted || a.DeliveredTo != rtSupplier || a.DeliverySeq != 1 ||
			!a.RaisedAt.Equal(rtT0.Add(-time.Minute)) || !a.ReceivedAt.Equal(rtT0) || a.Source != "fleet#1" {
			t.Fatalf("alert = %+v", a)
		}
		if a := as[1]; a.DeliveredTo != "" || a.Rerouted || a.DeliverySeq != 0 {
			t.Fatalf("consumed alert = %+v", a)
		}
		// Invalid steps are refused before anything is written.
		bad := alert(2000, rtSupplier)
		bad.Delivery = nil
		if err := rs.RecordAlertIntake(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("an alert delivered without its delivery: %v", err)
		}
		if err := rs.RecordAlertIntake(ctx, &AlertIntake{Next: 1, At: rtT0}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no source: %v", err)
		}
		if n, err := db.VerifyAudit(ctx); err != nil || n != 3 {
			t.Fatalf("VerifyAudit = %d, %v", n, err)
		}
	})
}
