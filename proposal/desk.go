package proposal

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// DefaultTTL is how long a proposal waits for a second operator unless the
// service configures otherwise.
const DefaultTTL = 24 * time.Hour

// MaxTTL bounds a configured TTL.
const MaxTTL = 30 * 24 * time.Hour

// MaxReason bounds a proposal's or a decision's reason; MaxPayload a
// proposal's payload.
const (
	MaxReason  = 1000
	MaxPayload = 64 << 10
)

// Operator is who proposes, approves or rejects: an authenticated operator
// with its roles.
type Operator struct {
	// Name names the operator in the audit log and in the proposal.
	Name string
	// Roles are the operator's roles.
	Roles []string
}

// Has reports whether the operator holds role r.
func (o Operator) Has(r string) bool { return slices.Contains(o.Roles, r) }

// Executor carries out an approved proposal's action as the approver, and
// returns its outcome as JSON (for Proposal.Result). An error marks the
// proposal failed; the action must then have changed nothing it has not
// itself audited.
type Executor func(ctx context.Context, p Proposal, approver Operator) (json.RawMessage, error)

// Rule is how a Desk handles one kind.
type Rule struct {
	// Role is the role both the proposer and the approver need.
	Role string
	// Execute carries out the action on approval. It is nil for an
	// Offline kind.
	Execute Executor
	// Offline marks a kind executed elsewhere than the service that
	// approves it (batch-open: approved in serve ca, executed at the
	// offline ceremony that holds the root key, decision 023). Approval
	// leaves the proposal approved, awaiting Complete.
	Offline bool
}

// Config configures a Desk.
type Config struct {
	// Store keeps the proposals and appends the audit entries.
	Store Store
	// Rules are the kinds the Desk accepts, each with its role and
	// executor.
	Rules map[Kind]Rule
	// TTL is how long a proposal waits for approval; zero for DefaultTTL.
	TTL time.Duration
	// Now is the clock; nil for time.Now. Random is the source of IDs;
	// nil for crypto/rand.
	Now    func() time.Time
	Random io.Reader
	// Logger is the logger; nil discards.
	Logger *slog.Logger
}

// Desk takes proposals and decisions on them.
type Desk struct {
	store Store
	rules map[Kind]Rule
	ttl   time.Duration
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
}

// New returns a Desk for cfg.
func New(cfg Config) (*Desk, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: a proposal desk needs a store", ErrInvalid)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Minute || cfg.TTL > MaxTTL {
		return nil, fmt.Errorf("%w: proposal TTL %s must be between 1m and %s", ErrInvalid, cfg.TTL, MaxTTL)
	}
	for k, r := range cfg.Rules {
		if _, err := ParseKind(string(k)); err != nil {
			return nil, err
		}
		if r.Role == "" || (r.Execute == nil) != r.Offline {
			return nil, fmt.Errorf("%w: the rule for %s needs a role and either an executor or Offline", ErrInvalid, k)
		}
	}
	d := &Desk{store: cfg.Store, rules: cfg.Rules, ttl: cfg.TTL, now: cfg.Now, rand: cfg.Random, log: cfg.Logger}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "proposal")
	return d, nil
}

// TTL returns how long a proposal waits for approval.
func (d *Desk) TTL() time.Duration { return d.ttl }

// Role returns the role kind k needs, and whether the Desk handles k.
func (d *Desk) Role(k Kind) (string, bool) {
	r, ok := d.rules[k]
	return r.Role, ok
}

func (d *Desk) clock() time.Time { return d.now().UTC().Truncate(time.Microsecond) }

// refuse audits a refusal and returns err.
func (d *Desk) refuse(ctx context.Context, actor, action, object string, details map[string]any, err error) error {
	if details == nil {
		details = map[string]any{}
	}
	details["refusal"] = clip(err.Error(), 512)
	a := AuditEntry{Time: d.clock(), Actor: actor, Action: action, Object: object, Outcome: OutcomeRefused, Details: details}
	if aerr := d.store.AppendProposalAudit(context.WithoutCancel(ctx), a); aerr != nil {
		d.log.ErrorContext(ctx, "audit log write failed", "action", action, "err", aerr)
	}
	return err
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > MaxReason {
		return "", fmt.Errorf("%w: a reason of 1-%d bytes is required", ErrInvalid, MaxReason)
	}
	return reason, nil
}

func checkOperator(op Operator) error {
	if strings.TrimSpace(op.Name) == "" || len(op.Name) > 256 {
		return fmt.Errorf("%w: operator name must be 1-256 bytes", ErrForbidden)
	}
	return nil
}

