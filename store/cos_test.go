package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

func TestSupplyRegistrations(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := b.newOpener(t)(t).Router()
			ctx := context.Background()
			dev := smki.MustParseEUI(rtDevice)
			if _, err := st.RegisteredSupplier(ctx, dev, rtT0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("no registration: %v", err)
			}
			for i, sup := range []string{"2222222222222222", "3333333333333333"} {
				r := SupplyRegistration{Device: rtDevice, IncomingSupplier: sup, EffectiveFrom: rtT0.Add(time.Duration(i) * 24 * time.Hour),
					CreatedBy: "op", CreatedAt: rtT0}
				if err := st.PutSupplyRegistration(ctx, r); err != nil {
					t.Fatal(err)
				}
				if err := st.PutSupplyRegistration(ctx, r); !errors.Is(err, ErrExists) {
					t.Errorf("same registration twice: %v, want ErrExists", err)
				}
			}
			tests := []struct {
				at   time.Time
				want string
			}{
				{rtT0.Add(-time.Second), ""},
				{rtT0, "2222222222222222"},
				{rtT0.Add(24*time.Hour - time.Second), "2222222222222222"},
				{rtT0.Add(48 * time.Hour), "3333333333333333"},
			}
			for _, tt := range tests {
				r, err := st.RegisteredSupplier(ctx, dev, tt.at)
				if tt.want == "" && !errors.Is(err, ErrNotFound) || tt.want != "" && (err != nil || r.IncomingSupplier != tt.want) {
					t.Errorf("at %s: %+v, %v, want %q", tt.at, r, err, tt.want)
				}
			}
			if err := st.PutSupplyRegistration(ctx, SupplyRegistration{Device: rtDevice, IncomingSupplier: "x", EffectiveFrom: rtT0,
				CreatedBy: "op", CreatedAt: rtT0}); !errors.Is(err, ErrInvalid) {
				t.Errorf("bad supplier: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestOwnershipChanges(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := b.newOpener(t)(t).Router()
			ctx := context.Background()
			dev := smki.MustParseEUI(rtDevice)
			if err := st.PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: rtSupplier, UpdatedAt: rtT0}); err != nil {
				t.Fatal(err)
			}
			change := func(id string) OwnershipChange {
				return OwnershipChange{ID: id, Device: rtDevice, Kind: "supplierByTransCoS", Requester: "2222222222222222",
					OldOwner: rtSupplier, NewOwner: "2222222222222222", CommandID: "cmd-" + id, Counter: 1<<63 + 5, Sequence: 7, CreatedAt: rtT0}
			}
			state := func(want string) {
				t.Helper()
				d, err := st.RouterDevice(ctx, dev)
				if err != nil || d.ChangeState != want {
					t.Fatalf("device change state %q, %v, want %q", d.ChangeState, err, want)
				}
			}
			state("")
			audit := AuditEvent{Time: rtT0, Actor: "2222222222222222", Action: "router.device.credentials.change", Object: rtDevice, Outcome: OutcomeAttempt}
			if err := st.OpenOwnershipChange(ctx, change("c1"), audit); err != nil {
				t.Fatal(err)
			}
			state(ChangePending)
			// A second change while the first is open is refused, and
			// leaves nothing behind.
			if err := st.OpenOwnershipChange(ctx, change("c2")); !errors.Is(err, ErrConflict) {
				t.Fatalf("second change: %v, want ErrConflict", err)
			}
			if _, err := st.OwnershipChange(ctx, "c2"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("refused change recorded: %v", err)
			}
			other := change("c3")
			other.Device = "BBBBBBBBBBBBBBBB"
			if err := st.OpenOwnershipChange(ctx, other); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown device: %v, want ErrNotFound", err)
			}
			got, err := st.OwnershipChangeByCommand(ctx, "cmd-c1")
			if err != nil || got.ID != "c1" || got.State != ChangePending || got.Counter != 1<<63+5 || got.Sequence != 7 || !got.CreatedAt.Equal(rtT0) {
				t.Fatalf("OwnershipChangeByCommand = %+v, %v", got, err)
			}
			if open, err := st.OpenOwnershipChanges(ctx); err != nil || len(open) != 1 || open[0].ID != "c1" {
				t.Fatalf("OpenOwnershipChanges = %+v, %v", open, err)
			}
			if err := st.UnsettleOwnershipChange(ctx, "c1", "no answer", rtT0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			state(ChangeUnsettled)
			if err := st.RecordOwnershipRead(ctx, "c1", "read-1", rtT0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordOwnershipRead(ctx, "c1", "read-2", rtT0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			got, err = st.OwnershipChangeByCommand(ctx, "read-2")
			if err != nil || got.ID != "c1" || got.Reads != 2 || got.ReadCommandID != "read-2" || !got.ReadAt.Equal(rtT0.Add(2*time.Minute)) {
				t.Fatalf("change by its latest read = %+v, %v", got, err)
			}
			if _, err := st.OwnershipChangeByCommand(ctx, "read-1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("change by an earlier read: %v, want ErrNotFound", err)
			}
			if err := st.UnsettleOwnershipChange(ctx, "c1", "again", rtT0.Add(time.Minute)); !errors.Is(err, ErrConflict) {
				t.Fatalf("unsettling an unsettled change: %v, want ErrConflict", err)
			}
			if err := st.SettleOwnershipChange(ctx, "c1", OutcomeApplied, "2222222222222222", "read", rtT0.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			state("")
			d, _ := st.RouterDevice(ctx, dev)
			if d.Supplier != "2222222222222222" {
				t.Fatalf("supplier after the change: %s", d.Supplier)
			}
			if err := st.SettleOwnershipChange(ctx, "c1", OutcomeRefusedCoS, rtSupplier, "late", rtT0.Add(3*time.Minute)); !errors.Is(err, ErrConflict) {
				t.Fatalf("settling twice: %v, want ErrConflict", err)
			}
			if err := st.SettleOwnershipChange(ctx, "nope", OutcomeApplied, rtSupplier, "", rtT0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown change: %v, want ErrNotFound", err)
			}
			// The device is free again: a refused change leaves the owner.
			if err := st.OpenOwnershipChange(ctx, change("c4")); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordOwnershipRead(ctx, "c4", "read-3", rtT0); !errors.Is(err, ErrConflict) {
				t.Fatalf("reading a pending change: %v, want ErrConflict", err)
			}
			if err := st.SettleOwnershipChange(ctx, "c4", OutcomeRefusedCoS, "2222222222222222", "status badCertificate", rtT0.Add(4*time.Minute)); err != nil {
				t.Fatal(err)
			}
			got, _ = st.OwnershipChange(ctx, "c4")
			if got.State != ChangeSettled || got.Outcome != OutcomeRefusedCoS || got.Detail != "status badCertificate" {
				t.Fatalf("refused change: %+v", got)
			}
			state("")
		})
	}
}

