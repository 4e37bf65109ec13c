// Package proposaltest provides an in-memory proposal.Store for tests of
// the packages that use two-person control.
package proposaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/metertrust/metertrust/proposal"
)

// Store is an in-memory proposal.Store. Its zero value is ready to use and
// safe for concurrent use; decisions are conditional under one lock, as
// the real store's conditional UPDATE.
type Store struct {
	mu    sync.Mutex
	ps    map[string]proposal.Proposal
	audit []proposal.AuditEntry
}

var _ proposal.Store = (*Store)(nil)

// Audit returns the audit entries appended so far.
func (s *Store) Audit() []proposal.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

// CreateProposal implements proposal.Store.
func (s *Store) CreateProposal(_ context.Context, p proposal.Proposal, a proposal.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps == nil {
		s.ps = map[string]proposal.Proposal{}
	}
	if _, ok := s.ps[p.ID]; ok {
		return fmt.Errorf("proposal %s exists: %w", p.ID, proposal.ErrConflict)
	}
	s.ps[p.ID] = p
	s.audit = append(s.audit, a)
	return nil
}

// Proposal implements proposal.Store.
func (s *Store) Proposal(_ context.Context, id string) (proposal.Proposal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ps[id]
	if !ok {
		return proposal.Proposal{}, fmt.Errorf("proposal %s: %w", id, proposal.ErrNotFound)
	}
	return p, nil
}

// Proposals implements proposal.Store.
func (s *Store) Proposals(_ context.Context, f proposal.Filter) ([]proposal.Proposal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []proposal.Proposal
	for _, p := range s.ps {
		if (f.State == "" || p.State == f.State) && (f.Kind == "" || p.Kind == f.Kind) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b proposal.Proposal) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
	limit := f.Limit
	if limit <= 0 {
		limit = proposal.DefaultList
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DecideProposal implements proposal.Store.
func (s *Store) DecideProposal(_ context.Context, d proposal.Decision, a proposal.AuditEntry) (proposal.Proposal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ps[d.ID]
	switch {
	case !ok:
		return proposal.Proposal{}, fmt.Errorf("proposal %s: %w", d.ID, proposal.ErrNotFound)
	case (p.State == proposal.StatePending && !d.At.Before(p.ExpiresAt)) || p.State == proposal.StateExpired:
		return proposal.Proposal{}, fmt.Errorf("proposal %s: %w", d.ID, proposal.ErrExpired)
	case p.State != proposal.StatePending:
		return proposal.Proposal{}, fmt.Errorf("proposal %s is %s: %w", d.ID, p.State, proposal.ErrConflict)
	}
	p.State, p.DecidedBy, p.DecidedAt, p.DecisionReason = d.To, d.By, d.At, d.Reason
	s.ps[d.ID] = p
	s.audit = append(s.audit, a)
	return p, nil
}

// FinishProposal implements proposal.Store.
func (s *Store) FinishProposal(_ context.Context, id string, to proposal.State, result json.RawMessage, at time.Time, a proposal.AuditEntry) (proposal.Proposal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ps[id]
	if !ok || p.State != proposal.StateApproved {
		return proposal.Proposal{}, fmt.Errorf("proposal %s is not approved: %w", id, proposal.ErrConflict)
	}
	p.State, p.Result, p.FinishedAt = to, result, at
	s.ps[id] = p
	s.audit = append(s.audit, a)
	return p, nil
}

// ExpireProposals implements proposal.Store.
func (s *Store) ExpireProposals(_ context.Context, now time.Time, actor string) ([]proposal.Proposal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []proposal.Proposal
	for id, p := range s.ps {
		if p.State == proposal.StatePending && !now.Before(p.ExpiresAt) {
			p.State = proposal.StateExpired
			s.ps[id] = p
			out = append(out, p)
			s.audit = append(s.audit, proposal.AuditEntry{Time: now, Actor: actor, Action: "proposal.expire", Object: id, Outcome: proposal.OutcomeSuccess})
		}
	}
	return out, nil
}

// AppendProposalAudit implements proposal.Store.
func (s *Store) AppendProposalAudit(_ context.Context, a proposal.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, a)
	return nil
}
