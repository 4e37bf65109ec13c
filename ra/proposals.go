package ra

// This file is the online half of two-person control over opening a
// device-CA batch (issue 13, decision 023): an operator with the issue role
// proposes a batch (name, quota, purpose) with a reason, a different
// operator with the role approves or rejects it before it expires. Approval
// signs nothing here, since this service never holds the root key (decision
// 012): it leaves the proposal approved, awaiting the offline ceremony
// (metertrust ca batch open --proposal ID, two officers), which opens
// exactly that batch and marks the proposal executed.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/store"
)

// The audit actions of the proposal routes the desk does not write itself
// (it writes proposal.create, proposal.approve and proposal.reject, with
// both operators' names, refusals included).
const (
	ActionProposalCreate  = "proposal.create"
	ActionProposalApprove = "proposal.approve"
	ActionProposalReject  = "proposal.reject"
	actionProposalRead    = "ca-api.proposal.read"
)

// BatchProposalRequest is the body of POST /v1/proposals: the batch to open
// (as "metertrust ca batch open" takes it) and why.
type BatchProposalRequest struct {
	// Kind is the proposal kind; only "batch-open".
	Kind string `json:"kind"`
	// Name is the batch name, also the Device CA's CN and the batch id.
	Name string `json:"name"`
	// Quota is the device certificates the batch may issue.
	Quota int64 `json:"quota"`
	// Purpose is "new" (the default) or "rekey".
	Purpose string `json:"purpose,omitempty"`
	// Reason is why the batch is needed (required).
	Reason string `json:"reason"`
}

// ProposalDecision is the body of POST /v1/proposals/{id}/approve and
// /reject.
type ProposalDecision struct {
	// Reason is why (required).
	Reason string `json:"reason"`
}

// ProposalList is the body of GET /v1/proposals.
type ProposalList struct {
	Items []proposal.Proposal `json:"items"`
}

// fromProposal maps an error of package proposal to the API's kinds.
func fromProposal(err error, param string) error {
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

func clipLong(s string) string {
	if len(s) > maxAuditDetail {
		return s[:maxAuditDetail]
	}
	return s
}

func (w caller) proposalOperator() proposal.Operator {
	op := proposal.Operator{Name: w.operator}
	for _, r := range w.roles {
		op.Roles = append(op.Roles, string(r))
	}
	return op
}

func (s *Server) noDesk() error {
	return problem.New(ErrUnavailable, "", "this CA service keeps no proposals (two-person control needs the store's proposals)")
}

// proposeBatch answers POST /v1/proposals: 202 Accepted with the pending
// batch-open proposal. The batch is checked as the ceremony will check it,
// and must not exist yet.
func (s *Server) proposeBatch(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleIssue, ActionProposalCreate)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if s.desk == nil {
		return s.refuse(ctx, who, ActionProposalCreate, string(proposal.KindBatchOpen), s.noDesk())
	}
	var req BatchProposalRequest
	if err := readJSON(c, &req, "{kind, name, quota, purpose, reason}"); err != nil {
		return s.refuse(ctx, who, ActionProposalCreate, string(proposal.KindBatchOpen), err)
	}
	if req.Kind != string(proposal.KindBatchOpen) {
		return s.refuse(ctx, who, ActionProposalCreate, clip(req.Kind), problem.New(ErrBadRequest, "kind",
			"%q: this service takes batch-open proposals only", clip(req.Kind)))
	}
	if req.Purpose == "" {
		req.Purpose = "new"
	}
	b := ca.BatchProposal{Name: req.Name, Quota: req.Quota, Purpose: req.Purpose}
	if err := b.Check(); err != nil {
		return s.refuse(ctx, who, ActionProposalCreate, string(proposal.KindBatchOpen), problem.Wrap(ErrBadRequest, err, "", "%s", clipLong(err.Error())))
	}
	if _, err := s.deps.Store.CA(ctx, b.Name); err == nil {
		return s.refuse(ctx, who, ActionProposalCreate, string(proposal.KindBatchOpen), problem.New(ErrConflict, "name", "CA %s already exists", b.Name))
	} else if !errors.Is(err, store.ErrNotFound) {
		return problem.Wrap(ErrInternal, err, "", "reading CA %s", b.Name)
	}
	summary := fmt.Sprintf("open batch %s: %d device certificates (%s)", b.Name, b.Quota, b.Purpose)
	p, err := s.desk.Propose(ctx, who.proposalOperator(), proposal.KindBatchOpen, b, summary, req.Reason)
	if err != nil {
		return fromProposal(err, "reason") // the desk audited its refusal
	}
	return c.JSON(http.StatusAccepted, p)
}

