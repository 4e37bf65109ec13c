package operator

// This file is the operator API's part of two-person control (decision
// 023): bulk release and delete, and loosening or deleting a DCC
// threshold, become proposals that a second operator approves; approval
// executes them here.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/internal/trunc"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/proposal"
)

// MaxBulk bounds the quarantined commands of one bulk proposal.
const MaxBulk = 500

// BulkRequest is the body of POST /v1/quarantine/bulk-release and
// bulk-delete: two or more quarantine references and the proposer's
// reason.
type BulkRequest struct {
	Refs   []string `json:"refs"`
	Reason string   `json:"reason"`
}

// BulkPayload is the action of a bulk-release or bulk-delete proposal.
type BulkPayload struct {
	Refs []string `json:"refs"`
}

// ThresholdPayload is the action of a threshold-loosen or
// threshold-delete proposal: the threshold as it stood when proposed
// (Current) and, for a loosening, the threshold to set (Next). On approval
// the change is applied only if the threshold still is Current.
type ThresholdPayload struct {
	ID      string             `json:"id"`
	Current anomaly.Threshold  `json:"current"`
	Next    *anomaly.Threshold `json:"next,omitempty"`
}

// BulkItem is the outcome for one command of an executed bulk proposal.
type BulkItem struct {
	Ref     string `json:"ref"`
	Outcome string `json:"outcome"` // released, release-pending, deleted or refused
	Error   string `json:"error,omitempty"`
}

// BulkResult is the Result of an executed bulk proposal.
type BulkResult struct {
	Done    int        `json:"done"`
	Refused int        `json:"refused"`
	Items   []BulkItem `json:"items"`
}

// ProposalList is the body of GET /v1/proposals.
type ProposalList struct {
	Items []proposal.Proposal `json:"items"`
}

// proposalRules are the kinds this server handles, the operator role each
// needs (of proposer and approver alike), and their executors.
func (s *Server) proposalRules() map[proposal.Kind]proposal.Rule {
	return map[proposal.Kind]proposal.Rule{
		proposal.KindBulkRelease:     {Role: string(RoleQuarantineOfficer), Execute: s.executeBulk},
		proposal.KindBulkDelete:      {Role: string(RoleQuarantineOfficer), Execute: s.executeBulk},
		proposal.KindThresholdLoosen: {Role: string(RoleThresholdAdmin), Execute: s.executeThreshold},
		proposal.KindThresholdDelete: {Role: string(RoleThresholdAdmin), Execute: s.executeThreshold},
	}
}

func proposer(id Identity) proposal.Operator {
	op := proposal.Operator{Name: id.Name}
	for _, r := range id.Roles {
		op.Roles = append(op.Roles, string(r))
	}
	return op
}

func identity(op proposal.Operator) Identity {
	id := Identity{Name: op.Name}
	for _, r := range op.Roles {
		id.Roles = append(id.Roles, Role(r))
	}
	return id
}

// fromProposal maps an error of package proposal to an *Error.
func fromProposal(err error, param string) *Error {
	detail := clipLong(err.Error())
	switch {
	case errors.Is(err, proposal.ErrSelfApproval):
		return problem.Wrap(ErrSelfApproval, err, "", "%s", detail)
	case errors.Is(err, proposal.ErrExpired):
		return problem.Wrap(ErrProposalExpired, err, param, "%s", detail)
	case errors.Is(err, proposal.ErrInvalid):
		return problem.Wrap(ErrBadRequest, err, param, "%s", detail)
	case errors.Is(err, proposal.ErrForbidden):
		return problem.Wrap(ErrForbidden, err, "", "%s", detail)
	case errors.Is(err, proposal.ErrNotFound):
		return problem.Wrap(ErrNotFound, err, param, "%s", detail)
	case errors.Is(err, proposal.ErrConflict):
		return problem.Wrap(ErrConflict, err, param, "%s", detail)
	}
	return problem.Wrap(ErrInternal, err, "", "internal error")
}

func (s *Server) noDesk() *Error { return unavailable("proposal store (two-person control)") }

