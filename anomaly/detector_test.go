package anomaly_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/smki"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	admin   = anomaly.Actor{ID: "ada", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	officer = anomaly.Actor{ID: "otto", Roles: []anomaly.Role{anomaly.RoleQuarantineOfficer}}
	viewer  = anomaly.Actor{ID: "vic", Roles: []anomaly.Role{anomaly.RoleViewer}}
)

func userActor(u smki.EUI) anomaly.Actor {
	return anomaly.Actor{ID: u.String(), Roles: []anomaly.Role{anomaly.RoleUser}, User: u}
}

type env struct {
	t     *testing.T
	store *anomalytest.Store
	clock *fakeClock
	d     *anomaly.Detector
	n     int
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, thresholds ...anomaly.Threshold) *env {
	t.Helper()
	e := &env{t: t, store: &anomalytest.Store{}, clock: newClock()}
	d, err := anomaly.New(t.Context(), anomaly.Config{Store: e.store, Now: e.clock.Now,
		Rand: rand.NewChaCha8([32]byte{1}), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	for _, th := range thresholds {
		actor := admin
		if !th.IsDCC() {
			actor = userActor(th.User)
		}
		if _, err := d.SetThreshold(t.Context(), actor, th); err != nil {
			t.Fatalf("SetThreshold(%s): %v", th, err)
		}
	}
	return e
}

func (e *env) req(user smki.EUI, srv string) anomaly.Request {
	e.n++
	return anomaly.Request{ID: fmt.Sprintf("cmd-%d", e.n), User: user, UserRole: smki.UserImportSupplier,
		ServiceRef: srv, Target: meter, Command: []byte{0xDD, 0x00, byte(e.n)}}
}

func (e *env) check(r anomaly.Request) anomaly.Decision {
	e.t.Helper()
	dec, err := e.d.Check(e.t.Context(), r)
	if err != nil {
		e.t.Fatalf("Check(%s): %v", r.ID, err)
	}
	return dec
}

func TestCheckThresholdKinds(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name       string
		thresholds []anomaly.Threshold
		// burst returns the i-th request of the burst.
		burst      func(e *env, i int) anomaly.Request
		limit      int
		wantKind   anomaly.Kind
		wantID     string
		unaffected func(e *env) anomaly.Request
	}{
		{
			name:       "DCC per user per service",
			thresholds: []anomaly.Threshold{{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 3, Window: h}},
			burst:      func(e *env, _ int) anomaly.Request { return e.req(userA, "7.2") },
			limit:      3, wantKind: anomaly.KindDCCThreshold, wantID: "dcc-72",
			unaffected: func(e *env) anomaly.Request { return e.req(userB, "7.2") },
		},
		{
			name: "user's own per service, stricter than the DCC's",
			thresholds: []anomaly.Threshold{
				{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 3, Window: h},
				{ID: "a-72", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2", Limit: 2, Window: 2 * h},
			},
			burst: func(e *env, _ int) anomaly.Request { return e.req(userA, "7.2") },
			limit: 2, wantKind: anomaly.KindUserThreshold, wantID: "a-72",
			unaffected: func(e *env) anomaly.Request { return e.req(userB, "7.2") },
		},
		{
			name:       "DCC per user in total",
			thresholds: []anomaly.Threshold{{ID: "dcc-total", Scope: anomaly.ScopeUserTotal, Limit: 4, Window: h}},
			burst: func(e *env, i int) anomaly.Request {
				return e.req(userA, []string{"7.1", "7.2", "1.1.1"}[i%3])
			},
			limit: 4, wantKind: anomaly.KindDCCThreshold, wantID: "dcc-total",
			unaffected: func(e *env) anomaly.Request { return e.req(userB, "7.1") },
		},
		{
			name:       "user's own in total",
			thresholds: []anomaly.Threshold{{ID: "a-total", Scope: anomaly.ScopeUserTotal, User: userA, Limit: 2, Window: h}},
			burst:      func(e *env, i int) anomaly.Request { return e.req(userA, []string{"4.1.1", "7.4"}[i%2]) },
			limit:      2, wantKind: anomaly.KindUserThreshold, wantID: "a-total",
			unaffected: func(e *env) anomaly.Request { return e.req(userB, "4.1.1") },
		},
		{
			name:       "DCC-wide per service",
			thresholds: []anomaly.Threshold{{ID: "wide-72", Scope: anomaly.ScopeDCCService, ServiceRef: "7.2", Limit: 5, Window: h}},
			burst: func(e *env, i int) anomaly.Request {
				return e.req([]smki.EUI{userA, userB}[i%2], "7.2")
			},
			limit: 5, wantKind: anomaly.KindDCCThreshold, wantID: "wide-72",
			unaffected: func(e *env) anomaly.Request { return e.req(userA, "7.1") },
		},
		{
			name: "DCC breach reported before the user's own",
			thresholds: []anomaly.Threshold{
				{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 2, Window: h},
				{ID: "a-72", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2", Limit: 2, Window: 2 * h},
			},
			burst: func(e *env, _ int) anomaly.Request { return e.req(userA, "7.2") },
			limit: 2, wantKind: anomaly.KindDCCThreshold, wantID: "dcc-72",
			unaffected: func(e *env) anomaly.Request { return e.req(userB, "7.2") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.thresholds...)
			for i := range tc.limit {
				if dec := e.check(tc.burst(e, i)); !dec.Pass() {
					t.Fatalf("request %d of %d quarantined: %+v", i+1, tc.limit, dec)
				}
				e.clock.Advance(time.Second)
			}
			r := tc.burst(e, tc.limit)
			dec := e.check(r)
			if dec.Pass() {
				t.Fatalf("request %d passed a limit of %d", tc.limit+1, tc.limit)
			}
			if dec.Kind != tc.wantKind || dec.Threshold.ID != tc.wantID || dec.Count != int64(tc.limit) || dec.Limit != int64(tc.limit) {
				t.Errorf("decision = kind %s threshold %s count %d limit %d; want %s %s %d %d",
					dec.Kind, dec.Threshold.ID, dec.Count, dec.Limit, tc.wantKind, tc.wantID, tc.limit, tc.limit)
			}
			if !strings.HasPrefix(dec.Ref, "Q-20261123-") || len(dec.Ref) != len("Q-20261123-")+10 {
				t.Errorf("reference %q is not Q-YYYYMMDD- and ten characters", dec.Ref)
			}
			q, err := e.d.Get(t.Context(), dec.Ref, officer)
			if err != nil {
				t.Fatal(err)
			}
			if q.State != anomaly.StateQuarantined || q.CommandID != r.ID || !bytes.Equal(q.Command, r.Command) ||
				q.Kind != tc.wantKind || q.ThresholdID != tc.wantID || q.User != r.User || q.Target != meter {
				t.Errorf("quarantine record = %+v", q)
			}
			// Quarantined commands do not count: the next is quarantined
			// with the same count, not one more.
			if dec2 := e.check(tc.burst(e, tc.limit+1)); dec2.Pass() || dec2.Count != int64(tc.limit) {
				t.Errorf("after a breach: %+v, want quarantined at count %d", dec2, tc.limit)
			}
			if dec := e.check(tc.unaffected(e)); !dec.Pass() {
				t.Errorf("unrelated request quarantined: %+v", dec)
			}
		})
	}
}

func TestSlidingWindowEdge(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "w", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 3, Window: 10 * time.Second})
	t0 := e.clock.Now()
	steps := []struct {
		at   time.Duration
		pass bool
		why  string
	}{
		{0, true, "1st"},
		{1 * time.Second, true, "2nd"},
		{2 * time.Second, true, "3rd: the limit-th passes"},
		{2 * time.Second, false, "4th at once"},
		{10*time.Second - time.Microsecond, false, "just before the 1st leaves the window"},
		{10 * time.Second, true, "exactly when the 1st leaves: capacity freed (and the quarantined ones did not count)"},
		{10 * time.Second, false, "window full again (1s, 2s, 10s)"},
		{11*time.Second - time.Microsecond, false, "just before the 2nd leaves"},
		{11 * time.Second, true, "2nd left"},
		{12 * time.Second, true, "3rd left"},
		{12 * time.Second, false, "full (10s, 11s, 12s)"},
		{40 * time.Second, true, "all left"},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%02d %s", i, s.why), func(t *testing.T) {
			e.clock.Set(t0.Add(s.at))
			if dec := e.check(e.req(userA, "7.2")); dec.Pass() != s.pass {
				t.Fatalf("at t0+%s: pass = %v, want %v (%+v)", s.at, dec.Pass(), s.pass, dec)
			}
		})
	}
	// Request.At, when set, overrides the clock (still at t0+40s, with one
	// event then): at t0+60s three pass, the fourth does not.
	for i := range 4 {
		r := e.req(userA, "7.2")
		r.At = t0.Add(60 * time.Second)
		if dec := e.check(r); dec.Pass() != (i < 3) {
			t.Fatalf("request %d with At = t0+60s: pass = %v", i+1, dec.Pass())
		}
	}
}