// listProposals answers GET /v1/proposals (?state=, ?kind=, ?limit=),
// newest first, after marking those that lapsed expired.
func (s *Server) listProposals(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleIssue, actionProposalRead)
	if err != nil {
		return err
	}
	if s.desk == nil {
		return s.noDesk()
	}
	var f proposal.Filter
	if v := c.QueryParam("state"); v != "" {
		if f.State, err = proposal.ParseState(v); err != nil {
			return problem.Wrap(ErrBadRequest, err, "state", "%s", clipLong(err.Error()))
		}
	}
	if v := c.QueryParam("kind"); v != "" {
		if f.Kind, err = proposal.ParseKind(v); err != nil {
			return problem.Wrap(ErrBadRequest, err, "kind", "%s", clipLong(err.Error()))
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > proposal.MaxList {
			return problem.New(ErrBadRequest, "limit", "%q: want a whole number from 1 to %d", clip(v), proposal.MaxList)
		}
		f.Limit = n
	}
	ps, err := s.desk.List(c.Request().Context(), f)
	if err != nil {
		return s.refuse(c.Request().Context(), who, actionProposalRead, "proposals", fromProposal(err, ""))
	}
	if ps == nil {
		ps = []proposal.Proposal{}
	}
	return c.JSON(http.StatusOK, ProposalList{Items: ps})
}

// getProposal answers GET /v1/proposals/{id}.
func (s *Server) getProposal(c echo.Context) error {
	if _, err := s.authorize(c, operator.RoleIssue, actionProposalRead); err != nil {
		return err
	}
	if s.desk == nil {
		return s.noDesk()
	}
	p, err := s.desk.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return fromProposal(err, "id")
	}
	return c.JSON(http.StatusOK, p)
}

// approveProposal answers POST /v1/proposals/{id}/approve with a reason:
// 200 with the proposal approved, awaiting the offline ceremony. The desk
// checks the issue role and that the approver is not the proposer.
func (s *Server) approveProposal(c echo.Context) error { return s.decideProposal(c, true) }

// rejectProposal answers POST /v1/proposals/{id}/reject with a reason.
func (s *Server) rejectProposal(c echo.Context) error { return s.decideProposal(c, false) }

func (s *Server) decideProposal(c echo.Context, approve bool) error {
	action := ActionProposalReject
	if approve {
		action = ActionProposalApprove
	}
	// Any operator at the route: the desk checks the kind's role, and
	// audits a refusal with the proposal's proposer.
	who, err := s.authorize(c, "", action)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	if s.desk == nil {
		return s.refuse(ctx, who, action, clip(id), s.noDesk())
	}
	var d ProposalDecision
	if err := readJSON(c, &d, "{reason}"); err != nil {
		return s.refuse(ctx, who, action, clip(id), err)
	}
	op := who.proposalOperator()
	var p proposal.Proposal
	if approve {
		p, err = s.desk.Approve(ctx, id, op, d.Reason)
	} else {
		p, err = s.desk.Reject(ctx, id, op, d.Reason)
	}
	if err != nil {
		return fromProposal(err, "reason") // audited by the desk
	}
	return c.JSON(http.StatusOK, p)
}