// TestAnchorKeyIDs: the device's anchor key ids (decision 016) are kept
// when the row is put again for the same party, set by an applied
// rotation of its role (network operator here, supplier untouched), kept
// by one not applied, cleared by a diverged one; a change remembers its
// role, target key id and execution time.
func TestAnchorKeyIDs(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := b.newOpener(t)(t).Router()
			ctx := context.Background()
			dev := smki.MustParseEUI(rtDevice)
			const no = "3333333333333333"
			put := func(supKey, noKey string) {
				t.Helper()
				if err := st.PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: rtSupplier, NetworkOperator: no,
					SupplierDSKeyID: supKey, NetworkOperatorDSKeyID: noKey, UpdatedAt: rtT0}); err != nil {
					t.Fatal(err)
				}
			}
			keys := func(wantSup, wantNO string) {
				t.Helper()
				d, err := st.RouterDevice(ctx, dev)
				if err != nil || d.SupplierDSKeyID != wantSup || d.NetworkOperatorDSKeyID != wantNO {
					t.Fatalf("key ids %q %q, %v, want %q %q", d.SupplierDSKeyID, d.NetworkOperatorDSKeyID, err, wantSup, wantNO)
				}
			}
			put("AA01", "BB01")
			put("", "")
			keys("AA01", "BB01")
			if err := st.PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: "2222222222222222",
				NetworkOperator: no, UpdatedAt: rtT0}); err != nil {
				t.Fatal(err)
			}
			keys("", "BB01") // another supplier: its key is not the old one's
			put("AA01", "")
			if err := st.PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: rtSupplier, UpdatedAt: rtT0,
				SupplierDSKeyID: "not hex"}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("key id not hex: %v, want ErrInvalid", err)
			}
			exec := rtT0.Add(time.Hour)
			rot := func(id string) OwnershipChange {
				return OwnershipChange{ID: id, Device: rtDevice, Kind: "networkOperatorByNetworkOperator", AnchorRole: AnchorNetworkOperator,
					Requester: no, OldOwner: no, NewOwner: no, CommandID: "cmd-" + id, Counter: 9, Sequence: 9, DSKeyID: "BB02",
					ExecuteAt: exec, CreatedAt: rtT0}
			}
			for _, tt := range []struct {
				id, outcome, want string
			}{{"r1", OutcomeNotApplied, "BB01"}, {"r2", OutcomeApplied, "BB02"}, {"r3", OutcomeDiverged, ""}} {
				if err := st.OpenOwnershipChange(ctx, rot(tt.id)); err != nil {
					t.Fatal(err)
				}
				c, err := st.OwnershipChange(ctx, tt.id)
				if err != nil || c.AnchorRole != AnchorNetworkOperator || c.DSKeyID != "BB02" || !c.ExecuteAt.Equal(exec) {
					t.Fatalf("change %+v, %v", c, err)
				}
				if err := st.SettleOwnershipChange(ctx, tt.id, tt.outcome, no, "", rtT0); err != nil {
					t.Fatal(err)
				}
				keys("AA01", tt.want)
				d, _ := st.RouterDevice(ctx, dev)
				if d.NetworkOperator != no || d.Supplier != rtSupplier {
					t.Fatalf("owners after %s: %+v", tt.outcome, d)
				}
			}
			bad := rot("r4")
			bad.AnchorRole = "root"
			if err := st.OpenOwnershipChange(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("anchor role root: %v, want ErrInvalid", err)
			}
		})
	}
}