// Propose records a proposal of kind with the exact action payload (any
// value encoding to a JSON object), a one-line summary and the proposer's
// reason, pending until it expires after the Desk's TTL, and returns it.
// The proposer needs the kind's role. The proposal, or its refusal, is
// audited.
func (d *Desk) Propose(ctx context.Context, op Operator, kind Kind, payload any, summary, reason string) (Proposal, error) {
	const action = "proposal.create"
	details := map[string]any{"kind": string(kind), "reason": clip(reason, MaxReason), "summary": clip(summary, 512)}
	rule, ok := d.rules[kind]
	if !ok {
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details, fmt.Errorf("%w: this service takes no %q proposals", ErrInvalid, kind))
	}
	if err := checkOperator(op); err != nil {
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details, err)
	}
	if !op.Has(rule.Role) {
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details,
			fmt.Errorf("%w: operator %s needs role %s to propose %s", ErrForbidden, op.Name, rule.Role, kind))
	}
	reason, err := checkReason(reason)
	if err != nil {
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details, err)
	}
	raw, err := json.Marshal(payload)
	switch {
	case err != nil:
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details, fmt.Errorf("%w: encoding the payload: %v", ErrInvalid, err))
	case len(raw) > MaxPayload || len(raw) == 0 || raw[0] != '{':
		return Proposal{}, d.refuse(ctx, op.Name, action, string(kind), details, fmt.Errorf("%w: the payload must be a JSON object of at most %d bytes", ErrInvalid, MaxPayload))
	}
	id, err := d.newID()
	if err != nil {
		return Proposal{}, err
	}
	now := d.clock()
	p := Proposal{ID: id, Kind: kind, Payload: raw, Summary: clip(strings.TrimSpace(summary), 512), Proposer: op.Name, Reason: reason,
		CreatedAt: now, ExpiresAt: now.Add(d.ttl), State: StatePending}
	details["expiresAt"] = p.ExpiresAt.Format(time.RFC3339)
	details["payload"] = string(raw)
	details["reason"] = reason
	a := AuditEntry{Time: now, Actor: op.Name, Action: action, Object: id, Outcome: OutcomeSuccess, Details: details}
	if err := d.store.CreateProposal(ctx, p, a); err != nil {
		return Proposal{}, fmt.Errorf("proposal: recording %s proposal: %w", kind, err)
	}
	d.log.InfoContext(ctx, "proposal created", "id", id, "kind", kind, "proposer", op.Name)
	return p, nil
}

