package store

// This file is the persistence of package proposal (two-person control,
// decision 023): proposal.Store on both backends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/metertrust/metertrust/proposal"
)

// ProposalStore keeps the proposals of two-person control. It implements
// proposal.Store on SQLite and PostgreSQL. Get one with DB.Proposals.
type ProposalStore struct{ db *DB }

// Proposals returns the store's proposal part.
func (db *DB) Proposals() *ProposalStore { return &ProposalStore{db} }

var _ proposal.Store = (*ProposalStore)(nil)

const proposalColumns = `id, kind, payload, summary, proposer, reason, created_at, expires_at, state,
	decided_by, decided_at, decision_reason, result, finished_at`

func scanProposal(r row) (proposal.Proposal, error) {
	var p proposal.Proposal
	var kind, payload, state, result string
	var created, expires, decided, finished timeCol
	if err := r.Scan(&p.ID, &kind, &payload, &p.Summary, &p.Proposer, &p.Reason, &created, &expires, &state,
		&p.DecidedBy, &decided, &p.DecisionReason, &result, &finished); err != nil {
		return proposal.Proposal{}, err
	}
	p.Kind, p.State, p.Payload = proposal.Kind(kind), proposal.State(state), json.RawMessage(payload)
	if result != "" {
		p.Result = json.RawMessage(result)
	}
	p.CreatedAt, p.ExpiresAt, p.DecidedAt, p.FinishedAt = created.t, expires.t, decided.t, finished.t
	return p, nil
}

func proposalAudit(a proposal.AuditEntry) AuditEvent {
	e := AuditEvent{Time: a.Time, Actor: a.Actor, Action: a.Action, Object: a.Object, Outcome: a.Outcome}
	if a.Details != nil {
		e.Details = make(map[string]any, len(a.Details))
		for k, v := range a.Details {
			e.Details[k] = v
		}
	}
	return e
}

func getProposal(ctx context.Context, tx dbtx, id string) (proposal.Proposal, error) {
	p, err := scanProposal(tx.queryRow(ctx, `SELECT `+proposalColumns+` FROM proposals WHERE id = $1`, id))
	if errors.Is(err, errNoRows) {
		return proposal.Proposal{}, fmt.Errorf("proposal %s: %w", id, proposal.ErrNotFound)
	}
	if err != nil {
		return proposal.Proposal{}, fmt.Errorf("store: reading proposal %s: %w", id, err)
	}
	return p, nil
}

// CreateProposal implements proposal.Store.
func (s *ProposalStore) CreateProposal(ctx context.Context, p proposal.Proposal, a proposal.AuditEntry) error {
	switch {
	case p.ID == "" || p.Kind == "" || p.Proposer == "" || p.Reason == "":
		return fmt.Errorf("%w: a proposal needs an ID, kind, proposer and reason", proposal.ErrInvalid)
	case p.State != proposal.StatePending:
		return fmt.Errorf("%w: a new proposal must be pending, not %s", proposal.ErrInvalid, p.State)
	case !json.Valid(p.Payload):
		return fmt.Errorf("%w: proposal payload is not JSON", proposal.ErrInvalid)
	case !p.ExpiresAt.After(p.CreatedAt):
		return fmt.Errorf("%w: proposal expires at %s, not after its creation at %s", proposal.ErrInvalid, p.ExpiresAt, p.CreatedAt)
	}
	return s.db.inTx(ctx, func(tx dbtx) error {
		_, err := tx.exec(ctx, `INSERT INTO proposals (id, kind, payload, summary, proposer, reason, created_at, expires_at, state)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')`,
			p.ID, string(p.Kind), string(p.Payload), p.Summary, p.Proposer, p.Reason, dbTime(p.CreatedAt), dbTime(p.ExpiresAt))
		if err = classify(err); errors.Is(err, errUnique) {
			return fmt.Errorf("proposal %s: %w", p.ID, ErrExists)
		} else if err != nil {
			return fmt.Errorf("store: recording proposal %s: %w", p.ID, err)
		}
		_, err = appendAuditIn(ctx, tx, proposalAudit(a))
		return err
	})
}

// Proposal implements proposal.Store.
func (s *ProposalStore) Proposal(ctx context.Context, id string) (proposal.Proposal, error) {
	return getProposal(ctx, s.db.read(), id)
}