func TestFixedWindowEdge(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "f", Scope: anomaly.ScopeUserTotal, Limit: 2, Window: 10 * time.Second, Fixed: true})
	t0 := e.clock.Now() // 12:00:00, the start of a fixed 10 s window
	steps := []struct {
		at   time.Duration
		pass bool
		why  string
	}{
		{9 * time.Second, true, "1st in [0s, 10s)"},
		{9*time.Second + 500*time.Millisecond, true, "2nd: the limit-th passes"},
		{10*time.Second - time.Microsecond, false, "last microsecond of the window"},
		{10 * time.Second, true, "a new window starts afresh (a sliding window would still hold two)"},
		{10 * time.Second, true, "2nd in [10s, 20s)"},
		{19 * time.Second, false, "full"},
		{20 * time.Second, true, "next window"},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%02d %s", i, s.why), func(t *testing.T) {
			e.clock.Set(t0.Add(s.at))
			if dec := e.check(e.req(userA, "7.2")); dec.Pass() != s.pass {
				t.Fatalf("at t0+%s: pass = %v, want %v (%+v)", s.at, dec.Pass(), s.pass, dec)
			}
		})
	}
}

func TestAttributeLimits(t *testing.T) {
	e := newEnv(t,
		anomaly.Threshold{ID: "dcc-price", Scope: anomaly.ScopeAttribute, Attribute: "price", Min: 0, Max: 5000},
		anomaly.Threshold{ID: "dcc-debt", Scope: anomaly.ScopeAttribute, ServiceRef: "2.3", Attribute: "debt", Min: -100, Max: 100},
		anomaly.Threshold{ID: "a-price", Scope: anomaly.ScopeAttribute, User: userA, ServiceRef: "1.2.1", Attribute: "price", Min: 10, Max: 4000},
		anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "1.2.1", Limit: 100, Window: time.Hour},
	)
	tests := []struct {
		name   string
		user   smki.EUI
		srv    string
		attrs  map[string]int64
		wantID string // "" for pass
	}{
		{"in range", userA, "1.1.1", map[string]int64{"price": 5000}, ""},
		{"above DCC max", userA, "1.1.1", map[string]int64{"price": 5001}, "dcc-price"},
		{"below DCC min", userB, "1.2.1", map[string]int64{"price": -1}, "dcc-price"},
		{"above user's own max", userA, "1.2.1", map[string]int64{"price": 4001}, "a-price"},
		{"below user's own min", userA, "1.2.1", map[string]int64{"price": 9}, "a-price"},
		{"user's own limit is not another user's", userB, "1.2.1", map[string]int64{"price": 4001}, ""},
		{"user's own limit is for one service", userA, "1.1.1", map[string]int64{"price": 4001}, ""},
		{"attribute absent", userA, "1.2.1", nil, ""},
		{"other attributes ignored", userA, "1.2.1", map[string]int64{"colour": 1 << 40}, ""},
		{"service-specific DCC limit", userA, "2.3", map[string]int64{"debt": 101}, "dcc-debt"},
		{"service-specific DCC limit, other service", userA, "2.1", map[string]int64{"debt": 101}, ""},
		{"both limits, DCC reported", userA, "1.2.1", map[string]int64{"price": 6000}, "dcc-price"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req(tc.user, tc.srv)
			r.Attributes = tc.attrs
			before := e.store.Events("ut/" + tc.user.String())
			dec := e.check(r)
			after := e.store.Events("ut/" + tc.user.String())
			if tc.wantID == "" {
				if !dec.Pass() || after != before+1 {
					t.Fatalf("decision %+v, events %d -> %d; want pass and counted", dec, before, after)
				}
				return
			}
			if dec.Pass() || dec.Kind != anomaly.KindAttributeLimits || dec.Threshold.ID != tc.wantID {
				t.Fatalf("decision %+v, want attribute-limits breach of %s", dec, tc.wantID)
			}
			if after != before {
				t.Errorf("a quarantined command was counted: events %d -> %d", before, after)
			}
			if !strings.Contains(dec.Detail, "outside") {
				t.Errorf("detail %q does not say what is out of range", dec.Detail)
			}
		})
	}
}

