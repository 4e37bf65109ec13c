package ra_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/store"
)

// TestBatchProposals has carol propose a batch through the CA service and
// dave approve it: the proposal is then approved, awaiting the offline
// ceremony, and no CA was opened. Every refusal is typed and audited and
// leaves the proposal as it was.
func TestBatchProposals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	seq := w.lastSeq()
	propose := func(op, name string) (int, proposal.Proposal, string) {
		t.Helper()
		var p proposal.Proposal
		code, prob := w.call(w.client, "POST", "/v1/proposals", op,
			ra.BatchProposalRequest{Kind: "batch-open", Name: name, Quota: 500, Purpose: "rekey", Reason: "spring roll-out"}, &p)
		return code, p, prob.Code + " " + prob.Detail
	}
	decide := func(op, id, verb, reason string) (int, proposal.Proposal, string) {
		t.Helper()
		var p proposal.Proposal
		code, prob := w.call(w.client, "POST", "/v1/proposals/"+id+"/"+verb, op, ra.ProposalDecision{Reason: reason}, &p)
		return code, p, prob.Code
	}

	code, p, prob := propose("carol", "B2")
	if code != http.StatusAccepted || p.State != proposal.StatePending || p.Kind != proposal.KindBatchOpen || p.Proposer != "carol" {
		t.Fatalf("propose: %d %+v %s", code, p, prob)
	}
	if got := string(p.Payload); got != `{"name":"B2","quota":500,"purpose":"rekey"}` {
		t.Errorf("payload %s", got)
	}

	// The refusals of a proposal.
	for _, tc := range []struct {
		name, op string
		body     any
		want     int
	}{
		{"viewer", "bob", ra.BatchProposalRequest{Kind: "batch-open", Name: "B3", Quota: 1, Reason: "r"}, http.StatusForbidden},
		{"no token", "", ra.BatchProposalRequest{Kind: "batch-open", Name: "B3", Quota: 1, Reason: "r"}, http.StatusUnauthorized},
		{"another kind", "carol", ra.BatchProposalRequest{Kind: "bulk-delete", Name: "B3", Quota: 1, Reason: "r"}, http.StatusBadRequest},
		{"no reason", "carol", ra.BatchProposalRequest{Kind: "batch-open", Name: "B3", Quota: 1}, http.StatusBadRequest},
		{"zero quota", "carol", ra.BatchProposalRequest{Kind: "batch-open", Name: "B3", Reason: "r"}, http.StatusBadRequest},
		{"bad purpose", "carol", ra.BatchProposalRequest{Kind: "batch-open", Name: "B3", Quota: 1, Purpose: "all", Reason: "r"}, http.StatusBadRequest},
		{"reserved name", "carol", ra.BatchProposalRequest{Kind: "batch-open", Name: "root", Quota: 1, Reason: "r"}, http.StatusBadRequest},
		{"existing batch", "carol", ra.BatchProposalRequest{Kind: "batch-open", Name: batch, Quota: 1, Reason: "r"}, http.StatusConflict},
		{"unknown field", "carol", `{"kind":"batch-open","name":"B3","quota":1,"reason":"r","validity":"1y"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, prob := w.call(w.client, "POST", "/v1/proposals", tc.op, tc.body, nil); code != tc.want {
				t.Errorf("%d %+v, want %d", code, prob, tc.want)
			}
		})
	}

	// The refusals of an approval, each leaving it pending.
	for _, tc := range []struct {
		name, op, reason string
		want             int
		code             string
	}{
		{"self-approval", "carol", "looks fine", http.StatusForbidden, "self-approval"},
		{"wrong role", "bob", "looks fine", http.StatusForbidden, ""},
		{"no reason", "dave", "", http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, c := decide(tc.op, p.ID, "approve", tc.reason); code != tc.want || c != tc.code {
				t.Errorf("%d %q, want %d %q", code, c, tc.want, tc.code)
			}
		})
	}
	if code, _, _ := decide("dave", "P-UNKNOWN", "approve", "ok"); code != http.StatusNotFound {
		t.Errorf("approving an unknown proposal: %d", code)
	}
	var got proposal.Proposal
	if code, _ := w.call(w.client, "GET", "/v1/proposals/"+p.ID, "alice", nil, &got); code != http.StatusOK || got.State != proposal.StatePending {
		t.Fatalf("after the refusals: %d %+v", code, got)
	}

	code, got, _ = decide("dave", p.ID, "approve", "agreed with the supply plan")
	if code != http.StatusOK || got.State != proposal.StateApproved || got.DecidedBy != "dave" || len(got.Result) != 0 {
		t.Fatalf("approve: %d %+v", code, got)
	}
	if _, err := w.db.SMKI().CA(ctx, "B2"); err == nil {
		t.Error("approval opened the batch online; it must wait for the ceremony")
	}
	// Double approval, and a rejection after approval.
	if code, _, _ := decide("alice", p.ID, "approve", "me too"); code != http.StatusConflict {
		t.Errorf("second approval: %d, want 409", code)
	}
	if code, _, _ := decide("alice", p.ID, "reject", "changed my mind"); code != http.StatusConflict {
		t.Errorf("rejection after approval: %d, want 409", code)
	}

	// Expiry: a proposal nobody decided in time.
	_, q, _ := propose("carol", "B4")
	w.skew.Store(int64(proposal.DefaultTTL + time.Minute))
	if code, _, c := decide("dave", q.ID, "approve", "late"); code != http.StatusConflict || c != "proposal-expired" {
		t.Errorf("approving an expired proposal: %d %q", code, c)
	}
	// Rejection (the proposer may withdraw).
	_, r, _ := propose("carol", "B5")
	if code, got, _ := decide("carol", r.ID, "reject", "withdrawn"); code != http.StatusOK || got.State != proposal.StateRejected {
		t.Errorf("withdrawal: %d %+v", code, got)
	}

	var list ra.ProposalList
	if code, _ := w.call(w.client, "GET", "/v1/proposals?kind=batch-open", "carol", nil, &list); code != http.StatusOK || len(list.Items) != 3 {
		t.Fatalf("list: %d %+v", code, list)
	}
	states := map[string]proposal.State{}
	for _, it := range list.Items {
		states[it.ID] = it.State
	}
	if states[p.ID] != proposal.StateApproved || states[q.ID] != proposal.StateExpired || states[r.ID] != proposal.StateRejected {
		t.Errorf("states %v", states)
	}
	if code, _ := w.call(w.client, "GET", "/v1/proposals?state=done", "carol", nil, nil); code != http.StatusBadRequest {
		t.Errorf("list with a bad state: %d", code)
	}
	if code, _ := w.call(w.client, "GET", "/v1/proposals", "bob", nil, nil); code != http.StatusForbidden {
		t.Errorf("list as a viewer: %d", code)
	}

	// The audit log names both operators, and every refusal.
	var trail []string
	var approval store.AuditEvent
	for _, e := range w.audit(seq) {
		if strings.HasPrefix(e.Action, "proposal.") {
			trail = append(trail, e.Action+"/"+e.Outcome+"/"+e.Actor)
		}
		if e.Action == "proposal.approve" && e.Outcome == "success" {
			approval = e
		}
	}
	if approval.Actor != "dave" || approval.Details["proposer"] != "carol" || approval.Object != p.ID {
		t.Errorf("approval audit %+v", approval)
	}
	joined := strings.Join(trail, " ")
	for _, want := range []string{"proposal.create/success/carol", "proposal.create/refused/bob", "proposal.approve/refused/carol",
		"proposal.approve/refused/bob", "proposal.approve/success/dave", "proposal.approve/refused/alice", "proposal.reject/refused/alice",
		"proposal.expire/success/system", "proposal.reject/success/carol"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit trail lacks %s:\n%s", want, joined)
		}
	}
}
