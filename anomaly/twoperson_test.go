package anomaly_test

import (
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
)

func TestLoosens(t *testing.T) {
	base := anomaly.Threshold{ID: "d", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 100, Window: 24 * time.Hour}
	fixed := base
	fixed.Fixed = true
	attr := anomaly.Threshold{ID: "a", Scope: anomaly.ScopeAttribute, Attribute: "price", Min: 0, Max: 1000}
	with := func(t anomaly.Threshold, f func(*anomaly.Threshold)) anomaly.Threshold { f(&t); return t }
	tests := []struct {
		name      string
		cur, next anomaly.Threshold
		loose     bool
	}{
		{"same", base, base, false},
		{"higher limit", base, with(base, func(t *anomaly.Threshold) { t.Limit = 101 }), true},
		{"lower limit", base, with(base, func(t *anomaly.Threshold) { t.Limit = 99 }), false},
		{"shorter window", base, with(base, func(t *anomaly.Threshold) { t.Window = time.Hour }), true},
		{"longer window, same limit", base, with(base, func(t *anomaly.Threshold) { t.Window = 48 * time.Hour }), false},
		{"sliding made fixed", base, fixed, true},
		{"fixed made sliding", fixed, base, false},
		{"fixed to a whole multiple", fixed, with(fixed, func(t *anomaly.Threshold) { t.Window = 48 * time.Hour }), false},
		{"fixed to a non-multiple", fixed, with(fixed, func(t *anomaly.Threshold) { t.Window = 36 * time.Hour }), true},
		{"other service", base, with(base, func(t *anomaly.Threshold) { t.ServiceRef = "7.3" }), true},
		{"other scope", base, with(base, func(t *anomaly.Threshold) { t.Scope = anomaly.ScopeDCCService }), true},
		{"narrower range", attr, with(attr, func(t *anomaly.Threshold) { t.Max = 500 }), false},
		{"wider range", attr, with(attr, func(t *anomaly.Threshold) { t.Min = -1 }), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loose, why := anomaly.Loosens(tc.cur, tc.next)
			if loose != tc.loose || (loose && why == "") {
				t.Errorf("Loosens = %v %q, want %v with a reason", loose, why, tc.loose)
			}
		})
	}
}

func TestThresholdTwoPerson(t *testing.T) {
	dcc := anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour}
	e := newEnv(t, dcc)
	ctx := t.Context()
	looser := dcc
	looser.Limit = 500
	_, err := e.d.SetThreshold(ctx, admin, looser)
	var tp *anomaly.TwoPersonError
	if !errors.Is(err, anomaly.ErrTwoPerson) || !errors.As(err, &tp) || tp.Current.Limit != 200 || tp.Next.Limit != 500 {
		t.Fatalf("loosening alone: %v, want a TwoPersonError", err)
	}
	if a := e.store.Audit(); a[len(a)-1].Outcome != anomaly.OutcomeRefused {
		t.Errorf("refusal not audited: %+v", a[len(a)-1])
	}
	tighter := dcc
	tighter.Limit = 150
	if _, err := e.d.SetThreshold(ctx, admin, tighter); err != nil {
		t.Errorf("tightening alone: %v", err)
	}
	ap := anomaly.Approval{Proposal: "P-1", Proposer: "ada", Approver: "abe"}
	abe := anomaly.Actor{ID: "abe", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	// Proposed against the 200 of before the tightening: the tightening
	// made since is not overwritten.
	stale := ap
	stale.Current = &dcc
	if _, err := e.d.SetThresholdApproved(ctx, abe, looser, stale); !errors.Is(err, anomaly.ErrConflict) {
		t.Errorf("approved loosening of a threshold changed since: %v, want ErrConflict", err)
	}
	if err := e.d.DeleteThresholdApproved(ctx, "dcc-72", abe, "not needed", stale); !errors.Is(err, anomaly.ErrConflict) {
		t.Errorf("approved deletion of a threshold changed since: %v, want ErrConflict", err)
	}
	got, err := e.d.SetThresholdApproved(ctx, abe, looser, ap)
	if err != nil || got.Limit != 500 {
		t.Fatalf("approved loosening: %+v, %v", got, err)
	}
	a := e.store.Audit()
	if last := a[len(a)-1]; last.Details["proposal"] != "P-1" || last.Details["proposer"] != "ada" || last.Details["approver"] != "abe" {
		t.Errorf("approved change's audit entry %+v lacks both names", last)
	}
	if err := e.d.DeleteThreshold(ctx, "dcc-72", admin, "not needed"); !errors.Is(err, anomaly.ErrTwoPerson) {
		t.Errorf("deleting a DCC threshold alone: %v, want ErrTwoPerson", err)
	}
	if err := e.d.DeleteThresholdApproved(ctx, "dcc-72", abe, "not needed", ap); err != nil {
		t.Errorf("approved deletion: %v", err)
	}
	if ts, _ := e.d.Thresholds(ctx, admin); len(ts) != 0 {
		t.Errorf("thresholds left: %v", ts)
	}
}
