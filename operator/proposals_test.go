package operator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/store/storetest"
)

func backendsWithMemory() []string { return append([]string{"memory"}, storetest.Dialects()...) }

func decodeProposal(t *testing.T, b []byte) proposal.Proposal {
	t.Helper()
	var p proposal.Proposal
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("not a proposal: %v: %s", err, b)
	}
	return p
}

// TestBulkProposals runs two-person control of bulk decisions through the
// API on every backend: a bulk release is proposed (202), refused to its
// proposer, to an operator without the role, approved by a second officer
// and executed (each command released and forwarded, audited with both
// names); a second approval conflicts; a bulk delete expires unapproved.
func TestBulkProposals(t *testing.T) {
	for _, backend := range backendsWithMemory() {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{ProposalTTL: Duration(time.Hour)})
			refs := []string{f.quarantine(supplier), f.quarantine(supplier2)}
			body := fmt.Sprintf(`{"refs":[%q,%q],"reason":"supplier confirmed the storm"}`, refs[0], refs[1])

			for _, tc := range []struct {
				name, token, body string
				want              int
			}{
				{"one ref", officerToken, fmt.Sprintf(`{"refs":[%q],"reason":"x"}`, refs[0]), 400},
				{"twice the same", officerToken, fmt.Sprintf(`{"refs":[%q,%q],"reason":"x"}`, refs[0], refs[0]), 400},
				{"unknown ref", officerToken, fmt.Sprintf(`{"refs":[%q,"Q-NOPE"],"reason":"x"}`, refs[0]), 404},
				{"no reason", officerToken, fmt.Sprintf(`{"refs":[%q,%q]}`, refs[0], refs[1]), 400},
				{"threshold admin", adminToken, body, 403},
			} {
				if st, b, _ := f.do("POST", "/v1/quarantine/bulk-release", tc.token, tc.body); st != tc.want {
					t.Errorf("%s: %d, want %d: %s", tc.name, st, tc.want, b)
				}
			}

			st, b, _ := f.do("POST", "/v1/quarantine/bulk-release", officerToken, body)
			if st != http.StatusAccepted {
				t.Fatalf("bulk release = %d: %s", st, b)
			}
			p := decodeProposal(t, b)
			if p.Kind != proposal.KindBulkRelease || p.State != proposal.StatePending || p.Proposer != "olga" {
				t.Fatalf("proposal %+v", p)
			}
			if len(f.rel.forwarded()) != 0 {
				t.Fatal("forwarded before approval")
			}
			st, b, _ = f.do("GET", "/v1/proposals?state=pending", viewerToken, "")
			var l ProposalList
			if err := json.Unmarshal(b, &l); st != 200 || err != nil || len(l.Items) != 1 || l.Items[0].ID != p.ID {
				t.Fatalf("pending list = %d %s", st, b)
			}

			approve := "/v1/proposals/" + p.ID + "/approve"
			st, b, _ = f.do("POST", approve, officerToken, `{"reason":"I agree with myself"}`)
			if pr := decodeProblem(t, b); st != 403 || pr.Code != "self-approval" {
				t.Errorf("self-approval = %d %s", st, b)
			}
			if st, b, _ = f.do("POST", approve, adminToken, `{"reason":"ok"}`); st != 403 {
				t.Errorf("approval by a threshold admin = %d %s", st, b)
			}
			if st, b, _ = f.do("POST", approve, viewerToken, `{"reason":"ok"}`); st != 403 {
				t.Errorf("approval by a viewer = %d %s", st, b)
			}
			st, b, _ = f.do("POST", approve, officer2Token, `{"reason":"checked the volumes"}`)
			if st != 200 {
				t.Fatalf("approval = %d %s", st, b)
			}
			done := decodeProposal(t, b)
			var res BulkResult
			if err := json.Unmarshal(done.Result, &res); err != nil || done.State != proposal.StateExecuted || done.DecidedBy != "otis" || res.Done != 2 {
				t.Fatalf("executed %+v, result %s", done, done.Result)
			}
			if got := f.rel.forwarded(); len(got) != 2 {
				t.Errorf("%d commands forwarded, want 2", len(got))
			}
			for _, ref := range refs {
				st, b, _ := f.do("GET", "/v1/quarantine/"+ref, viewerToken, "")
				var q QuarantineView
				if err := json.Unmarshal(b, &q); st != 200 || err != nil || q.State != anomaly.StateReleased ||
					!strings.Contains(q.Reason, "by olga, approved by otis") {
					t.Errorf("%s after approval: %d %s", ref, st, b)
				}
			}
			if st, b, _ = f.do("POST", approve, officer2Token, `{"reason":"again"}`); st != 409 {
				t.Errorf("second approval = %d %s", st, b)
			}
			for _, want := range []struct{ actor, action, outcome string }{
				{"olga", "proposal.create", "success"}, {"olga", "proposal.approve", "refused"}, {"adam", "proposal.approve", "refused"},
				{"otis", "proposal.approve", "success"}, {"otis", "proposal.execute", "success"}, {"otis", "anomaly.release", "success"},
			} {
				if !f.audited(want.actor, want.action, "", want.outcome) {
					t.Errorf("no %s %s by %s in the audit log:\n%s", want.outcome, want.action, want.actor, f.auditDump())
				}
			}

			// A bulk delete nobody approves in time expires.
			more := []string{f.quarantine(supplier), f.quarantine(supplier2)}
			st, b, _ = f.do("POST", "/v1/quarantine/bulk-delete", officerToken, fmt.Sprintf(`{"refs":[%q,%q],"reason":"spoofed"}`, more[0], more[1]))
			if st != 202 {
				t.Fatalf("bulk delete = %d %s", st, b)
			}
			del := decodeProposal(t, b)
			f.clock.advance(time.Hour + time.Second)
			st, b, _ = f.do("POST", "/v1/proposals/"+del.ID+"/approve", officer2Token, `{"reason":"late"}`)
			if pr := decodeProblem(t, b); st != 409 || pr.Code != "proposal-expired" {
				t.Errorf("approval after expiry = %d %s", st, b)
			}
			st, b, _ = f.do("GET", "/v1/proposals/"+del.ID, viewerToken, "")
			if got := decodeProposal(t, b); st != 200 || got.State != proposal.StateExpired {
				t.Errorf("expired proposal = %d %s", st, b)
			}
			for _, ref := range more {
				st, b, _ := f.do("GET", "/v1/quarantine/"+ref, viewerToken, "")
				if st != 200 || !strings.Contains(string(b), `"state":"quarantined"`) {
					t.Errorf("%s after expiry: %d %s", ref, st, b)
				}
			}
		})
	}
}