func (d *Desk) newID() (string, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(d.rand, b); err != nil {
		return "", fmt.Errorf("proposal: drawing an ID: %w", err)
	}
	return "P-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// Get returns the proposal id, shown expired if it lapsed.
func (d *Desk) Get(ctx context.Context, id string) (Proposal, error) {
	if id == "" || len(id) > 64 {
		return Proposal{}, fmt.Errorf("%w: proposal ID %q", ErrInvalid, clip(id, 80))
	}
	p, err := d.store.Proposal(ctx, id)
	if err != nil {
		return Proposal{}, fmt.Errorf("proposal %s: %w", id, err)
	}
	if p.State == StatePending && !p.Open(d.clock()) {
		p.State = StateExpired
	}
	return p, nil
}

// List returns the proposals f selects, newest first, after marking those
// that lapsed expired (and auditing that).
func (d *Desk) List(ctx context.Context, f Filter) ([]Proposal, error) {
	switch {
	case f.Limit == 0:
		f.Limit = DefaultList
	case f.Limit < 0 || f.Limit > MaxList:
		return nil, fmt.Errorf("%w: list limit %d must be between 1 and %d", ErrInvalid, f.Limit, MaxList)
	}
	if f.State != "" {
		if _, err := ParseState(string(f.State)); err != nil {
			return nil, err
		}
	}
	if f.Kind != "" {
		if _, err := ParseKind(string(f.Kind)); err != nil {
			return nil, err
		}
	}
	if _, err := d.Expire(ctx); err != nil {
		return nil, err
	}
	ps, err := d.store.Proposals(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("proposal: listing: %w", err)
	}
	return ps, nil
}

// Expire marks every pending proposal that lapsed expired, audits each, and
// returns how many.
func (d *Desk) Expire(ctx context.Context) (int, error) {
	ps, err := d.store.ExpireProposals(ctx, d.clock(), "system")
	if err != nil {
		return 0, fmt.Errorf("proposal: expiring: %w", err)
	}
	for _, p := range ps {
		d.log.InfoContext(ctx, "proposal expired", "id", p.ID, "kind", p.Kind, "proposer", p.Proposer)
	}
	return len(ps), nil
}

// Approve approves the proposal id as op, with reason, and executes its
// action as op. It is refused (and the refusal audited, with both names)
// when op lacks the kind's role (ErrForbidden), is the proposer
// (ErrSelfApproval), the proposal expired (ErrExpired) or is no longer
// pending (ErrConflict: another operator decided first; of two approvals
// at once exactly one wins). The returned proposal is executed, with the
// executor's result, or failed, with the error as result; an execution
// error is not returned as an error, the proposal's state says it. A
// proposal of an Offline kind is returned approved: Complete executes it.
func (d *Desk) Approve(ctx context.Context, id string, op Operator, reason string) (Proposal, error) {
	return d.decide(ctx, id, op, reason, StateApproved)
}

// Reject rejects the proposal id as op, with reason: the action is never
// executed. Any operator with the kind's role may reject, the proposer
// included (withdrawing it). Refusals are as for Approve, but for
// ErrSelfApproval.
func (d *Desk) Reject(ctx context.Context, id string, op Operator, reason string) (Proposal, error) {
	return d.decide(ctx, id, op, reason, StateRejected)
}

func (d *Desk) decide(ctx context.Context, id string, op Operator, reason string, to State) (Proposal, error) {
	action := "proposal.approve"
	if to == StateRejected {
		action = "proposal.reject"
	}
	details := map[string]any{"reason": clip(reason, MaxReason)}
	p, err := d.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
			return Proposal{}, d.refuse(ctx, op.Name, action, clip(id, 80), details, err)
		}
		return Proposal{}, err
	}
	details["kind"], details["proposer"], details["summary"] = string(p.Kind), p.Proposer, p.Summary
	rule, ok := d.rules[p.Kind]
	switch {
	case !ok:
		return Proposal{}, d.refuse(ctx, op.Name, action, id, details, fmt.Errorf("%w: this service does not handle %s proposals", ErrInvalid, p.Kind))
	case checkOperator(op) != nil:
		return Proposal{}, d.refuse(ctx, op.Name, action, id, details, checkOperator(op))
	case !op.Has(rule.Role):
		return Proposal{}, d.refuse(ctx, op.Name, action, id, details,
			fmt.Errorf("%w: operator %s needs role %s to decide a %s proposal", ErrForbidden, op.Name, rule.Role, p.Kind))
	case to == StateApproved && op.Name == p.Proposer:
		return Proposal{}, d.refuse(ctx, op.Name, action, id, details,
			fmt.Errorf("%w: %s proposed %s", ErrSelfApproval, p.Proposer, id))
	}
	reason, err = checkReason(reason)
	if err != nil {
		return Proposal{}, d.refuse(ctx, op.Name, action, id, details, err)
	}
	details["reason"] = reason
	now := d.clock()
	a := AuditEntry{Time: now, Actor: op.Name, Action: action, Object: id, Outcome: OutcomeSuccess, Details: details}
	p, err = d.store.DecideProposal(ctx, Decision{ID: id, To: to, By: op.Name, At: now, Reason: reason}, a)
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrExpired) || errors.Is(err, ErrNotFound) {
			return Proposal{}, d.refuse(ctx, op.Name, action, id, details, fmt.Errorf("proposal %s: %w", id, err))
		}
		return Proposal{}, fmt.Errorf("proposal: deciding %s: %w", id, err)
	}
	d.log.InfoContext(ctx, "proposal "+string(to), "id", id, "kind", p.Kind, "proposer", p.Proposer, "by", op.Name)
	if to == StateRejected || rule.Offline {
		return p, nil // an offline kind stays approved, awaiting Complete
	}
	return d.execute(ctx, p, op, rule)
}

func (d *Desk) execute(ctx context.Context, p Proposal, op Operator, rule Rule) (Proposal, error) {
	ctx = context.WithoutCancel(ctx) // approved: carry it through
	result, xerr := runExecutor(ctx, rule.Execute, p, op)
	to, outcome := StateExecuted, OutcomeSuccess
	details := map[string]any{"kind": string(p.Kind), "proposer": p.Proposer, "approver": op.Name, "summary": p.Summary}
	if xerr != nil {
		to, outcome = StateFailed, OutcomeFailure
		msg, _ := json.Marshal(map[string]string{"error": clip(xerr.Error(), 1024)})
		result = msg
		details["error"] = clip(xerr.Error(), 512)
		d.log.ErrorContext(ctx, "approved proposal failed", "id", p.ID, "kind", p.Kind, "err", xerr)
	} else if len(result) > 0 {
		details["result"] = clip(string(result), 2048)
	}
	now := d.clock()
	a := AuditEntry{Time: now, Actor: op.Name, Action: "proposal.execute", Object: p.ID, Outcome: outcome, Details: details}
	out, err := d.store.FinishProposal(ctx, p.ID, to, result, now, a)
	if err != nil {
		return p, fmt.Errorf("proposal: recording the outcome of %s (%s): %w", p.ID, to, err)
	}
	return out, nil
}