func TestSetThresholdRules(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour})
	ua := userActor(userA)
	own := func(limit int64, w time.Duration) anomaly.Threshold {
		return anomaly.Threshold{Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2", Limit: limit, Window: w}
	}
	tests := []struct {
		name    string
		actor   anomaly.Actor
		t       anomaly.Threshold
		wantErr error
	}{
		{"user sets a stricter one", ua, own(100, 24*time.Hour), nil},
		{"user sets the same limit over longer", ua, own(200, 48*time.Hour), nil},
		{"user sets a looser one", ua, own(201, 24*time.Hour), anomaly.ErrNotStricter},
		{"user sets a shorter window", ua, own(10, time.Hour), anomaly.ErrNotStricter},
		{"user sets another user's", userActor(userB), own(100, 24*time.Hour), anomaly.ErrForbidden},
		{"user sets a DCC threshold", ua, anomaly.Threshold{Scope: anomaly.ScopeUserTotal, Limit: 1, Window: time.Hour}, anomaly.ErrForbidden},
		{"user overwrites the DCC's by ID", ua, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2", Limit: 1, Window: 24 * time.Hour}, anomaly.ErrForbidden},
		{"viewer sets", viewer, own(100, 24*time.Hour), anomaly.ErrForbidden},
		{"officer sets", officer, own(100, 24*time.Hour), anomaly.ErrForbidden},
		{"admin sets for a user, still checked", admin, own(300, 24*time.Hour), anomaly.ErrNotStricter},
		{"admin sets a DCC one", admin, anomaly.Threshold{Scope: anomaly.ScopeDCCService, ServiceRef: "7.2", Limit: 1e5, Window: time.Hour}, nil},
		{"invalid", admin, anomaly.Threshold{Scope: anomaly.ScopeDCCService, Limit: 1, Window: time.Hour}, anomaly.ErrInvalid},
		{"actor without ID", anomaly.Actor{Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}, own(1, 24*time.Hour), anomaly.ErrForbidden},
		{"user role without user", anomaly.Actor{ID: "x", Roles: []anomaly.Role{anomaly.RoleUser}}, own(1, 24*time.Hour), anomaly.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(e.store.Audit())
			got, err := e.d.SetThreshold(t.Context(), tc.actor, tc.t)
			audit := e.store.Audit()
			if len(audit) != n+1 {
				t.Fatalf("audit entries %d -> %d, want one more", n, len(audit))
			}
			last := audit[len(audit)-1]
			if last.Action != "anomaly.threshold.set" || last.Actor != tc.actor.String() {
				t.Errorf("audit entry %+v", last)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SetThreshold = %v, want %v", err, tc.wantErr)
				}
				if last.Outcome != anomaly.OutcomeRefused || last.Details["error"] != err.Error() {
					t.Errorf("audit entry %+v, want refused with the error", last)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetThreshold = %v", err)
			}
			if got.ID == "" || got.SetBy != tc.actor.String() || !got.SetAt.Equal(e.clock.Now()) {
				t.Errorf("stored threshold %+v lacks ID, SetBy or SetAt", got)
			}
			if last.Outcome != "success" || last.Object != got.ID {
				t.Errorf("audit entry %+v", last)
			}
		})
	}

	// A user sees the DCC's thresholds and its own, not another user's.
	if _, err := e.d.SetThreshold(t.Context(), userActor(userB), anomaly.Threshold{ID: "b-total", Scope: anomaly.ScopeUserTotal, User: userB, Limit: 5, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ts, err := e.d.Thresholds(t.Context(), ua)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range ts {
		if th.User == userB {
			t.Errorf("user A sees user B's threshold %s", th)
		}
	}
	all, err := e.d.Thresholds(t.Context(), viewer)
	if err != nil || len(all) != len(ts)+1 {
		t.Errorf("viewer sees %d thresholds (%v), user A %d; want one more", len(all), err, len(ts))
	}

	// Deleting: only the owner or an admin, with a reason.
	if err := e.d.DeleteThreshold(t.Context(), "b-total", ua, "mine now"); !errors.Is(err, anomaly.ErrNotFound) {
		t.Errorf("user A deleting B's threshold: %v, want ErrNotFound", err)
	}
	if err := e.d.DeleteThreshold(t.Context(), "b-total", userActor(userB), ""); !errors.Is(err, anomaly.ErrInvalid) {
		t.Errorf("deleting without a reason: %v, want ErrInvalid", err)
	}
	if err := e.d.DeleteThreshold(t.Context(), "b-total", userActor(userB), "too strict"); err != nil {
		t.Errorf("user B deleting its own threshold: %v", err)
	}
	if err := e.d.DeleteThreshold(t.Context(), "b-total", admin, "again"); !errors.Is(err, anomaly.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
	if err := e.d.DeleteThreshold(t.Context(), "dcc-72", viewer, "x"); !errors.Is(err, anomaly.ErrForbidden) {
		t.Errorf("viewer deleting: %v, want ErrForbidden", err)
	}
}

// breach sets a limit of 1 for userA on 7.2, uses it, and quarantines the
// next command, returning its reference.
func breach(t *testing.T, e *env, user smki.EUI) (string, anomaly.Request) {
	t.Helper()
	for {
		r := e.req(user, "7.2")
		dec := e.check(r)
		if !dec.Pass() {
			return dec.Ref, r
		}
	}
}

func TestReleaseDeleteStateMachine(t *testing.T) {
	type step struct {
		to      anomaly.State
		actor   anomaly.Actor
		reason  string
		wantErr error
	}
	rel := func(a anomaly.Actor, err error) step {
		return step{anomaly.StateReleased, a, "customer confirmed", err}
	}
	del := func(a anomaly.Actor, err error) step {
		return step{anomaly.StateDeleted, a, "looks like an attack", err}
	}
	ua, ub := userActor(userA), userActor(userB)
	tests := []struct {
		name  string
		steps []step
	}{
		{"release then release", []step{rel(officer, nil), rel(officer, anomaly.ErrConflict)}},
		{"release then delete", []step{rel(officer, nil), del(officer, anomaly.ErrConflict)}},
		{"delete then release", []step{del(officer, nil), rel(officer, anomaly.ErrConflict)}},
		{"delete then delete", []step{del(officer, nil), del(ua, anomaly.ErrConflict)}},
		{"owning user releases", []step{rel(ua, nil)}},
		{"owning user deletes", []step{del(ua, nil)}},
		{"other user cannot see it", []step{rel(ub, anomaly.ErrNotFound), del(ub, anomaly.ErrNotFound), rel(officer, nil)}},
		{"viewer may not", []step{rel(viewer, anomaly.ErrForbidden), del(viewer, anomaly.ErrForbidden), del(officer, nil)}},
		{"threshold admin may not", []step{rel(admin, anomaly.ErrForbidden), rel(officer, nil)}},
		{"a reason is required", []step{{anomaly.StateReleased, officer, "  ", anomaly.ErrInvalid}, rel(officer, nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, anomaly.Threshold{ID: "a-72", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2", Limit: 1, Window: time.Hour})
			ref, r := breach(t, e, userA)
			state := anomaly.StateQuarantined
			for i, s := range tc.steps {
				e.clock.Advance(time.Minute)
				n := len(e.store.Audit())
				var q anomaly.Quarantine
				var err error
				if s.to == anomaly.StateReleased {
					q, err = e.d.Release(t.Context(), ref, s.actor, s.reason)
				} else {
					q, err = e.d.Delete(t.Context(), ref, s.actor, s.reason)
				}
				audit := e.store.Audit()
				if len(audit) != n+1 {
					t.Fatalf("step %d: audit entries %d -> %d, want one more", i, n, len(audit))
				}
				last := audit[len(audit)-1]
				wantAction := map[anomaly.State]string{anomaly.StateReleased: "anomaly.release", anomaly.StateDeleted: "anomaly.delete"}[s.to]
				if last.Action != wantAction || last.Object != ref || last.Actor != s.actor.String() {
					t.Errorf("step %d: audit entry %+v", i, last)
				}
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: %v, want %v", i, err, s.wantErr)
					}
					if last.Outcome != anomaly.OutcomeRefused || last.Details["error"] != err.Error() {
						t.Errorf("step %d: audit entry %+v, want refused with the error", i, last)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				state = s.to
				if q.State != s.to || q.DecidedBy != s.actor.String() || q.Reason != s.reason || !q.DecidedAt.Equal(e.clock.Now()) {
					t.Errorf("step %d: record %+v", i, q)
				}
				if last.Outcome != "success" || last.Details["reason"] != s.reason {
					t.Errorf("step %d: audit entry %+v", i, last)
				}
				if s.to == anomaly.StateReleased && (!bytes.Equal(q.Command, r.Command) || q.CommandID != r.ID) {
					t.Errorf("step %d: released record does not carry the command", i)
				}
			}
			got, err := e.d.Get(t.Context(), ref, viewer)
			if err != nil || got.State != state {
				t.Errorf("final state %s (%v), want %s", got.State, err, state)
			}
		})
	}
}

func TestReleasedCommandCounts(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 2, Window: time.Hour})
	e.check(e.req(userA, "7.2"))
	ref, _ := breach(t, e, userA) // 2 counted, 1 quarantined
	usage, err := e.d.Usage(t.Context(), officer, userA)
	if err != nil || len(usage) != 1 || usage[0].Count != 2 {
		t.Fatalf("usage %+v (%v), want one threshold at 2", usage, err)
	}
	e.clock.Advance(59 * time.Minute)
	if _, err := e.d.Release(t.Context(), ref, officer, "user asked"); err != nil {
		t.Fatal(err)
	}
	if usage, _ := e.d.Usage(t.Context(), officer, userA); usage[0].Count != 3 {
		t.Fatalf("after release, count %d, want 3", usage[0].Count)
	}
	// Two minutes on, the first two have left the window; the released one
	// counts from its release.
	e.clock.Advance(2 * time.Minute)
	if usage, _ := e.d.Usage(t.Context(), userActor(userA), userA); usage[0].Count != 1 {
		t.Fatalf("count %d, want 1 (the released command)", usage[0].Count)
	}
	if _, err := e.d.Usage(t.Context(), userActor(userB), userA); !errors.Is(err, anomaly.ErrForbidden) {
		t.Errorf("user B reading A's counts: %v", err)
	}
}

func TestListAndGet(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 1, Window: time.Hour})
	var refsA, refsB []string
	for i := range 6 {
		u := []smki.EUI{userA, userB}[i%2]
		ref, _ := breach(t, e, u)
		if u == userA {
			refsA = append(refsA, ref)
		} else {
			refsB = append(refsB, ref)
		}
		e.clock.Advance(time.Second)
	}
	if _, err := e.d.Delete(t.Context(), refsA[0], officer, "no"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		actor   anomaly.Actor
		f       anomaly.Filter
		want    []string
		wantErr error
	}{
		{"all", viewer, anomaly.Filter{}, []string{refsB[2], refsA[2], refsB[1], refsA[1], refsB[0], refsA[0]}, nil},
		{"by user", viewer, anomaly.Filter{User: userA}, []string{refsA[2], refsA[1], refsA[0]}, nil},
		{"by state", officer, anomaly.Filter{State: anomaly.StateDeleted}, []string{refsA[0]}, nil},
		{"by user and state", officer, anomaly.Filter{User: userA, State: anomaly.StateQuarantined}, []string{refsA[2], refsA[1]}, nil},
		{"page 1", viewer, anomaly.Filter{Limit: 2}, []string{refsB[2], refsA[2]}, nil},
		{"user sees own", userActor(userB), anomaly.Filter{}, []string{refsB[2], refsB[1], refsB[0]}, nil},
		{"user asks for another's", userActor(userB), anomaly.Filter{User: userA}, nil, anomaly.ErrForbidden},
		{"bad state", viewer, anomaly.Filter{State: "gone"}, nil, anomaly.ErrInvalid},
		{"bad limit", viewer, anomaly.Filter{Limit: anomaly.MaxList + 1}, nil, anomaly.ErrInvalid},
		{"no role", anomaly.Actor{ID: "nobody"}, anomaly.Filter{}, nil, anomaly.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qs, err := e.d.List(t.Context(), tc.actor, tc.f)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("List = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, q := range qs {
				got = append(got, q.Ref)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("List = %v, want %v", got, tc.want)
			}
		})
	}
	// Paging with Before and BeforeRef, also through records created in
	// the same instant.
	for range 3 {
		breach(t, e, userA)
	}
	var paged []string
	f := anomaly.Filter{Limit: 2}
	for {
		page, err := e.d.List(t.Context(), viewer, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, q := range page {
			paged = append(paged, q.Ref)
		}
		f.Before, f.BeforeRef = page[len(page)-1].CreatedAt, page[len(page)-1].Ref
	}
	all, _ := e.d.List(t.Context(), viewer, anomaly.Filter{Limit: anomaly.MaxList})
	if len(paged) != 9 || len(all) != 9 {
		t.Errorf("paging gave %d records, one list %d; want 9", len(paged), len(all))
	}
	for i := range min(len(paged), len(all)) {
		if paged[i] != all[i].Ref {
			t.Errorf("paging order differs at %d: %s, want %s", i, paged[i], all[i].Ref)
		}
	}
	if _, err := e.d.Get(t.Context(), refsA[1], userActor(userB)); !errors.Is(err, anomaly.ErrNotFound) {
		t.Errorf("user B getting A's record: %v, want ErrNotFound", err)
	}
	if q, err := e.d.Get(t.Context(), refsA[1], userActor(userA)); err != nil || q.Ref != refsA[1] {
		t.Errorf("user A getting its record: %v", err)
	}
	if _, err := e.d.Get(t.Context(), "Q-20261123-NOPE", viewer); !errors.Is(err, anomaly.ErrNotFound) {
		t.Errorf("unknown reference: %v, want ErrNotFound", err)
	}
}

func TestCheckRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	good := e.req(userA, "7.2")
	tests := []struct {
		name string
		mod  func(*anomaly.Request)
	}{
		{"no ID", func(r *anomaly.Request) { r.ID = "" }},
		{"long ID", func(r *anomaly.Request) { r.ID = strings.Repeat("x", 129) }},
		{"no user", func(r *anomaly.Request) { r.User = smki.EUI{} }},
		{"no service", func(r *anomaly.Request) { r.ServiceRef = "" }},
		{"bad service", func(r *anomaly.Request) { r.ServiceRef = "seven" }},
		{"no target", func(r *anomaly.Request) { r.Target = smki.EUI{} }},
		{"no command", func(r *anomaly.Request) { r.Command = nil }},
		{"huge command", func(r *anomaly.Request) { r.Command = make([]byte, anomaly.MaxCommand+1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.mod(&r)
			if _, err := e.d.Check(t.Context(), r); !errors.Is(err, anomaly.ErrInvalid) {
				t.Fatalf("Check = %v, want ErrInvalid", err)
			}
		})
	}
	e.store.Err = errors.New("disk on fire")
	if dec, err := e.d.Check(t.Context(), good); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Check with a failing store = %+v, %v; want the error", dec, err)
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "w", Scope: anomaly.ScopeUserTotal, Limit: 100, Window: 2 * time.Hour})
	for range 5 {
		e.check(e.req(userA, "7.2"))
		e.clock.Advance(time.Hour)
	}
	// Events at 0h..4h, now 5h; retention is 2h + 1h: those at 0h and 1h go.
	n, err := e.d.Prune(t.Context())
	if err != nil || n != 2*3 {
		t.Fatalf("Prune = %d, %v; want 6 (two requests, three keys each)", n, err)
	}
	if got := e.store.Events("ut/" + userA.String()); got != 3 {
		t.Errorf("%d events left, want 3", got)
	}
}

