package router

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

func TestGBCSCatalogue(t *testing.T) {
	tests := []struct {
		name     string
		code     commands.MessageCode
		role     smki.UserRole
		wantRef  string
		critical bool
		wantErr  bool
	}{
		{"disable supply, import supplier", 0x0050, smki.UserImportSupplier, "7.2", true, false},
		{"enable supply: IS only", 0x004F, smki.UserImportSupplier, "7.1", true, false},
		{"reset balance (18.4 vector code)", 0x00B3, smki.UserImportSupplier, "1.5", true, false},
		{"profile read by an other user", 0x0037, smki.UserOther, "4.8.1", false, false},
		{"register read by the distributor", 0x0027, smki.UserElectricityDistributor, "4.1.1", false, false},
		{"unknown code", 0x7FFF, smki.UserImportSupplier, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srs, err := GBCSCatalogue{}.Lookup(tt.code)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Lookup(%s) = %v, want error", tt.code, srs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(srs, func(s ServiceRequest) bool { return slices.Contains(s.Roles, tt.role) })
			if i < 0 {
				t.Fatalf("no variant of %s eligible for %s: %+v", tt.code, tt.role, srs)
			}
			if srs[i].Ref != tt.wantRef || srs[i].Critical != tt.critical {
				t.Fatalf("got %+v, want ref %s critical %t", srs[i], tt.wantRef, tt.critical)
			}
		})
	}
}

// TestPipelineWithAnomalyDetector runs the pipeline with package anomaly's
// real detector: a DCC threshold of two disconnects per hour per user lets
// two through and quarantines the third, which leaves no router state.
func TestPipelineWithAnomalyDetector(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	st := &anomalytest.Store{}
	det, err := anomaly.New(ctx, anomaly.Config{Store: st, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	admin := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 2, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: GBCSCatalogue{}, Registry: w.reg, Certificates: w.certs,
		Ledger: w.ledger, Admitter: fakeAdmitter{detectorCheck(det), w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		_, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, 0x0050, 1+i, true))
		switch {
		case i < 2 && err != nil:
			t.Fatalf("command %d: %v", i, err)
		case i == 2 && !errors.Is(err, ErrQuarantined):
			t.Fatalf("command %d: %v, want ErrQuarantined", i, err)
		}
	}
	if n, c := w.ledger.state(); n != 2 || c[ledgerKey{w.supplier.eui, w.device}] != 2 {
		t.Fatalf("records %d, counters %v", n, c)
	}
	qs, err := det.List(ctx, anomaly.Actor{ID: "v", Roles: []anomaly.Role{anomaly.RoleViewer}}, anomaly.Filter{})
	if err != nil || len(qs) != 1 {
		t.Fatalf("quarantine %v, %v", qs, err)
	}
	// Released, the command goes through the remaining checks.
	if _, err := r.SubmitReleased(ctx, w.supplier.caller(), qs[0].Command); err != nil {
		t.Fatalf("released command: %v", err)
	}
	if n, _ := w.ledger.state(); n != 3 {
		t.Fatalf("records %d after release, want 3", n)
	}
}

// TestAttributeLimits: a tariff's prices reach the detector's attribute
// limits; an undecodable tariff is malformed; a released command goes on
// through ForwardReleased, a deleted one does not.
func TestAttributeLimits(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	det, err := anomaly.New(ctx, anomaly.Config{Store: &anomalytest.Store{}, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	admin := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin, anomaly.RoleQuarantineOfficer}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeAttribute, Attribute: AttrMaxPrice, Min: 0, Max: 100_000}); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{ACB: w.acb, ACBKey: w.acbKA, Catalogue: GBCSCatalogue{}, Registry: w.reg, Certificates: w.certs,
		Ledger: w.ledger, Admitter: fakeAdmitter{detectorCheck(det), w.ledger}, Auditor: w.audit, Clock: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	tariff := func(counter uint64, price int64) []byte {
		standing := int64(40_000)
		tf, err := simpleTariff(tariffParams{StandingChargeMilliPence: &standing,
			Rates: []tariffRate{{FromSlot: 0, PriceMilliPence: 20_000}, {FromSlot: 32, PriceMilliPence: price}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := tf.Request(dlms.InvokeID(counter)).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		m := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.supplier.eui, Recipient: w.device,
			Code: codeECS01a, Payload: p}
		return marshal(t, m, w.supplier.ds, true)
	}
	garbled := func() []byte {
		m := &commands.Message{CRA: commands.Command, Counter: 3, Originator: w.supplier.eui, Recipient: w.device,
			Code: codeECS01a, Payload: []byte{1, 2, 3}}
		return marshal(t, m, w.supplier.ds, true)
	}()
	tests := []struct {
		name string
		msg  []byte
		want *Kind
	}{
		{"price within limits", tariff(1, 30_000), nil},
		{"price far out of range", tariff(2, 900_000), ErrQuarantined},
		{"undecodable tariff", garbled, ErrMalformed},
		{"out-of-range price again", tariff(4, 800_000), ErrQuarantined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Submit(ctx, w.supplier.caller(), tt.msg)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Submit: %v, want %v", err, tt.want)
			}
		})
	}
	qs, err := det.List(ctx, admin, anomaly.Filter{State: anomaly.StateQuarantined})
	if err != nil || len(qs) != 2 {
		t.Fatalf("quarantine: %d, %v", len(qs), err)
	}
	released, err := det.Release(ctx, qs[1].Ref, admin, "customer confirmed the tariff")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ForwardReleased(ctx, released); err != nil {
		t.Fatalf("ForwardReleased: %v", err)
	}
	deleted, err := det.Delete(ctx, qs[0].Ref, admin, "fat finger")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ForwardReleased(ctx, deleted); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ForwardReleased(deleted): %v", err)
	}
	if n, _ := w.ledger.state(); n != 2 {
		t.Fatalf("%d records, want the first tariff and the released one", n)
	}
}
