package proposal_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/proposal/proposaltest"
)

func newDesk(t *testing.T, st *proposaltest.Store, now func() time.Time, x proposal.Executor) *proposal.Desk {
	t.Helper()
	d, err := proposal.New(proposal.Config{Store: st, Now: now,
		Rules: map[proposal.Kind]proposal.Rule{proposal.KindBulkDelete: {Role: "quarantine-officer", Execute: x}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	ann = proposal.Operator{Name: "ann", Roles: []string{"quarantine-officer"}}
	ben = proposal.Operator{Name: "ben", Roles: []string{"quarantine-officer", "viewer"}}
)

func TestNewRefusesBadConfig(t *testing.T) {
	x := func(context.Context, proposal.Proposal, proposal.Operator) (json.RawMessage, error) { return nil, nil }
	for name, cfg := range map[string]proposal.Config{
		"no store":          {},
		"TTL too short":     {Store: &proposaltest.Store{}, TTL: time.Second},
		"TTL too long":      {Store: &proposaltest.Store{}, TTL: 365 * 24 * time.Hour},
		"unknown kind":      {Store: &proposaltest.Store{}, Rules: map[proposal.Kind]proposal.Rule{"launch": {Role: "r", Execute: x}}},
		"rule without role": {Store: &proposaltest.Store{}, Rules: map[proposal.Kind]proposal.Rule{proposal.KindBulkDelete: {Execute: x}}},
	} {
		if _, err := proposal.New(cfg); !errors.Is(err, proposal.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	d, err := proposal.New(proposal.Config{Store: &proposaltest.Store{}})
	if err != nil || d.TTL() != proposal.DefaultTTL {
		t.Errorf("default TTL: %v, %v", d, err)
	}
}

func TestDesk(t *testing.T) {
	st := &proposaltest.Store{}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	panicky := false
	d := newDesk(t, st, clock, func(_ context.Context, p proposal.Proposal, by proposal.Operator) (json.RawMessage, error) {
		if panicky {
			panic("boom")
		}
		return json.RawMessage(`{"ok":true}`), nil
	})
	ctx := t.Context()
	if _, err := d.Propose(ctx, ann, proposal.KindBulkDelete, []string{"not", "an object"}, "s", "r"); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("array payload: %v", err)
	}
	if _, err := d.Propose(ctx, ann, proposal.KindBulkDelete, map[string]string{"x": strings.Repeat("a", proposal.MaxPayload)}, "s", "r"); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("oversized payload: %v", err)
	}
	if _, err := d.Propose(ctx, proposal.Operator{Roles: ann.Roles}, proposal.KindBulkDelete, map[string]int{"n": 1}, "s", "r"); !errors.Is(err, proposal.ErrForbidden) {
		t.Errorf("nameless operator: %v", err)
	}
	p, err := d.Propose(ctx, ann, proposal.KindBulkDelete, map[string]int{"n": 1}, "delete 1", "spoofed")
	if err != nil || !strings.HasPrefix(p.ID, "P-") || len(p.ID) != 18 {
		t.Fatalf("Propose = %+v, %v", p, err)
	}
	if _, err := d.Approve(ctx, p.ID, ben, " "); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("approval without a reason: %v", err)
	}
	panicky = true
	got, err := d.Approve(ctx, p.ID, ben, "ok")
	if err != nil || got.State != proposal.StateFailed || !strings.Contains(string(got.Result), "panicked") {
		t.Errorf("panicking executor: %+v, %v", got, err)
	}
	// Every step is audited, refusals included.
	var actions []string
	for _, a := range st.Audit() {
		actions = append(actions, a.Action+"/"+a.Outcome)
	}
	want := "proposal.create/refused proposal.create/refused proposal.create/refused proposal.create/success proposal.approve/refused proposal.approve/success proposal.execute/failure"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit:\n got %s\nwant %s", got, want)
	}
	// A pending proposal reads as expired once its time has passed.
	q, _ := d.Propose(ctx, ann, proposal.KindBulkDelete, map[string]int{"n": 2}, "delete 2", "spoofed")
	now = now.Add(proposal.DefaultTTL)
	if g, err := d.Get(ctx, q.ID); err != nil || g.State != proposal.StateExpired {
		t.Errorf("Get after expiry = %+v, %v", g, err)
	}
	if n, err := d.Expire(ctx); err != nil || n != 1 {
		t.Errorf("Expire = %d, %v", n, err)
	}
	if _, err := d.Reject(ctx, q.ID, ann, "too late"); !errors.Is(err, proposal.ErrExpired) {
		t.Errorf("rejecting an expired proposal: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, k := range proposal.Kinds() {
		if got, err := proposal.ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%s) = %s, %v", k, got, err)
		}
	}
	if _, err := proposal.ParseKind("launch"); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("ParseKind(launch): %v", err)
	}
	if _, err := proposal.ParseState("done"); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("ParseState(done): %v", err)
	}
}