// runExecutor runs x, turning a panic into an error so an approved
// proposal is always finished.
func runExecutor(ctx context.Context, x Executor, p Proposal, op Operator) (res json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("proposal: executor panicked: %v", r)
		}
	}()
	res, err = x(ctx, p, op)
	if err == nil && len(res) > 0 && !json.Valid(res) {
		return nil, fmt.Errorf("proposal: executor returned invalid JSON")
	}
	return res, err
}

// Complete executes the approved proposal id of the Offline kind with run,
// as the operators in by (the officers of an offline ceremony), and marks it
// executed with run's result, in the same run: the second half of an
// offline kind's two-person control. It is refused, audited and with the
// proposal unchanged, when the proposal is unknown (ErrNotFound), of
// another kind or a kind this Desk does not take offline (ErrInvalid),
// lapsed before anyone approved it (ErrExpired), or not approved: still
// pending, rejected, executed or failed already (ErrConflict). run checks
// the action against what the caller was asked to do and carries it out;
// an error from run is returned and audited as a failure, and leaves the
// proposal approved, so the ceremony can be run again once the cause is
// fixed (an action that took effect cannot take effect twice: a batch name
// opens one batch).
func (d *Desk) Complete(ctx context.Context, id string, kind Kind, by []string, run func(Proposal) (json.RawMessage, error)) (Proposal, error) {
	const action = "proposal.execute"
	actor := strings.Join(by, ",")
	details := map[string]any{"kind": string(kind), "officers": actor}
	rule, ok := d.rules[kind]
	if !ok || !rule.Offline {
		return Proposal{}, d.refuse(ctx, actor, action, clip(id, 80), details, fmt.Errorf("%w: %s proposals are not executed offline here", ErrInvalid, kind))
	}
	if len(by) == 0 || actor == "" {
		return Proposal{}, d.refuse(ctx, actor, action, clip(id, 80), details, fmt.Errorf("%w: an offline execution needs the names of who runs it", ErrForbidden))
	}
	p, err := d.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
			return Proposal{}, d.refuse(ctx, actor, action, clip(id, 80), details, err)
		}
		return Proposal{}, err
	}
	details["proposer"], details["approver"], details["summary"] = p.Proposer, p.DecidedBy, p.Summary
	switch {
	case p.Kind != kind:
		return Proposal{}, d.refuse(ctx, actor, action, id, details, fmt.Errorf("%w: proposal %s is a %s proposal, not %s", ErrInvalid, id, p.Kind, kind))
	case p.State == StateExpired:
		return Proposal{}, d.refuse(ctx, actor, action, id, details,
			fmt.Errorf("%w: proposal %s lapsed at %s without approval", ErrExpired, id, p.ExpiresAt.Format(time.RFC3339)))
	case p.State != StateApproved:
		return Proposal{}, d.refuse(ctx, actor, action, id, details, fmt.Errorf("%w: proposal %s is %s, not approved", ErrConflict, id, p.State))
	}
	result, xerr := func() (res json.RawMessage, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("proposal: offline execution panicked: %v", r)
			}
		}()
		return run(p)
	}()
	if xerr == nil && len(result) > 0 && !json.Valid(result) {
		xerr = errors.New("proposal: offline execution returned invalid JSON")
	}
	if xerr != nil {
		details["error"] = clip(xerr.Error(), 512)
		a := AuditEntry{Time: d.clock(), Actor: actor, Action: action, Object: id, Outcome: OutcomeFailure, Details: details}
		if aerr := d.store.AppendProposalAudit(context.WithoutCancel(ctx), a); aerr != nil {
			return Proposal{}, errors.Join(xerr, aerr)
		}
		return Proposal{}, xerr
	}
	if len(result) > 0 {
		details["result"] = clip(string(result), 2048)
	}
	now := d.clock()
	a := AuditEntry{Time: now, Actor: actor, Action: action, Object: id, Outcome: OutcomeSuccess, Details: details}
	out, err := d.store.FinishProposal(context.WithoutCancel(ctx), id, StateExecuted, result, now, a)
	if err != nil {
		return Proposal{}, fmt.Errorf("proposal: recording the execution of %s: %w", id, err)
	}
	d.log.InfoContext(ctx, "offline proposal executed", "id", id, "kind", kind, "by", actor)
	return out, nil
}
