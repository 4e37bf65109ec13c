package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/store"
)

// batchFlags are the batch parameters given on the command line of "ca
// batch open --proposal": each given one must agree with the proposal.
type batchFlags struct {
	name, purpose        string
	quota                int64
	quotaSet, purposeSet bool
}

// batchDesk is the proposal desk of the batch ceremony: batch-open only,
// executed offline.
func batchDesk(e *caEnv) (*proposal.Desk, error) {
	return proposal.New(proposal.Config{Store: e.db.Proposals(),
		Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: string(operator.RoleIssue), Offline: true}}})
}

// openProposedBatch opens the batch of the approved batch-open proposal id,
// as the ceremony's officers, and marks the proposal executed, audited
// (proposal.execute, naming the proposer, the approver and the officers).
// A proposal not approved, or flags that disagree with it, are refused
// and audited; the proposal is then unchanged.
func openProposedBatch(ctx context.Context, e *caEnv, id string, given batchFlags) (ca.CAInfo, error) {
	desk, err := batchDesk(e)
	if err != nil {
		return ca.CAInfo{}, err
	}
	var info ca.CAInfo
	_, err = desk.Complete(ctx, id, proposal.KindBatchOpen, e.officers, func(p proposal.Proposal) (json.RawMessage, error) {
		var b ca.BatchProposal
		dec := json.NewDecoder(bytes.NewReader(p.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return nil, fmt.Errorf("%w: proposal %s: reading its batch: %v", ca.ErrRequest, id, err)
		}
		if err := b.Check(); err != nil {
			return nil, fmt.Errorf("proposal %s: %w", id, err)
		}
		var differ []string
		if given.name != "" && given.name != b.Name {
			differ = append(differ, fmt.Sprintf("--name %s (proposed %s)", given.name, b.Name))
		}
		if given.quotaSet && given.quota != b.Quota {
			differ = append(differ, fmt.Sprintf("--quota %d (proposed %d)", given.quota, b.Quota))
		}
		if given.purposeSet && given.purpose != b.Purpose {
			differ = append(differ, fmt.Sprintf("--purpose %s (proposed %s)", given.purpose, b.Purpose))
		}
		if len(differ) > 0 {
			return nil, fmt.Errorf("%w: proposal %s was approved for another batch: %s", ca.ErrRequest, id, strings.Join(differ, ", "))
		}
		purpose, err := ca.BatchPurpose(b.Purpose)
		if err != nil {
			return nil, err
		}
		if info, err = e.auth.OpenBatchFor(ctx, b.Name, b.Quota, purpose); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"batch": info.Name, "serial": info.Serial, "quota": b.Quota, "purpose": b.Purpose,
			"officers": strings.Join(e.officers, ",")})
	})
	if err != nil {
		return ca.CAInfo{}, fmt.Errorf("ca batch open --proposal %s: %w", id, err)
	}
	return info, nil
}

// openUnproposedBatch opens a batch from the flags without a proposal
// (--no-proposal REASON: the very first batch, before the CA service runs),
// auditing the reason durably first.
func openUnproposedBatch(ctx context.Context, e *caEnv, name string, quota int64, purpose, reason string) (ca.CAInfo, error) {
	p, err := ca.BatchPurpose(purpose)
	if err != nil {
		return ca.CAInfo{}, err
	}
	officers := strings.Join(e.officers, ",")
	if _, err := e.db.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Actor: officers, Action: "ca.batch.open.unproposed",
		Object: name, Outcome: store.OutcomeAttempt, Details: map[string]any{"reason": reason, "quota": quota, "purpose": purpose,
			"officers": officers}}); err != nil {
		return ca.CAInfo{}, fmt.Errorf("writing the audit log: %w", err)
	}
	return e.auth.OpenBatchFor(ctx, name, quota, p)
}