// ProposeBulk proposes releasing (to StateReleased) or deleting (to
// StateDeleted) the quarantined commands refs as the operator id, with
// reason: two or more, each visible to id and still quarantined. A second
// operator approves it (ApproveProposal). For the API and the dashboard;
// an error is an *Error, and the refusal is audited.
func (s *Server) ProposeBulk(ctx context.Context, id Identity, to anomaly.State, refs []string, reason string) (proposal.Proposal, error) {
	kind := proposal.KindBulkRelease
	if to == anomaly.StateDeleted {
		kind = proposal.KindBulkDelete
	}
	if s.desk == nil || s.deps.Quarantine == nil {
		return proposal.Proposal{}, s.noDesk()
	}
	fail := func(err *Error) (proposal.Proposal, error) {
		s.audit(ctx, id.Name, "proposal.create", string(kind), err)
		return proposal.Proposal{}, err
	}
	switch {
	case len(refs) < 2:
		return fail(problem.New(ErrBadRequest, "refs", "a bulk %s takes two or more references; release or delete one command on its own route", strings.TrimPrefix(string(kind), "bulk-")))
	case len(refs) > MaxBulk:
		return fail(problem.New(ErrBadRequest, "refs", "%d references exceed %d", len(refs), MaxBulk))
	}
	seen := make(map[string]bool, len(refs))
	for _, ref := range refs {
		if !keyRE.MatchString(ref) {
			return fail(problem.New(ErrBadRequest, "refs", "%q is not a quarantine reference", clip(ref)))
		}
		if seen[ref] {
			return fail(problem.New(ErrBadRequest, "refs", "%s is listed twice", ref))
		}
		seen[ref] = true
		q, err := s.deps.Quarantine.Get(ctx, ref, id.Actor())
		if err != nil {
			return fail(fromAnomaly(err, "refs"))
		}
		if q.State != anomaly.StateQuarantined {
			return fail(problem.New(ErrConflict, "refs", "%s is already %s (by %s)", ref, q.State, clip(q.DecidedBy)))
		}
	}
	verb := "release"
	if kind == proposal.KindBulkDelete {
		verb = "delete"
	}
	summary := fmt.Sprintf("%s %d quarantined commands: %s", verb, len(refs), strings.Join(refs, ", "))
	p, err := s.desk.Propose(ctx, proposer(id), kind, BulkPayload{Refs: refs}, summary, reason)
	if err != nil {
		return proposal.Proposal{}, fromProposal(err, "reason") // the desk audited its refusal
	}
	return p, nil
}

// approvalReason is the reason recorded on each command or threshold an
// approved proposal changes: the proposer's, with both names.
func approvalReason(p proposal.Proposal) string {
	// Cut on a character boundary: a reason cut inside a UTF-8 sequence
	// is refused by PostgreSQL's text columns (not by SQLite's).
	return trunc.String(fmt.Sprintf("proposal %s by %s, approved by %s: %s", p.ID, p.Proposer, p.DecidedBy, p.Reason), MaxReason-len("..."))
}

// executeBulk releases or deletes each command of an approved bulk
// proposal as the approver. Commands decided since the proposal are
// reported refused; the proposal fails only if none could be done.
func (s *Server) executeBulk(ctx context.Context, p proposal.Proposal, by proposal.Operator) (json.RawMessage, error) {
	var pl BulkPayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return nil, fmt.Errorf("operator: proposal %s payload: %w", p.ID, err)
	}
	id := identity(by)
	reason := approvalReason(p)
	var res BulkResult
	for _, ref := range pl.Refs {
		item := BulkItem{Ref: ref}
		var err error
		if p.Kind == proposal.KindBulkRelease {
			_, err = s.releaseAs(ctx, id.Name, id.Actor(), ref, reason)
			item.Outcome = "released"
			if errors.Is(err, anomaly.ErrForwardPending) {
				item.Outcome, err = "release-pending", nil
			}
		} else {
			_, err = s.Delete(ctx, id, ref, reason)
			item.Outcome = "deleted"
		}
		if err != nil {
			var oe *Error
			if errors.As(err, &oe) && oe.Kind == ErrForwardFailed {
				item.Outcome = "released-not-forwarded"
			} else {
				item.Outcome = "refused"
			}
			item.Error = clipDetail(err.Error())
			res.Refused++
		} else {
			res.Done++
		}
		res.Items = append(res.Items, item)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	if res.Done == 0 {
		return nil, fmt.Errorf("operator: none of the %d commands could be decided: %s", len(pl.Refs), clipDetail(string(b)))
	}
	return b, nil
}

// SetThreshold sets the threshold t as the operator id, or, when that
// loosens a DCC threshold, proposes it: the proposal is returned instead
// (the API's 202). For the API and the dashboard; an error is an *Error.
func (s *Server) SetThreshold(ctx context.Context, id Identity, t anomaly.Threshold) (anomaly.Threshold, *proposal.Proposal, error) {
	if s.deps.Thresholds == nil {
		return anomaly.Threshold{}, nil, unavailable("anomaly detector")
	}
	out, err := s.deps.Thresholds.SetThreshold(ctx, id.Actor(), t)
	var tp *anomaly.TwoPersonError
	switch {
	case errors.As(err, &tp):
		p, err := s.proposeThreshold(ctx, id, proposal.KindThresholdLoosen, tp, &t, "")
		return anomaly.Threshold{}, p, err
	case err != nil:
		return anomaly.Threshold{}, nil, fromAnomaly(err, "body") // the detector audited its refusal
	}
	return out, nil, nil
}

