package proposal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of package proposal, usable with errors.Is. Returned
// errors wrap them with what failed.
var (
	// ErrInvalid is a malformed proposal, reason, filter or argument.
	ErrInvalid = errors.New("proposal: invalid")
	// ErrForbidden is an operator proposing, approving or rejecting a kind
	// its roles do not cover.
	ErrForbidden = errors.New("proposal: forbidden")
	// ErrSelfApproval is the proposer approving its own proposal: a
	// second, different operator must approve.
	ErrSelfApproval = errors.New("proposal: the proposer may not approve its own proposal")
	// ErrNotFound is an unknown proposal ID.
	ErrNotFound = errors.New("proposal: not found")
	// ErrConflict is a proposal no longer pending: approved, rejected or
	// failed already (another operator decided first).
	ErrConflict = errors.New("proposal: not pending")
	// ErrExpired is a proposal whose time to be approved has passed.
	ErrExpired = errors.New("proposal: expired")
)

// Kind is what a proposal proposes.
type Kind string

// The kinds.
const (
	// KindBulkRelease releases several quarantined commands at once.
	KindBulkRelease Kind = "bulk-release"
	// KindBulkDelete deletes several quarantined commands at once.
	KindBulkDelete Kind = "bulk-delete"
	// KindThresholdLoosen sets a DCC threshold looser than the current one
	// (a higher limit, a longer window, a sliding window made fixed, a
	// changed scope).
	KindThresholdLoosen Kind = "threshold-loosen"
	// KindThresholdDelete deletes a DCC threshold.
	KindThresholdDelete Kind = "threshold-delete"
	// KindBatchOpen opens a device-CA issuance batch: proposed and approved
	// in the CA service (serve ca), executed offline at the batch ceremony
	// (ca batch open --proposal), which alone holds the root key.
	KindBatchOpen Kind = "batch-open"
)

// Kinds lists every kind.
func Kinds() []Kind {
	return []Kind{KindBulkRelease, KindBulkDelete, KindThresholdLoosen, KindThresholdDelete, KindBatchOpen}
}

// ParseKind accepts a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: proposal kind %q (want bulk-release, bulk-delete, threshold-loosen, threshold-delete or batch-open)", ErrInvalid, s)
}

// State is where a proposal is in its life.
type State string

// The states. A proposal is created pending; approval moves it to approved
// (in one conditional update: one approval wins), and the execution of its
// action then to executed or failed. A proposal of an Offline kind
// (batch-open) stays approved until the offline ceremony executes it;
// another stays approved only if the process stopped while executing it:
// its outcome is then in the audit log of the action.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateExecuted State = "executed"
	StateFailed   State = "failed"
	StateRejected State = "rejected"
	StateExpired  State = "expired"
)

// ParseState accepts a state name.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StatePending, StateApproved, StateExecuted, StateFailed, StateRejected, StateExpired:
		return st, nil
	}
	return "", fmt.Errorf("%w: proposal state %q (want pending, approved, executed, failed, rejected or expired)", ErrInvalid, s)
}

// Proposal is one proposed action awaiting, or past, a second operator's
// decision.
type Proposal struct {
	// ID identifies the proposal ("P-" and 16 base32 characters).
	ID string `json:"id"`
	// Kind is what is proposed.
	Kind Kind `json:"kind"`
	// Payload is the exact action, as the kind's Executor reads it: what
	// the approver approves is what is executed.
	Payload json.RawMessage `json:"payload"`
	// Summary describes the action in one line, for lists.
	Summary string `json:"summary"`
	// Proposer names the operator who proposed it; Reason is why.
	Proposer string `json:"proposer"`
	Reason   string `json:"reason"`
	// CreatedAt is when it was proposed; ExpiresAt when it can no longer
	// be approved.
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// State is where it is.
	State State `json:"state"`
	// DecidedBy names the operator who approved or rejected it, DecidedAt
	// when, DecisionReason why.
	DecidedBy      string    `json:"decidedBy,omitempty"`
	DecidedAt      time.Time `json:"decidedAt,omitzero"`
	DecisionReason string    `json:"decisionReason,omitempty"`
	// Result is the outcome of the execution: the executor's result when
	// executed, the error when failed.
	Result json.RawMessage `json:"result,omitempty"`
	// FinishedAt is when the execution ended.
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Open reports whether p can still be decided at now: pending and before
// its expiry.
func (p Proposal) Open(now time.Time) bool { return p.State == StatePending && now.Before(p.ExpiresAt) }

// Filter selects proposals to list.
type Filter struct {
	// State, if set, selects one state; Kind one kind.
	State State
	Kind  Kind
	// Limit bounds the number returned (DefaultList when zero).
	Limit int
}

// List bounds.
const (
	DefaultList = 100
	MaxList     = 1000
)

// AuditEntry is an audit log entry of a proposal step, appended by the
// Store in the same transaction as the step.
type AuditEntry struct {
	Time    time.Time
	Actor   string
	Action  string
	Object  string
	Outcome string
	Details map[string]any
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeRefused = "refused"
	OutcomeFailure = "failure"
)

// Decision is an approval or a rejection for the Store to record.
type Decision struct {
	ID     string
	To     State // StateApproved or StateRejected
	By     string
	At     time.Time
	Reason string
}

// Store keeps proposals. *store.ProposalStore implements it on SQLite and
// PostgreSQL.
type Store interface {
	// CreateProposal records p (pending), with the audit entry a.
	CreateProposal(ctx context.Context, p Proposal, a AuditEntry) error
	// Proposal returns the proposal id (ErrNotFound if none).
	Proposal(ctx context.Context, id string) (Proposal, error)
	// Proposals returns the proposals f selects, newest first.
	Proposals(ctx context.Context, f Filter) ([]Proposal, error)
	// DecideProposal moves the proposal d.ID from pending to d.To if it is
	// pending and expires after d.At, in one conditional update, with the
	// audit entry a, and returns it as decided. A proposal no longer
	// pending gives ErrConflict; one pending but expired, ErrExpired.
	DecideProposal(ctx context.Context, d Decision, a AuditEntry) (Proposal, error)
	// FinishProposal moves the approved proposal id to executed or failed
	// with result, at at, with the audit entry a.
	FinishProposal(ctx context.Context, id string, to State, result json.RawMessage, at time.Time, a AuditEntry) (Proposal, error)
	// ExpireProposals moves every pending proposal expiring at or before
	// now to expired, appends an audit entry for each, and returns them.
	ExpireProposals(ctx context.Context, now time.Time, actor string) ([]Proposal, error)
	// AppendProposalAudit appends a (a refusal) to the audit log.
	AppendProposalAudit(ctx context.Context, a AuditEntry) error
}
