package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// TestRouterDeviceKAPending keeps a device's pending key-agreement key
// (decision 017): set with its audit entry (again: a no-op), cleared only
// when the meter refused that key, cleared by the key-agreement re-key
// that settles it either way and by a new registration.
func TestRouterDeviceKAPending(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		rs := db.Router()
		eui := smki.MustParseEUI(rtDevice)
		ka, pending := rtKey(t), rtKey(t)
		dev := RouterDevice{EUI: rtDevice, KAPublic: ka, Supplier: rtSupplier, UpdatedAt: rtT0}
		if err := rs.PutRouterDevices(ctx, dev); err != nil {
			t.Fatal(err)
		}
		audit := AuditEvent{Actor: rtSupplier, Action: "router.device.rekey-pending", Object: rtDevice, Outcome: OutcomeSuccess, Time: rtT0}
		if p, err := rs.RouterDeviceKAPending(ctx, eui); err != nil || p != nil {
			t.Fatalf("pending key of a new device: %x, %v", p, err)
		}
		if changed, err := rs.SetRouterDeviceKAPending(ctx, eui, pending, audit); err != nil || !changed {
			t.Fatalf("SetRouterDeviceKAPending: %v, %v", changed, err)
		}
		if changed, err := rs.SetRouterDeviceKAPending(ctx, eui, pending, audit); err != nil || changed {
			t.Fatalf("the same key again: %v, %v; want a no-op", changed, err)
		}
		if p, err := rs.RouterDeviceKAPending(ctx, eui); err != nil || !bytes.Equal(p, pending) {
			t.Fatalf("pending key %x, %v", p, err)
		}
		if n, err := db.VerifyAudit(ctx); err != nil || n != 1 {
			t.Errorf("audit: %d entries, %v; want 1", n, err)
		}
		// Another key is not cleared; the pending one is.
		if changed, err := rs.ClearRouterDeviceKAPending(ctx, eui, rtKey(t), audit); err != nil || changed {
			t.Errorf("clearing another key: %v, %v", changed, err)
		}
		if changed, err := rs.ClearRouterDeviceKAPending(ctx, eui, pending, audit); err != nil || !changed {
			t.Errorf("clearing the pending key: %v, %v", changed, err)
		}
		// The re-key settles it, even when the meter kept its key.
		if _, err := rs.SetRouterDeviceKAPending(ctx, eui, pending); err != nil {
			t.Fatal(err)
		}
		if changed, err := rs.RekeyRouterDevice(ctx, eui, RekeyKA, ka, ka, rtT0.Add(time.Hour)); err != nil || changed {
			t.Fatalf("a read-back of the old key: %v, %v", changed, err)
		}
		if p, _ := rs.RouterDeviceKAPending(ctx, eui); p != nil {
			t.Errorf("pending key %x after a read-back of the old key", p)
		}
		if _, err := rs.SetRouterDeviceKAPending(ctx, eui, pending); err != nil {
			t.Fatal(err)
		}
		if changed, err := rs.RekeyRouterDevice(ctx, eui, RekeyKA, ka, pending, rtT0.Add(time.Hour)); err != nil || !changed {
			t.Fatalf("the re-key: %v, %v", changed, err)
		}
		if p, _ := rs.RouterDeviceKAPending(ctx, eui); p != nil {
			t.Errorf("pending key %x after the re-key", p)
		}
		// A registration settles it too.
		if _, err := rs.SetRouterDeviceKAPending(ctx, eui, rtKey(t)); err != nil {
			t.Fatal(err)
		}
		if err := rs.PutRouterDevices(ctx, dev); err != nil {
			t.Fatal(err)
		}
		if p, _ := rs.RouterDeviceKAPending(ctx, eui); p != nil {
			t.Errorf("pending key %x after a registration", p)
		}
		if _, err := rs.SetRouterDeviceKAPending(ctx, smki.MustParseEUI("0000000000000001"), pending); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown device: %v", err)
		}
		if _, err := rs.SetRouterDeviceKAPending(ctx, eui, []byte{4, 1}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a short key: %v", err)
		}
	})
}

// TestScrubCommandMessage replaces a command's stored message by what the
// router keeps of it, marking it scrubbed, in the transaction that marks
// it forwarded or completes it (decision 015), and not when the
// completion is refused.
func TestScrubCommandMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		rs := db.Router()
		for i, id := range []string{"s0", "s1"} {
			c := rtCommand(id, uint64(i+1))
			c.Target = []string{"AAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAA2"}[i]
			if err := rs.RecordCommand(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
		}
		header := []byte{0xDD, 0x00}
		if _, err := rs.MarkForwardedAll(ctx, []ForwardedCommand{{ID: "s0", At: rtT0, Scrub: header}}); err != nil {
			t.Fatal(err)
		}
		c := Completion{ID: "s1", State: CommandResponded, Response: []byte{0xDD, 9}, Scrub: header,
			Delivery: Delivery{Caller: rtSupplier, Kind: DeliveryResponse, Body: []byte{0xDD, 9}, At: rtT0}}
		if err := rs.Complete(ctx, &c); err != nil || c.Delivery.Seq == 0 {
			t.Fatalf("Complete: %v, %+v", err, c.Delivery)
		}
		for _, id := range []string{"s0", "s1"} {
			got, err := rs.RouterCommand(ctx, id)
			if err != nil || !bytes.Equal(got.Message, header) {
				t.Errorf("command %s: message %x, %v; want the header kept", id, got.Message, err)
			}
			var scrubbed int
			if err := db.read().queryRow(ctx, `SELECT message_scrubbed FROM router_commands WHERE id = $1`, id).Scan(&scrubbed); err != nil || scrubbed != 1 {
				t.Errorf("command %s: message_scrubbed %d, %v", id, scrubbed, err)
			}
		}
		// A completion refused (already complete) scrubs nothing more.
		again := Completion{ID: "s1", State: CommandFailed, Scrub: []byte{}, Delivery: Delivery{Caller: rtSupplier, Kind: DeliveryFailure, At: rtT0}}
		if err := rs.Complete(ctx, &again); !errors.Is(err, ErrConflict) {
			t.Errorf("second completion: %v, want ErrConflict", err)
		}
		if got, _ := rs.RouterCommand(ctx, "s1"); !bytes.Equal(got.Message, header) {
			t.Errorf("a refused completion changed the message: %x", got.Message)
		}
	})
}