// DeleteThreshold deletes the threshold tid as the operator id, or, for a
// DCC threshold, proposes its deletion and returns the proposal. For the
// API and the dashboard; an error is an *Error.
func (s *Server) DeleteThreshold(ctx context.Context, id Identity, tid, reason string) (*proposal.Proposal, error) {
	if s.deps.Thresholds == nil {
		return nil, unavailable("anomaly detector")
	}
	err := s.deps.Thresholds.DeleteThreshold(ctx, tid, id.Actor(), reason)
	var tp *anomaly.TwoPersonError
	switch {
	case errors.As(err, &tp):
		return s.proposeThreshold(ctx, id, proposal.KindThresholdDelete, tp, nil, reason)
	case err != nil:
		return nil, fromAnomaly(err, "id")
	}
	return nil, nil
}

func (s *Server) proposeThreshold(ctx context.Context, id Identity, kind proposal.Kind, tp *anomaly.TwoPersonError, next *anomaly.Threshold, reason string) (*proposal.Proposal, error) {
	if s.desk == nil {
		return nil, s.noDesk()
	}
	pl := ThresholdPayload{ID: tp.Current.ID, Current: tp.Current, Next: next}
	summary := fmt.Sprintf("delete %s", tp.Current)
	if next != nil {
		// The whole change, not only the first loosening found: the
		// approver sees every field that moves.
		summary = fmt.Sprintf("loosen %s (%s): from %s to %s", tp.Current.ID, tp.Why, tp.Current, next)
		if reason == "" {
			reason = "loosen: " + tp.Why
		}
	}
	p, err := s.desk.Propose(ctx, proposer(id), kind, pl, summary, reason)
	if err != nil {
		return nil, fromProposal(err, "reason")
	}
	return &p, nil
}

// executeThreshold applies an approved threshold proposal as the
// approver, if the threshold still stands as it did when proposed.
func (s *Server) executeThreshold(ctx context.Context, p proposal.Proposal, by proposal.Operator) (json.RawMessage, error) {
	if s.deps.Thresholds == nil {
		return nil, errors.New("operator: no anomaly detector")
	}
	var pl ThresholdPayload
	if err := json.Unmarshal(p.Payload, &pl); err != nil {
		return nil, fmt.Errorf("operator: proposal %s payload: %w", p.ID, err)
	}
	actor := identity(by).Actor()
	ts, err := s.deps.Thresholds.Thresholds(ctx, actor)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(ts, func(t anomaly.Threshold) bool { return t.ID == pl.ID })
	if i < 0 {
		return nil, fmt.Errorf("operator: threshold %s no longer exists", pl.ID)
	}
	if cur := ts[i]; cur.String() != pl.Current.String() {
		return nil, fmt.Errorf("operator: threshold %s changed since it was proposed (now %s)", pl.ID, cur)
	}
	// The detector compares again as it writes: the check above is early
	// and precise; Current closes the window between the two.
	ap := anomaly.Approval{Proposal: p.ID, Proposer: p.Proposer, Approver: by.Name, Current: &pl.Current}
	if p.Kind == proposal.KindThresholdDelete {
		if err := s.deps.Thresholds.DeleteThresholdApproved(ctx, pl.ID, actor, approvalReason(p), ap); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]string{"deleted": pl.ID})
	}
	if pl.Next == nil {
		return nil, fmt.Errorf("operator: proposal %s has no threshold to set", p.ID)
	}
	out, err := s.deps.Thresholds.SetThresholdApproved(ctx, actor, *pl.Next, ap)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// Proposals lists proposals for the dashboard (f as GET /v1/proposals);
// an error is an *Error.
func (s *Server) Proposals(ctx context.Context, f proposal.Filter) ([]proposal.Proposal, error) {
	if s.desk == nil {
		return nil, s.noDesk()
	}
	ps, err := s.desk.List(ctx, f)
	if err != nil {
		return nil, fromProposal(err, "")
	}
	return ps, nil
}

// ApproveProposal approves the proposal pid as the operator id, with
// reason, and executes it; RejectProposal rejects it. For the API and the
// dashboard; an error is an *Error, and the desk audits every refusal.
func (s *Server) ApproveProposal(ctx context.Context, id Identity, pid, reason string) (proposal.Proposal, error) {
	return s.decideProposal(ctx, id, pid, reason, true)
}

// RejectProposal rejects the proposal pid as the operator id, with reason;
// see ApproveProposal.
func (s *Server) RejectProposal(ctx context.Context, id Identity, pid, reason string) (proposal.Proposal, error) {
	return s.decideProposal(ctx, id, pid, reason, false)
}

