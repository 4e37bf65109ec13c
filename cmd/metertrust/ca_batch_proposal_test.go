package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/store"
)

// TestBatchOpenProposal runs the batch ceremony on a batch-open proposal
// approved as the CA service approves it (ivy proposes, ian approves): the
// ceremony opens exactly that batch and marks the proposal executed;
// a pending, expired, rejected or executed proposal, or flags that differ
// from it, are refused, audited, and open nothing.
func TestBatchOpenProposal(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mustRun(t, "ca", "init", "--data", data)
	ctx := context.Background()
	withDesk := func(now time.Time, fn func(*store.DB, *proposal.Desk)) {
		t.Helper()
		db, err := store.Open(ctx, filepath.Join(data, "metertrust.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		d, err := proposal.New(proposal.Config{Store: db.Proposals(), Now: func() time.Time { return now },
			Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: string(operator.RoleIssue), Offline: true}}})
		if err != nil {
			t.Fatal(err)
		}
		fn(db, d)
	}
	ivy := proposal.Operator{Name: "ivy", Roles: []string{string(operator.RoleIssue)}}
	ian := proposal.Operator{Name: "ian", Roles: []string{string(operator.RoleIssue)}}
	propose := func(now time.Time, name string) (id string) {
		withDesk(now, func(_ *store.DB, d *proposal.Desk) {
			p, err := d.Propose(ctx, ivy, proposal.KindBatchOpen, ca.BatchProposal{Name: name, Quota: 7, Purpose: "rekey"}, "open "+name, "roll-out")
			if err != nil {
				t.Fatal(err)
			}
			id = p.ID
		})
		return id
	}
	decide := func(id string, approve bool) {
		withDesk(time.Now(), func(_ *store.DB, d *proposal.Desk) {
			var err error
			if approve {
				_, err = d.Approve(ctx, id, ian, "agreed")
			} else {
				_, err = d.Reject(ctx, id, ian, "not now")
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	open := func(args ...string) error {
		_, err := run(t, append([]string{"ca", "batch", "open", "--data", data}, args...)...)
		return err
	}

	pw := officerPassword + "\n"
	if _, err := runIn(t, pw+pw, "ca", "batch", "open", "--data", data, "--name", "X1", "--quota", "3",
		"--operators", officersFile(t), "--officer", "alice", "--officer", "bob"); err == nil || !strings.Contains(err.Error(), "--proposal") {
		t.Errorf("a batch with no proposal and no --no-proposal: %v", err)
	}

	id := propose(time.Now(), "RK9")
	if err := open("--proposal", id); !errors.Is(err, proposal.ErrConflict) {
		t.Errorf("a pending proposal: %v, want ErrConflict", err)
	}
	decide(id, true)
	for name, args := range map[string][]string{
		"another name":    {"--name", "RK8"},
		"another quota":   {"--quota", "8"},
		"another purpose": {"--purpose", "new"},
	} {
		if err := open(append([]string{"--proposal", id}, args...)...); !errors.Is(err, ca.ErrRequest) || !strings.Contains(err.Error(), "approved for another batch") {
			t.Errorf("%s: %v", name, err)
		}
	}
	out := mustRun(t, "ca", "batch", "open", "--data", data, "--proposal", id, "--name", "RK9", "--quota", "7", "--purpose", "rekey")
	if strings.TrimSpace(out) != "RK9" {
		t.Errorf("batch open printed %q", out)
	}
	if err := open("--proposal", id); !errors.Is(err, proposal.ErrConflict) {
		t.Errorf("an executed proposal: %v, want ErrConflict", err)
	}
	expired := propose(time.Now().Add(-2*proposal.DefaultTTL), "RK10")
	if err := open("--proposal", expired); !errors.Is(err, proposal.ErrExpired) {
		t.Errorf("an expired proposal: %v, want ErrExpired", err)
	}
	rejected := propose(time.Now(), "RK11")
	decide(rejected, false)
	if err := open("--proposal", rejected); !errors.Is(err, proposal.ErrConflict) {
		t.Errorf("a rejected proposal: %v, want ErrConflict", err)
	}
	if err := open("--proposal", "P-NOSUCH"); !errors.Is(err, proposal.ErrNotFound) {
		t.Errorf("an unknown proposal: %v", err)
	}

	withDesk(time.Now(), func(db *store.DB, d *proposal.Desk) {
		p, err := d.Get(ctx, id)
		if err != nil || p.State != proposal.StateExecuted || !strings.Contains(string(p.Result), `"batch":"RK9"`) {
			t.Errorf("the proposal after the ceremony: %+v, %v", p, err)
		}
		rec, err := db.SMKI().CA(ctx, "RK9")
		if err != nil || rec.Quota != 7 || rec.Purpose != ca.PurposeRekey {
			t.Errorf("batch RK9: %+v, %v", rec, err)
		}
		for _, n := range []string{"RK8", "RK10", "RK11"} {
			if _, err := db.SMKI().CA(ctx, n); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("batch %s was opened: %v", n, err)
			}
		}
		events, err := db.AuditEvents(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		var executed store.AuditEvent
		refused, failed := 0, 0
		for _, e := range events {
			switch {
			case e.Action == "proposal.execute" && e.Outcome == store.OutcomeSuccess:
				executed = e
			case e.Action == "proposal.execute" && e.Outcome == store.OutcomeRefused:
				refused++
			case e.Action == "proposal.execute" && e.Outcome == store.OutcomeFailure:
				failed++
			}
		}
		if executed.Object != id || executed.Actor != "alice,bob" || executed.Details["proposer"] != "ivy" || executed.Details["approver"] != "ian" {
			t.Errorf("execution audit %+v", executed)
		}
		if refused != 5 || failed != 3 {
			t.Errorf("%d refusals and %d failures audited, want 5 and 3", refused, failed)
		}
	})
}