// TestApprovalRace has several operators approve one proposal at once:
// exactly one approval executes it, the others get 409.
func TestApprovalRace(t *testing.T) {
	for _, backend := range backendsWithMemory() {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{})
			refs := []string{f.quarantine(supplier), f.quarantine(supplier2)}
			st, b, _ := f.do("POST", "/v1/quarantine/bulk-release", officerToken, fmt.Sprintf(`{"refs":[%q,%q],"reason":"storm"}`, refs[0], refs[1]))
			if st != 202 {
				t.Fatalf("bulk release = %d %s", st, b)
			}
			p := decodeProposal(t, b)
			var wg sync.WaitGroup
			codes := make([]int, 6)
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], _, _ = f.do("POST", "/v1/proposals/"+p.ID+"/approve", officer2Token, `{"reason":"race"}`)
				}()
			}
			wg.Wait()
			var ok, conflict int
			for _, c := range codes {
				switch c {
				case 200:
					ok++
				case 409:
					conflict++
				}
			}
			if ok != 1 || conflict != len(codes)-1 || len(f.rel.forwarded()) != 2 {
				t.Errorf("codes %v, %d forwarded; want one 200, the rest 409, 2 forwarded", codes, len(f.rel.forwarded()))
			}
		})
	}
}

// TestThresholdProposals checks that loosening a DCC threshold is
// proposed (202) and applied on a second admin's approval, that
// tightening stays immediate, and that a proposal whose threshold changed
// meanwhile fails rather than overwrite the change.
func TestThresholdProposals(t *testing.T) {
	for _, backend := range backendsWithMemory() {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{})
			get := func() anomaly.Threshold {
				_, b, _ := f.do("GET", "/v1/thresholds/T-srv", viewerToken, "")
				th, err := anomaly.ParseThreshold(b)
				if err != nil {
					t.Fatalf("%v: %s", err, b)
				}
				return th
			}
			st, b, _ := f.do("PUT", "/v1/thresholds/T-srv", adminToken, `{"scope":"user-srv","serviceRef":"11.1","limit":50,"window":"1h"}`)
			if st != 202 {
				t.Fatalf("loosening = %d %s", st, b)
			}
			p := decodeProposal(t, b)
			if p.Kind != proposal.KindThresholdLoosen || get().Limit != 1 {
				t.Fatalf("proposal %+v, threshold %v", p, get())
			}
			if st, b, _ := f.do("POST", "/v1/proposals/"+p.ID+"/approve", officer2Token, `{"reason":"ok"}`); st != 403 {
				t.Errorf("approval by an officer = %d %s", st, b)
			}
			st, b, _ = f.do("POST", "/v1/proposals/"+p.ID+"/approve", admin2Token, `{"reason":"new tariff launch"}`)
			if done := decodeProposal(t, b); st != 200 || done.State != proposal.StateExecuted || get().Limit != 50 {
				t.Fatalf("approval = %d %s; threshold %v", st, b, get())
			}
			if !f.audited("abe", "anomaly.threshold.set", "T-srv", "success") {
				t.Errorf("approved change not audited:\n%s", f.auditDump())
			}

			// Tightening stays immediate.
			if st, b, _ := f.do("PUT", "/v1/thresholds/T-srv", adminToken, `{"scope":"user-srv","serviceRef":"11.1","limit":20,"window":"2h"}`); st != 200 {
				t.Fatalf("tightening = %d %s", st, b)
			}
			// A loosening proposed, then the threshold changed: approval fails.
			st, b, _ = f.do("PUT", "/v1/thresholds/T-srv", adminToken, `{"scope":"user-srv","serviceRef":"11.1","limit":40,"window":"2h"}`)
			if st != 202 {
				t.Fatalf("second loosening = %d %s", st, b)
			}
			stale := decodeProposal(t, b)
			if st, b, _ := f.do("PUT", "/v1/thresholds/T-srv", adminToken, `{"scope":"user-srv","serviceRef":"11.1","limit":10,"window":"2h"}`); st != 200 {
				t.Fatalf("tightening = %d %s", st, b)
			}
			st, b, _ = f.do("POST", "/v1/proposals/"+stale.ID+"/approve", admin2Token, `{"reason":"ok"}`)
			if got := decodeProposal(t, b); st != 200 || got.State != proposal.StateFailed || get().Limit != 10 {
				t.Errorf("stale approval = %d %s; threshold %v", st, b, get())
			}

			// Deleting is proposed; rejection leaves it.
			st, b, _ = f.do("DELETE", "/v1/thresholds/T-srv", adminToken, `{"reason":"superseded"}`)
			if st != 202 {
				t.Fatalf("delete = %d %s", st, b)
			}
			del := decodeProposal(t, b)
			if st, b, _ := f.do("POST", "/v1/proposals/"+del.ID+"/reject", admin2Token, `{"reason":"still needed"}`); st != 200 ||
				decodeProposal(t, b).State != proposal.StateRejected {
				t.Errorf("reject = %d %s", st, b)
			}
			if st, _, _ := f.do("GET", "/v1/thresholds/T-srv", viewerToken, ""); st != 200 {
				t.Errorf("threshold gone after rejection: %d", st)
			}
			if !f.audited("abe", "proposal.reject", del.ID, "success") {
				t.Errorf("rejection not audited:\n%s", f.auditDump())
			}
		})
	}
}