func (s *Server) decideProposal(ctx context.Context, id Identity, pid, reason string, approve bool) (proposal.Proposal, error) {
	if s.desk == nil {
		return proposal.Proposal{}, s.noDesk()
	}
	var p proposal.Proposal
	var err error
	if approve {
		p, err = s.desk.Approve(ctx, pid, proposer(id), reason)
	} else {
		p, err = s.desk.Reject(ctx, pid, proposer(id), reason)
	}
	if err != nil {
		return proposal.Proposal{}, fromProposal(err, "id")
	}
	return p, nil
}

// bulkRelease answers POST /v1/quarantine/bulk-release: 202 Accepted with
// the proposal, which a second quarantine officer approves.
func (s *Server) bulkRelease(c echo.Context) error { return s.bulk(c, anomaly.StateReleased) }

// bulkDelete answers POST /v1/quarantine/bulk-delete, as bulkRelease.
func (s *Server) bulkDelete(c echo.Context) error { return s.bulk(c, anomaly.StateDeleted) }

func (s *Server) bulk(c echo.Context, to anomaly.State) error {
	const action = "proposal.create"
	var r BulkRequest
	err := s.readJSON(c, &r)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, c.Request().URL.Path, err)
	}
	p, err := s.ProposeBulk(c.Request().Context(), identityOf(c), to, r.Refs, r.Reason)
	if err != nil {
		return err // audited
	}
	return c.JSON(http.StatusAccepted, p)
}

// identityOf returns the authenticated operator of a request with its
// roles.
func identityOf(c echo.Context) Identity { return who(c).ID }

// listProposals answers GET /v1/proposals?state=&kind=&limit=, newest
// first.
func (s *Server) listProposals(c echo.Context) error {
	const action = "operator.proposal.list"
	path := c.Request().URL.Path
	if s.desk == nil {
		return s.noDesk()
	}
	q, err := query(c, "state", "kind", "limit")
	if err != nil {
		return s.refuse(c, action, path, err)
	}
	var f proposal.Filter
	if v := q.Get("state"); v != "" {
		if f.State, err = proposal.ParseState(v); err != nil {
			return s.refuse(c, action, path, problem.Wrap(ErrBadRequest, err, "state", "%s", clipLong(err.Error())))
		}
	}
	if v := q.Get("kind"); v != "" {
		if f.Kind, err = proposal.ParseKind(v); err != nil {
			return s.refuse(c, action, path, problem.Wrap(ErrBadRequest, err, "kind", "%s", clipLong(err.Error())))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > proposal.MaxList {
			return s.refuse(c, action, path, problem.New(ErrBadRequest, "limit", "%q: want a whole number from 1 to %d", clip(v), proposal.MaxList))
		}
		f.Limit = n
	}
	ps, err := s.Proposals(c.Request().Context(), f)
	if err != nil {
		return s.refuse(c, action, path, err)
	}
	if ps == nil {
		ps = []proposal.Proposal{}
	}
	return c.JSON(http.StatusOK, ProposalList{Items: ps})
}

// getProposal answers GET /v1/proposals/{id}.
func (s *Server) getProposal(c echo.Context) error {
	const action = "operator.proposal.get"
	pid, err := pathKey(c, "id")
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, pid, err)
	}
	if s.desk == nil {
		return s.noDesk()
	}
	p, err := s.desk.Get(c.Request().Context(), pid)
	if err != nil {
		return s.refuse(c, action, pid, fromProposal(err, "id"))
	}
	return c.JSON(http.StatusOK, p)
}

// approveProposal answers POST /v1/proposals/{id}/approve with a reason:
// 200 with the proposal, executed (with its result) or failed (with the
// error); the roles the kind needs are checked by the desk.
func (s *Server) approveProposal(c echo.Context) error { return s.decideRoute(c, true) }

// rejectProposal answers POST /v1/proposals/{id}/reject with a reason.
func (s *Server) rejectProposal(c echo.Context) error { return s.decideRoute(c, false) }

func (s *Server) decideRoute(c echo.Context, approve bool) error {
	action := "proposal.reject"
	if approve {
		action = "proposal.approve"
	}
	pid, err := pathKey(c, "id")
	if err != nil {
		return s.refuse(c, action, pid, err)
	}
	reason, err := s.readReason(c)
	if err == nil {
		_, err = query(c)
	}
	if err != nil {
		return s.refuse(c, action, pid, err)
	}
	p, err := s.decideProposal(c.Request().Context(), identityOf(c), pid, reason, approve)
	if err != nil {
		return err // the desk audited its refusal
	}
	return c.JSON(http.StatusOK, p)
}

// ProposalRole returns the role an operator needs to propose and decide
// proposals of kind k here, and whether this server handles k.
func (s *Server) ProposalRole(k proposal.Kind) (Role, bool) {
	if s.desk == nil {
		return "", false
	}
	r, ok := s.desk.Role(k)
	return Role(r), ok
}