func waitAlert(t *testing.T, ch <-chan anomaly.Alert, within time.Duration) anomaly.Alert {
	t.Helper()
	select {
	case a, ok := <-ch:
		if !ok {
			t.Fatal("alert channel closed")
		}
		return a
	case <-time.After(within):
		t.Fatalf("no alert within %s", within)
	}
	return anomaly.Alert{}
}

func noAlert(t *testing.T, ch <-chan anomaly.Alert) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("unexpected alert %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestAlerts(t *testing.T) {
	e := newEnv(t, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 1, Window: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	all, err := e.d.Subscribe(ctx, officer, anomaly.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := e.d.Subscribe(ctx, userActor(userA), anomaly.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Subscribe(ctx, userActor(userA), anomaly.AlertFilter{User: userB}); !errors.Is(err, anomaly.ErrForbidden) {
		t.Errorf("user A subscribing to B: %v", err)
	}

	start := time.Now()
	ref, _ := breach(t, e, userA)
	for _, ch := range []<-chan anomaly.Alert{all, mine} {
		a := waitAlert(t, ch, time.Second)
		if a.State != anomaly.StateQuarantined || a.Ref != ref || a.User != userA || a.Kind != anomaly.KindDCCThreshold || a.ThresholdID != "dcc-72" {
			t.Errorf("alert %+v", a)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("alerts took %s", d)
	}
	refB, _ := breach(t, e, userB)
	if a := waitAlert(t, all, time.Second); a.Ref != refB {
		t.Errorf("alert %+v, want %s", a, refB)
	}
	noAlert(t, mine)

	if _, err := e.d.Release(t.Context(), ref, officer, "checked"); err != nil {
		t.Fatal(err)
	}
	a := waitAlert(t, mine, time.Second)
	if a.State != anomaly.StateReleased || a.By != officer.String() || a.Reason != "checked" {
		t.Errorf("release alert %+v", a)
	}
	cancel()
	if _, ok := <-all; ok {
		// Drain the release alert, then the channel must close.
		for range all {
		}
	}
}

func TestAlertsAcrossInstances(t *testing.T) {
	store := &anomalytest.Store{}
	hub := &anomalytest.Hub{}
	clock := newClock()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var ds []*anomaly.Detector
	for i := range 2 {
		d, err := anomaly.New(ctx, anomaly.Config{Store: store, Notifier: hub, Now: clock.Now,
			Rand: rand.NewChaCha8([32]byte{byte(i)}), Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		wg.Go(func() { _ = d.Run(ctx) })
	}
	for hub.Listeners() < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := ds[0].SetThreshold(ctx, admin, anomaly.Threshold{ID: "t", Scope: anomaly.ScopeUserTotal, Limit: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := ds[1].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	onA, _ := ds[0].Subscribe(ctx, viewer, anomaly.AlertFilter{})
	onB, _ := ds[1].Subscribe(ctx, viewer, anomaly.AlertFilter{})
	req := func(i int) anomaly.Request {
		return anomaly.Request{ID: fmt.Sprint(i), User: userA, ServiceRef: "7.2", Target: meter, Command: []byte{1}}
	}
	if dec, err := ds[1].Check(ctx, req(1)); err != nil || !dec.Pass() {
		t.Fatalf("first: %+v %v", dec, err)
	}
	dec, err := ds[0].Check(ctx, req(2)) // counted by instance B: A quarantines
	if err != nil || dec.Pass() {
		t.Fatalf("second: %+v %v", dec, err)
	}
	for name, ch := range map[string]<-chan anomaly.Alert{"A": onA, "B": onB} {
		if a := waitAlert(t, ch, time.Second); a.Ref != dec.Ref {
			t.Errorf("instance %s got %+v", name, a)
		}
		noAlert(t, ch) // exactly once: A ignores its own echo
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := anomaly.NewBroker(2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	slow := b.Subscribe(ctx, anomaly.AlertFilter{})
	fast := b.Subscribe(ctx, anomaly.AlertFilter{})
	other := b.Subscribe(ctx, anomaly.AlertFilter{User: userB})
	done := make(chan struct{})
	go func() {
		for range fast {
		}
		close(done)
	}()
	start := time.Now()
	for i := range 100 {
		b.Publish(anomaly.Alert{State: anomaly.StateQuarantined, Ref: fmt.Sprint(i), User: userA})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("publishing 100 alerts took %s", d)
	}
	var got []string
	for a := range slow {
		got = append(got, a.Ref)
	}
	if fmt.Sprint(got) != "[0 1]" {
		t.Errorf("slow subscriber got %v before being dropped, want [0 1]", got)
	}
	if b.Dropped() < 1 || b.Published() != 100 {
		t.Errorf("dropped %d published %d", b.Dropped(), b.Published())
	}
	noAlert(t, other)
	cancel()
	<-done
	for range other {
	}
	for b.Subscribers() != 0 {
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentChecksAreExact(t *testing.T) {
	store := &anomalytest.Store{}
	anomalytest.TestExact(t, store, store)
}

func FuzzParseAlert(f *testing.F) {
	f.Add([]byte(`{"state":"quarantined","ref":"Q-20261123-0123456789","user":"90B3D51F3001000A","serviceRef":"7.2","target":"00DB1234567890A0","kind":"dcc-threshold","threshold":"t","at":"2026-11-23T12:00:00Z","origin":"X"}`))
	f.Add([]byte(`{"state":"released","ref":"Q","user":"90-B3-D5-1F-30-01-00-0A","serviceRef":"","target":"0000000000000000","kind":"","by":"otto","reason":"ok","at":"2026-11-23T12:00:00.123456Z"}`))
	f.Add([]byte(`{"state":"gone","ref":"Q"}`))
	f.Add([]byte(`{"state":"deleted"}`))
	f.Add([]byte(`{"state":"deleted","ref":"Q","user":"zz"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := anomaly.ParseAlert(b)
		if err != nil {
			if !errors.Is(err, anomaly.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if a.Ref == "" {
			t.Fatal("accepted an alert without a reference")
		}
	})
}
