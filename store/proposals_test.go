package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metertrust/metertrust/proposal"
)

// proposalClock is a settable clock for the desk.
type proposalClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *proposalClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *proposalClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestProposals drives two-person control through a proposal.Desk on the
// real store: each refusal (wrong role, self-approval, expired, decided
// already), approval executing once, rejection, failure, and two
// approvals racing.
func TestProposals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		clock := &proposalClock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
		var runs atomic.Int32
		var failNext atomic.Bool
		desk, err := proposal.New(proposal.Config{Store: db.Proposals(), Now: clock.now, TTL: time.Hour,
			Rules: map[proposal.Kind]proposal.Rule{proposal.KindBulkRelease: {Role: "quarantine-officer",
				Execute: func(_ context.Context, p proposal.Proposal, by proposal.Operator) (json.RawMessage, error) {
					runs.Add(1)
					if failNext.Load() {
						return nil, errors.New("router unreachable")
					}
					return json.RawMessage(`{"released":2,"by":"` + by.Name + `"}`), nil
				}}}})
		if err != nil {
			t.Fatal(err)
		}
		alice := proposal.Operator{Name: "alice", Roles: []string{"quarantine-officer"}}
		bob := proposal.Operator{Name: "bob", Roles: []string{"quarantine-officer"}}
		carol := proposal.Operator{Name: "carol", Roles: []string{"quarantine-officer"}}
		viewer := proposal.Operator{Name: "victor", Roles: []string{"viewer"}}
		payload := map[string]any{"refs": []string{"Q-1", "Q-2"}}

		if _, err := desk.Propose(ctx, viewer, proposal.KindBulkRelease, payload, "release 2", "storm over"); !errors.Is(err, proposal.ErrForbidden) {
			t.Errorf("viewer proposing: %v, want ErrForbidden", err)
		}
		if _, err := desk.Propose(ctx, alice, proposal.KindBatchOpen, payload, "open", "why"); !errors.Is(err, proposal.ErrInvalid) {
			t.Errorf("a kind without rule: %v, want ErrInvalid", err)
		}
		if _, err := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", " "); !errors.Is(err, proposal.ErrInvalid) {
			t.Errorf("no reason: %v, want ErrInvalid", err)
		}
		p, err := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", "storm over")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != proposal.StatePending || !p.ExpiresAt.Equal(clock.now().Add(time.Hour)) || p.Proposer != "alice" {
			t.Fatalf("proposed: %+v", p)
		}
		got, err := desk.Get(ctx, p.ID)
		if err != nil || string(got.Payload) != `{"refs":["Q-1","Q-2"]}` || got.Reason != "storm over" {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if _, err := desk.Approve(ctx, p.ID, alice, "me too"); !errors.Is(err, proposal.ErrSelfApproval) {
			t.Errorf("self-approval: %v, want ErrSelfApproval", err)
		}
		if _, err := desk.Approve(ctx, p.ID, viewer, "ok"); !errors.Is(err, proposal.ErrForbidden) {
			t.Errorf("approval without the role: %v, want ErrForbidden", err)
		}
		if _, err := desk.Approve(ctx, "P-NOPE", bob, "ok"); !errors.Is(err, proposal.ErrNotFound) {
			t.Errorf("unknown proposal: %v, want ErrNotFound", err)
		}
		if runs.Load() != 0 {
			t.Fatalf("executed %d times before approval", runs.Load())
		}
		done, err := desk.Approve(ctx, p.ID, bob, "checked the storm")
		if err != nil {
			t.Fatal(err)
		}
		if done.State != proposal.StateExecuted || done.DecidedBy != "bob" || runs.Load() != 1 || string(done.Result) != `{"released":2,"by":"bob"}` {
			t.Fatalf("approved: %+v, runs %d", done, runs.Load())
		}
		if _, err := desk.Approve(ctx, p.ID, carol, "again"); !errors.Is(err, proposal.ErrConflict) {
			t.Errorf("second approval: %v, want ErrConflict", err)
		}
		if _, err := desk.Reject(ctx, p.ID, carol, "too late"); !errors.Is(err, proposal.ErrConflict) {
			t.Errorf("rejecting an executed proposal: %v, want ErrConflict", err)
		}

		// Expired: refused, and listed as expired.
		old, err := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", "storm over")
		if err != nil {
			t.Fatal(err)
		}
		clock.add(time.Hour)
		if _, err := desk.Approve(ctx, old.ID, bob, "late"); !errors.Is(err, proposal.ErrExpired) {
			t.Errorf("approving at expiry: %v, want ErrExpired", err)
		}
		ps, err := desk.List(ctx, proposal.Filter{State: proposal.StateExpired})
		if err != nil || len(ps) != 1 || ps[0].ID != old.ID {
			t.Errorf("expired list = %+v, %v", ps, err)
		}
		if _, err := desk.Approve(ctx, old.ID, bob, "late"); !errors.Is(err, proposal.ErrExpired) {
			t.Errorf("approving once marked expired: %v, want ErrExpired", err)
		}

		// Rejected by the proposer (withdrawn): never executed.
		w, _ := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", "oops")
		if r, err := desk.Reject(ctx, w.ID, alice, "withdrawn"); err != nil || r.State != proposal.StateRejected || r.DecisionReason != "withdrawn" {
			t.Errorf("withdrawal = %+v, %v", r, err)
		}

		// A failing action: the proposal is failed, with the error.
		failNext.Store(true)
		f, _ := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", "retry")
		r, err := desk.Approve(ctx, f.ID, bob, "ok")
		if err != nil || r.State != proposal.StateFailed || string(r.Result) != `{"error":"router unreachable"}` {
			t.Errorf("failed execution = %+v, %v", r, err)
		}
		failNext.Store(false)

		// Two approvals at once: exactly one executes.
		clock.add(time.Minute)
		race, _ := desk.Propose(ctx, alice, proposal.KindBulkRelease, payload, "release 2", "race")
		before := runs.Load()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				op := bob
				if i%2 == 1 {
					op = carol
				}
				_, errs[i] = desk.Approve(ctx, race.ID, op, "racing")
			}()
		}
		wg.Wait()
		var won, lost int
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, proposal.ErrConflict):
				lost++
			default:
				t.Errorf("racing approval: %v", err)
			}
		}
		if won != 1 || lost != 3 || runs.Load() != before+1 {
			t.Errorf("race: %d won, %d lost, %d executions; want 1, 3, 1", won, lost, runs.Load()-before)
		}

		all, err := desk.List(ctx, proposal.Filter{})
		if err != nil || len(all) != 5 || all[0].ID != race.ID {
			t.Errorf("list = %d proposals, %v", len(all), err)
		}

		// The audit log names both operators and every refusal.
		events, err := db.SearchAudit(ctx, AuditQuery{Object: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, e := range events {
			steps = append(steps, e.Action+"/"+e.Actor+"/"+e.Outcome)
		}
		for _, want := range []string{"proposal.create/alice/success", "proposal.approve/alice/refused", "proposal.approve/victor/refused",
			"proposal.approve/bob/success", "proposal.execute/bob/success", "proposal.approve/carol/refused"} {
			found := false
			for _, s := range steps {
				found = found || s == want
			}
			if !found {
				t.Errorf("audit of %s lacks %s; has %v", p.ID, want, steps)
			}
		}
		if _, err := db.VerifyAudit(ctx); err != nil {
			t.Error(err)
		}
	})
}