// TestOfflineKind checks an Offline kind: approval leaves the proposal
// approved, and Complete executes it once, refusing one not approved.
func TestOfflineKind(t *testing.T) {
	st := &proposaltest.Store{}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	d, err := proposal.New(proposal.Config{Store: st, Now: func() time.Time { return now },
		Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: "issue", Offline: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proposal.New(proposal.Config{Store: st,
		Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: "issue"}}}); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("a rule neither executed nor offline: %v", err)
	}
	ctx := t.Context()
	iss1 := proposal.Operator{Name: "ivy", Roles: []string{"issue"}}
	iss2 := proposal.Operator{Name: "ian", Roles: []string{"issue"}}
	officers := []string{"alice", "bob"}
	runs := 0
	run := func(p proposal.Proposal) (json.RawMessage, error) {
		runs++
		return json.RawMessage(`{"batch":"B1"}`), nil
	}
	p, err := d.Propose(ctx, iss1, proposal.KindBatchOpen, map[string]any{"name": "B1", "quota": 5}, "open B1", "new meters")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrConflict) {
		t.Errorf("completing a pending proposal: %v", err)
	}
	got, err := d.Approve(ctx, p.ID, iss2, "agreed")
	if err != nil || got.State != proposal.StateApproved || got.DecidedBy != "ian" {
		t.Fatalf("Approve = %+v, %v", got, err)
	}
	if _, err := d.Complete(ctx, p.ID, proposal.KindBulkDelete, officers, run); !errors.Is(err, proposal.ErrInvalid) {
		t.Errorf("completing as another kind: %v", err)
	}
	if _, err := d.Complete(ctx, p.ID, proposal.KindBatchOpen, nil, run); !errors.Is(err, proposal.ErrForbidden) {
		t.Errorf("completing without officers: %v", err)
	}
	boom := errors.New("HSM unreachable")
	if _, err := d.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, func(proposal.Proposal) (json.RawMessage, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("a failing execution: %v", err)
	}
	if g, _ := d.Get(ctx, p.ID); g.State != proposal.StateApproved {
		t.Errorf("after a failed execution the proposal is %s, want approved (to run again)", g.State)
	}
	got, err = d.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, run)
	if err != nil || got.State != proposal.StateExecuted || string(got.Result) != `{"batch":"B1"}` || runs != 1 {
		t.Fatalf("Complete = %+v, %v (runs %d)", got, err, runs)
	}
	if _, err := d.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrConflict) || runs != 1 {
		t.Errorf("completing twice: %v (runs %d)", err, runs)
	}
	// One that lapsed unapproved, and one rejected.
	q, _ := d.Propose(ctx, iss1, proposal.KindBatchOpen, map[string]any{"name": "B2"}, "open B2", "more meters")
	r, _ := d.Propose(ctx, iss1, proposal.KindBatchOpen, map[string]any{"name": "B3"}, "open B3", "more meters")
	if _, err := d.Reject(ctx, r.ID, iss2, "not now"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Complete(ctx, r.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrConflict) {
		t.Errorf("completing a rejected proposal: %v", err)
	}
	now = now.Add(proposal.DefaultTTL)
	if _, err := d.Complete(ctx, q.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrExpired) {
		t.Errorf("completing an expired proposal: %v", err)
	}
	if _, err := d.Complete(ctx, "P-NOPE", proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrNotFound) {
		t.Errorf("completing an unknown proposal: %v", err)
	}
	if runs != 1 {
		t.Errorf("runs = %d, want 1", runs)
	}
	var last proposal.AuditEntry
	for _, a := range st.Audit() {
		if a.Action == "proposal.execute" && a.Outcome == proposal.OutcomeSuccess {
			last = a
		}
	}
	if last.Actor != "alice,bob" || last.Details["proposer"] != "ivy" || last.Details["approver"] != "ian" {
		t.Errorf("execution audit = %+v", last)
	}
}
