package router

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// openChange returns the open ownership change of device.
func (e *e2e) openChange(t *testing.T, device smki.EUI) store.OwnershipChange {
	t.Helper()
	chs, err := e.db.Router().OpenOwnershipChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if ch.Device == device.String() {
			return ch
		}
	}
	t.Fatalf("no open change of %s", device)
	return store.OwnershipChange{}
}

// awaitAudit polls the audit log after seq until an entry of action
// about object (a command ID) is there.
func (e *e2e) awaitAudit(t *testing.T, seq int64, action, object string) store.AuditEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs, err := e.db.AuditEvents(context.Background(), seq, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Action == action && ev.Object == object {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s entry for %s after 15s", action, object)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *e2e) auditHead(t *testing.T) int64 {
	t.Helper()
	evs, err := e.db.AuditEvents(context.Background(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// TestRotationReadTooEarly: a future-dated rotation (decision 016) whose
// change became unsettled before its time is read; the reference meter,
// whose clock has not reached executeAt, answers with the old keys. That
// read comes before executeAt + ReadMaxWait, so it does not settle the
// change not-applied: it is audited (router.change-of-supplier.read-early)
// and the change stays unsettled, the owner's critical commands refused.
// Once the meter executes the CS02b, a later read showing the new keys
// settles it applied on one meter, the meter's alert 0x00CB on another.
// On both stores.
func TestRotationReadTooEarly(t *testing.T) {
	for name, open := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := newE2E(t, open(t)(t))
			ctx := context.Background()
			req, _ := e.rotationCerts(t, e.meters[0])
			at := time.Now().Add(time.Hour).Truncate(time.Second)
			ids := map[smki.EUI]string{}
			for _, m := range e.meters[:2] {
				r := req
				r.Target, r.ExecuteAt = m, &at
				rc, st, p := e.rotate(t, r, e.supplier.ds, nil)
				if st != http.StatusAccepted {
					t.Fatalf("future-dated rotation of %s: %d %+v", m, st, p)
				}
				if ch := e.rotation(t, rc.ID, false); ch.State != store.ChangePending {
					t.Fatalf("rotation of %s once acknowledged: %+v, want pending", m, ch)
				}
				ids[m] = rc.ID
			}

			// Unsettled before its time (as after a restart) and read: the
			// meter still holds the old keys.
			seq := e.auditHead(t)
			if err := e.svc.Changes.Sweep(ctx, true); err != nil {
				t.Fatal(err)
			}
			for _, m := range e.meters[:2] {
				ch := e.openChange(t, m)
				if ch.State != store.ChangeUnsettled || ch.Reads == 0 {
					t.Fatalf("change of %s after the sweep: %+v, want unsettled and read", m, ch)
				}
				ev := e.awaitAudit(t, seq, "router.change-of-supplier.read-early", ch.ReadCommandID)
				if d := fmt.Sprint(ev.Details); !strings.Contains(d, "may still execute") {
					t.Errorf("read-early entry %+v", ev)
				}
				if st := e.rotation(t, ids[m], false); st.State != store.ChangeUnsettled {
					t.Fatalf("rotation of %s after an early read of the old keys: %+v, want still unsettled", m, st)
				}
				if _, st, p := e.request(t, "7.1", m, ""); st != http.StatusConflict || p.Code != "ownership-unsettled" {
					t.Errorf("critical command to %s while unsettled: %d %+v", m, st, p)
				}
			}
			if d, _ := e.svc.Storage.Device(ctx, e.meters[0]); fmt.Sprintf("%X", d.SupplierKeyID) != fmt.Sprintf("%X", mustKeyID(t, e.supplier.dsCert.DER)) {
				t.Fatalf("an early read changed the registry's key id: %X", d.SupplierKeyID)
			}

			// The meters' time comes: they execute the CS02b.
			e.meterClock.Store(int64(2 * time.Hour))
			alerts := map[smki.EUI]*commands.Message{}
			for _, m := range e.meters[:2] {
				mtr, _ := e.fleet.Meter(m)
				mtr.Tick(ctx)
				var a device.Alert
				select {
				case a = <-e.alerts:
				case <-time.After(5 * time.Second):
					t.Fatalf("no alert from %s", m)
				}
				am, err := commands.Parse(a.Message)
				if err != nil || am.Code != CodeCS02bAlert {
					t.Fatalf("alert from %s: %+v, %v", m, a, err)
				}
				alerts[m] = am
			}

			// m0: a later read shows the new keys.
			seq = e.auditHead(t)
			if err := e.svc.Changes.readAnchors(ctx, e.openChange(t, e.meters[0])); err != nil {
				t.Fatal(err)
			}
			st := e.rotation(t, ids[e.meters[0]], true)
			if st.State != store.OutcomeApplied {
				t.Fatalf("rotation of %s after a read of the new keys: %+v, want applied", e.meters[0], st)
			}
			if evs, _ := e.db.AuditEvents(ctx, seq, store.MaxLimit); len(evs) > 0 {
				for _, ev := range evs {
					if ev.Action == "router.change-of-supplier.read-early" {
						t.Errorf("a read of the new keys audited as early: %+v", ev)
					}
				}
			}
			// m1: the meter's alert.
			e.svc.Changes.CredentialsAlerted(ctx, e.meters[1], alerts[e.meters[1]])
			if st := e.rotation(t, ids[e.meters[1]], true); st.State != store.OutcomeApplied {
				t.Fatalf("rotation of %s after its alert: %+v, want applied", e.meters[1], st)
			}
			for _, m := range e.meters[:2] {
				if d, _ := e.svc.Storage.Device(ctx, m); fmt.Sprintf("%X", d.SupplierKeyID) != st.DSKeyID || d.ChangeState != "" {
					t.Errorf("%s after the rotation: key id %X, change %q; want %s and none", m, d.SupplierKeyID, d.ChangeState, st.DSKeyID)
				}
			}
		})
	}
}