// Proposals implements proposal.Store: newest first.
func (s *ProposalStore) Proposals(ctx context.Context, f proposal.Filter) ([]proposal.Proposal, error) {
	var where []string
	var args []any
	if f.State != "" {
		args = append(args, string(f.State))
		where = append(where, fmt.Sprintf("state = $%d", len(args)))
	}
	if f.Kind != "" {
		args = append(args, string(f.Kind))
		where = append(where, fmt.Sprintf("kind = $%d", len(args)))
	}
	limit := f.Limit
	if limit <= 0 || limit > proposal.MaxList {
		limit = proposal.DefaultList
	}
	q := `SELECT ` + proposalColumns + ` FROM proposals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args))
	rs, err := s.db.read().query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing proposals: %w", err)
	}
	defer rs.Close()
	var out []proposal.Proposal
	for rs.Next() {
		p, err := scanProposal(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing proposals: %w", err)
		}
		out = append(out, p)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing proposals: %w", err)
	}
	return out, nil
}

// DecideProposal implements proposal.Store: one conditional UPDATE, so of
// two decisions at once exactly one changes the row.
func (s *ProposalStore) DecideProposal(ctx context.Context, d proposal.Decision, a proposal.AuditEntry) (proposal.Proposal, error) {
	if d.To != proposal.StateApproved && d.To != proposal.StateRejected {
		return proposal.Proposal{}, fmt.Errorf("%w: a decision moves a proposal to approved or rejected, not %q", proposal.ErrInvalid, d.To)
	}
	if d.By == "" || d.At.IsZero() {
		return proposal.Proposal{}, fmt.Errorf("%w: a decision needs who and when", proposal.ErrInvalid)
	}
	var out proposal.Proposal
	err := s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE proposals SET state = $2, decided_by = $3, decided_at = $4, decision_reason = $5
			WHERE id = $1 AND state = 'pending' AND expires_at > $4`, d.ID, string(d.To), d.By, dbTime(d.At), d.Reason)
		if err != nil {
			return fmt.Errorf("store: deciding proposal %s: %w", d.ID, err)
		}
		if n == 0 {
			cur, err := getProposal(ctx, tx, d.ID)
			if err != nil {
				return err
			}
			if cur.State == proposal.StatePending || cur.State == proposal.StateExpired {
				return fmt.Errorf("proposal %s expired at %s: %w", d.ID, cur.ExpiresAt.Format(time.RFC3339), proposal.ErrExpired)
			}
			return fmt.Errorf("proposal %s is already %s (by %s): %w", d.ID, cur.State, cur.DecidedBy, proposal.ErrConflict)
		}
		if _, err := appendAuditIn(ctx, tx, proposalAudit(a)); err != nil {
			return err
		}
		out, err = getProposal(ctx, tx, d.ID)
		return err
	})
	if err != nil {
		return proposal.Proposal{}, err
	}
	return out, nil
}

// FinishProposal implements proposal.Store.
func (s *ProposalStore) FinishProposal(ctx context.Context, id string, to proposal.State, result json.RawMessage, at time.Time, a proposal.AuditEntry) (proposal.Proposal, error) {
	if to != proposal.StateExecuted && to != proposal.StateFailed {
		return proposal.Proposal{}, fmt.Errorf("%w: an approved proposal finishes executed or failed, not %q", proposal.ErrInvalid, to)
	}
	if len(result) > 0 && !json.Valid(result) {
		return proposal.Proposal{}, fmt.Errorf("%w: proposal result is not JSON", proposal.ErrInvalid)
	}
	var out proposal.Proposal
	err := s.db.inTx(ctx, func(tx dbtx) error {
		n, err := tx.exec(ctx, `UPDATE proposals SET state = $2, result = $3, finished_at = $4 WHERE id = $1 AND state = 'approved'`,
			id, string(to), string(result), dbTime(at))
		if err != nil {
			return fmt.Errorf("store: finishing proposal %s: %w", id, err)
		}
		if n == 0 {
			cur, err := getProposal(ctx, tx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("proposal %s is %s, not approved: %w", id, cur.State, proposal.ErrConflict)
		}
		if _, err := appendAuditIn(ctx, tx, proposalAudit(a)); err != nil {
			return err
		}
		out, err = getProposal(ctx, tx, id)
		return err
	})
	if err != nil {
		return proposal.Proposal{}, err
	}
	return out, nil
}

// ExpireProposals implements proposal.Store.
func (s *ProposalStore) ExpireProposals(ctx context.Context, now time.Time, actor string) ([]proposal.Proposal, error) {
	var out []proposal.Proposal
	err := s.db.inTx(ctx, func(tx dbtx) error {
		out = nil
		rs, err := tx.query(ctx, `UPDATE proposals SET state = 'expired' WHERE state = 'pending' AND expires_at <= $1
			RETURNING `+proposalColumns, dbTime(now))
		if err != nil {
			return fmt.Errorf("store: expiring proposals: %w", err)
		}
		for rs.Next() {
			p, err := scanProposal(rs)
			if err != nil {
				rs.Close()
				return fmt.Errorf("store: expiring proposals: %w", err)
			}
			out = append(out, p)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("store: expiring proposals: %w", err)
		}
		es := make([]AuditEvent, len(out))
		for i, p := range out {
			es[i] = AuditEvent{Time: dbTime(now), Actor: actor, Action: "proposal.expire", Object: p.ID, Outcome: OutcomeSuccess,
				Details: map[string]any{"kind": string(p.Kind), "proposer": p.Proposer, "summary": p.Summary,
					"expiresAt": p.ExpiresAt.Format(time.RFC3339)}}
		}
		_, err = appendAuditsIn(ctx, tx, es)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendProposalAudit implements proposal.Store with DB.AppendAudit.
func (s *ProposalStore) AppendProposalAudit(ctx context.Context, a proposal.AuditEntry) error {
	_, err := s.db.AppendAudit(ctx, proposalAudit(a))
	return err
}