// TestOfflineProposals drives a batch-open proposal (an Offline kind)
// through a proposal.Desk on the real store: approval leaves it approved,
// two completions racing execute it once, and a completion of one not
// approved, expired or rejected is refused with the row unchanged.
func TestOfflineProposals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		clock := &proposalClock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
		desk, err := proposal.New(proposal.Config{Store: db.Proposals(), Now: clock.now, TTL: time.Hour,
			Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: "issue", Offline: true}}})
		if err != nil {
			t.Fatal(err)
		}
		ivy := proposal.Operator{Name: "ivy", Roles: []string{"issue"}}
		ian := proposal.Operator{Name: "ian", Roles: []string{"issue"}}
		officers := []string{"alice", "bob"}
		var runs atomic.Int32
		run := func(proposal.Proposal) (json.RawMessage, error) {
			runs.Add(1)
			return json.RawMessage(`{"batch":"B7"}`), nil
		}
		p, err := desk.Propose(ctx, ivy, proposal.KindBatchOpen, map[string]any{"name": "B7", "quota": 9, "purpose": "new"}, "open B7", "roll-out")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := desk.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrConflict) {
			t.Errorf("completing a pending proposal: %v", err)
		}
		if _, err := desk.Approve(ctx, p.ID, ivy, "mine"); !errors.Is(err, proposal.ErrSelfApproval) {
			t.Errorf("self-approval: %v", err)
		}
		got, err := desk.Approve(ctx, p.ID, ian, "agreed")
		if err != nil || got.State != proposal.StateApproved || got.DecidedBy != "ian" || !got.FinishedAt.IsZero() {
			t.Fatalf("Approve = %+v, %v", got, err)
		}
		if stored, err := db.Proposals().Proposal(ctx, p.ID); err != nil || stored.State != proposal.StateApproved {
			t.Fatalf("stored after approval: %+v, %v", stored, err)
		}
		// Two ceremonies at once: the store's conditional update lets one
		// finish it.
		var wg sync.WaitGroup
		var ok, conflict atomic.Int32
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := desk.Complete(ctx, p.ID, proposal.KindBatchOpen, officers, run)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, proposal.ErrConflict):
					conflict.Add(1)
				default:
					t.Errorf("racing completion: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || conflict.Load() != 1 {
			t.Errorf("racing completions: %d succeeded, %d conflicted", ok.Load(), conflict.Load())
		}
		done, err := db.Proposals().Proposal(ctx, p.ID)
		if err != nil || done.State != proposal.StateExecuted || string(done.Result) != `{"batch":"B7"}` || done.FinishedAt.IsZero() {
			t.Errorf("stored after execution: %+v, %v", done, err)
		}
		q, _ := desk.Propose(ctx, ivy, proposal.KindBatchOpen, map[string]any{"name": "B8"}, "open B8", "roll-out")
		r, _ := desk.Propose(ctx, ivy, proposal.KindBatchOpen, map[string]any{"name": "B9"}, "open B9", "roll-out")
		if _, err := desk.Reject(ctx, r.ID, ian, "no"); err != nil {
			t.Fatal(err)
		}
		clock.add(2 * time.Hour)
		if _, err := desk.Complete(ctx, q.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrExpired) {
			t.Errorf("completing an expired proposal: %v", err)
		}
		if _, err := desk.Complete(ctx, r.ID, proposal.KindBatchOpen, officers, run); !errors.Is(err, proposal.ErrConflict) {
			t.Errorf("completing a rejected proposal: %v", err)
		}
		for id, want := range map[string]proposal.State{q.ID: proposal.StatePending, r.ID: proposal.StateRejected} {
			if s, err := db.Proposals().Proposal(ctx, id); err != nil || s.State != want {
				t.Errorf("%s: %s, %v; want %s", id, s.State, err, want)
			}
		}
		ev, err := db.AuditEvents(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ev {
			if e.Action == "proposal.execute" && e.Outcome == OutcomeSuccess && e.Object == p.ID && e.Actor == "alice,bob" &&
				e.Details["proposer"] == "ivy" && e.Details["approver"] == "ian" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d execution audit entries naming everyone, want 1", n)
		}
	})
}
