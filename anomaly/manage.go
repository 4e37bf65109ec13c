package anomaly

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// This file holds what operators and users call, through the router's
// operator API: quarantine listing and decisions, threshold management,
// live counts and alert subscriptions. Each method checks the actor's roles
// with Permit and, for RoleUser, that the record is the actor's own.

// List returns the quarantine records f selects, newest first. An actor
// with only RoleUser sees its own records only (f.User zero means its own).
func (d *Detector) List(ctx context.Context, actor Actor, f Filter) ([]Quarantine, error) {
	sc, err := actor.authorize(ActionView)
	if err != nil {
		return nil, err
	}
	if !sc.all {
		if !f.User.IsZero() && f.User != sc.user {
			return nil, fmt.Errorf("%w: user %s may list only its own quarantined commands", ErrForbidden, sc.user)
		}
		f.User = sc.user
	}
	if f.State != "" {
		if _, err := ParseState(string(f.State)); err != nil {
			return nil, err
		}
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultList
	case f.Limit < 0 || f.Limit > MaxList:
		return nil, fmt.Errorf("%w: list limit %d must be between 1 and %d", ErrInvalid, f.Limit, MaxList)
	}
	qs, err := d.store.ListQuarantine(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("anomaly: listing quarantine: %w", err)
	}
	return qs, nil
}

// Get returns the quarantine record ref. A user asking for another user's
// record gets ErrNotFound, as for an unknown reference.
func (d *Detector) Get(ctx context.Context, ref string, actor Actor) (Quarantine, error) {
	sc, err := actor.authorize(ActionView)
	if err != nil {
		return Quarantine{}, err
	}
	return d.get(ctx, ref, sc)
}

func (d *Detector) get(ctx context.Context, ref string, sc scope) (Quarantine, error) {
	if ref == "" || len(ref) > 64 {
		return Quarantine{}, fmt.Errorf("%w: quarantine reference %q", ErrInvalid, ref)
	}
	q, err := d.store.Quarantine(ctx, ref)
	if err != nil {
		return Quarantine{}, fmt.Errorf("anomaly: quarantine %s: %w", ref, err)
	}
	if !sc.may(q.User) {
		return Quarantine{}, fmt.Errorf("anomaly: quarantine %s: %w", ref, ErrNotFound)
	}
	return q, nil
}

// Release releases the quarantined command ref and returns its record,
// whose Command the router carries on from after the anomaly stage (MAC,
// durable record, forwarding). The released command counts towards the
// thresholds from now. Releasing a command that is already released or
// deleted fails with ErrConflict. The decision, or the refusal, is audited
// with actor and reason.
func (d *Detector) Release(ctx context.Context, ref string, actor Actor, reason string) (Quarantine, error) {
	return d.decide(ctx, ref, actor, reason, StateReleased)
}

// Delete deletes the quarantined command ref: it is never forwarded. The
// record stays, in state deleted, with who and why. Deleting a command that
// is already released or deleted fails with ErrConflict. The decision, or
// the refusal, is audited with actor and reason.
func (d *Detector) Delete(ctx context.Context, ref string, actor Actor, reason string) (Quarantine, error) {
	return d.decide(ctx, ref, actor, reason, StateDeleted)
}

func (d *Detector) decide(ctx context.Context, ref string, actor Actor, reason string, to State) (Quarantine, error) {
	action := ActionRelease
	if to == StateDeleted {
		action = ActionDelete
	}
	entry := AuditEntry{Actor: actor.String(), Action: "anomaly." + string(action), Object: ref,
		Details: map[string]string{"reason": reason}}
	sc, err := actor.authorize(action)
	if err != nil {
		return Quarantine{}, d.refuse(ctx, entry, err)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > maxReason {
		return Quarantine{}, d.refuse(ctx, entry, fmt.Errorf("%w: a %s needs a reason of 1-%d bytes", ErrInvalid, action, maxReason))
	}
	q, err := d.get(ctx, ref, sc)
	if err != nil {
		return Quarantine{}, d.refuse(ctx, entry, err)
	}
	if q.State != StateQuarantined {
		return Quarantine{}, d.refuse(ctx, entry, fmt.Errorf("%w: quarantine %s is already %s (by %s)", ErrConflict, ref, q.State, q.DecidedBy))
	}
	now := d.now().UTC().Truncate(time.Microsecond)
	dec := Decide{Ref: ref, To: to, By: actor.String(), At: now, Reason: reason}
	if to == StateReleased {
		dec.Record = &Event{RequestID: q.CommandID, Keys: eventKeys(q.User, q.ServiceRef), At: now}
	}
	entry.Time, entry.Outcome = now, OutcomeSuccess
	entry.Details = map[string]string{"reason": reason, "command": q.CommandID, "user": q.User.String(),
		"serviceRef": q.ServiceRef, "kind": string(q.Kind), "state": string(to)}
	q, err = d.store.DecideQuarantine(ctx, dec, entry)
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			// Another operator decided first, between our read and write.
			return Quarantine{}, d.refuse(ctx, entry, fmt.Errorf("anomaly: quarantine %s: %w", ref, err))
		}
		return Quarantine{}, fmt.Errorf("anomaly: deciding quarantine %s: %w", ref, err)
	}
	d.log.InfoContext(ctx, "quarantined command "+string(to), "ref", ref, "actor", actor.String(), "reason", reason)
	d.alert(ctx, Alert{State: to, Ref: ref, User: q.User, ServiceRef: q.ServiceRef, Target: q.Target,
		Kind: q.Kind, ThresholdID: q.ThresholdID, By: actor.String(), Reason: reason, At: now})
	return q, nil
}

// Thresholds returns the thresholds the actor may see: every threshold for
// an operator, the DCC's and its own for a user.
func (d *Detector) Thresholds(ctx context.Context, actor Actor) ([]Threshold, error) {
	sc, err := actor.authorize(ActionView)
	if err != nil {
		return nil, err
	}
	ts, err := d.store.Thresholds(ctx)
	if err != nil {
		return nil, fmt.Errorf("anomaly: loading thresholds: %w", err)
	}
	out := ts[:0:0]
	for _, t := range newThresholdSet(ts).all {
		if sc.all || t.IsDCC() || t.User == sc.user {
			out = append(out, t)
		}
	}
	return out, nil
}

// SetThreshold validates t and stores it, replacing the threshold with the
// same ID (a new ID is assigned when t.ID is empty), and returns it with ID,
// SetBy and SetAt filled. A user's threshold must be stricter than the DCC's
// for the same scope (ErrNotStricter). A RoleUser actor may set only
// thresholds of its own user; DCC thresholds need RoleThresholdAdmin. The
// change, or the refusal, is audited.
//
// Lowering a DCC threshold below a user's own leaves the user's in place:
// both apply, so the stricter one governs.
//
// Loosening a DCC threshold (see Loosens) needs a second operator: it is
// refused with a *TwoPersonError (ErrTwoPerson), audited, and applied only
// by SetThresholdApproved once a proposal is approved (decision 023).
// Creating a DCC threshold or tightening one stays one-person.
func (d *Detector) SetThreshold(ctx context.Context, actor Actor, t Threshold) (Threshold, error) {
	return d.setThreshold(ctx, actor, t, nil)
}

// SetThresholdApproved is SetThreshold for a change a second operator
// approved: the actor is the approver, and a loosening is applied. The
// audit entry names the proposal and both operators.
func (d *Detector) SetThresholdApproved(ctx context.Context, actor Actor, t Threshold, a Approval) (Threshold, error) {
	return d.setThreshold(ctx, actor, t, &a)
}

func (d *Detector) setThreshold(ctx context.Context, actor Actor, t Threshold, approval *Approval) (Threshold, error) {
	entry := AuditEntry{Actor: actor.String(), Action: "anomaly.threshold.set", Object: t.ID,
		Details: map[string]string{"threshold": t.String()}}
	approval.into(entry.Details)
	sc, err := actor.authorize(ActionSetThreshold)
	if err != nil {
		return Threshold{}, d.refuse(ctx, entry, err)
	}
	if !sc.may(t.User) {
		return Threshold{}, d.refuse(ctx, entry, fmt.Errorf("%w: user %s may set only its own thresholds, not %s", ErrForbidden, sc.user, t))
	}
	if err := t.Validate(); err != nil {
		return Threshold{}, d.refuse(ctx, entry, err)
	}
	ts, err := d.store.Thresholds(ctx)
	if err != nil {
		return Threshold{}, fmt.Errorf("anomaly: loading thresholds: %w", err)
	}
	var dcc []Threshold
	for _, o := range ts {
		if o.ID == t.ID {
			if !sc.may(o.User) {
				return Threshold{}, d.refuse(ctx, entry, fmt.Errorf("%w: threshold %s is not user %s's", ErrForbidden, o.ID, sc.user))
			}
			if loose, why := Loosens(o, t); loose && o.IsDCC() && approval == nil {
				return Threshold{}, d.refuse(ctx, entry, &TwoPersonError{Current: o, Next: t, Why: why})
			}
			if approval != nil && approval.Current != nil && o.String() != approval.Current.String() {
				return Threshold{}, d.refuse(ctx, entry, fmt.Errorf("%w: threshold %s changed since the change was proposed (now %s)", ErrConflict, o.ID, o))
			}
			continue
		}
		if o.IsDCC() {
			dcc = append(dcc, o)
		}
	}
	if err := CheckStricter(t, dcc); err != nil {
		return Threshold{}, d.refuse(ctx, entry, err)
	}
	if t.ID == "" {
		id, err := d.randomID(10)
		if err != nil {
			return Threshold{}, err
		}
		t.ID = "T-" + id
	}
	t.SetBy = actor.String()
	t.SetAt = d.now().UTC().Truncate(time.Microsecond)
	entry.Object, entry.Time, entry.Outcome = t.ID, t.SetAt, OutcomeSuccess
	entry.Details = map[string]string{"threshold": t.String()}
	approval.into(entry.Details)
	if err := d.store.PutThreshold(ctx, t, entry); err != nil {
		return Threshold{}, fmt.Errorf("anomaly: storing threshold %s: %w", t.ID, err)
	}
	d.log.InfoContext(ctx, "threshold set", "threshold", t.String(), "actor", t.SetBy)
	if err := d.Reload(ctx); err != nil {
		d.log.ErrorContext(ctx, "reloading thresholds after a change", "err", err)
	}
	return t, nil
}

// DeleteThreshold deletes the threshold id. A RoleUser actor may delete
// only its own thresholds. The change, or the refusal, is audited with
// reason. Deleting a DCC threshold needs a second operator: it is refused
// with a *TwoPersonError (ErrTwoPerson) and done by DeleteThresholdApproved
// once a proposal is approved (decision 023).
func (d *Detector) DeleteThreshold(ctx context.Context, id string, actor Actor, reason string) error {
	return d.deleteThreshold(ctx, id, actor, reason, nil)
}

// DeleteThresholdApproved is DeleteThreshold for a deletion a second
// operator approved: the actor is the approver. The audit entry names the
// proposal and both operators.
func (d *Detector) DeleteThresholdApproved(ctx context.Context, id string, actor Actor, reason string, a Approval) error {
	return d.deleteThreshold(ctx, id, actor, reason, &a)
}

func (d *Detector) deleteThreshold(ctx context.Context, id string, actor Actor, reason string, approval *Approval) error {
	entry := AuditEntry{Actor: actor.String(), Action: "anomaly.threshold.delete", Object: id,
		Details: map[string]string{"reason": reason}}
	approval.into(entry.Details)
	sc, err := actor.authorize(ActionSetThreshold)
	if err != nil {
		return d.refuse(ctx, entry, err)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > maxReason {
		return d.refuse(ctx, entry, fmt.Errorf("%w: deleting a threshold needs a reason of 1-%d bytes", ErrInvalid, maxReason))
	}
	ts, err := d.store.Thresholds(ctx)
	if err != nil {
		return fmt.Errorf("anomaly: loading thresholds: %w", err)
	}
	var found *Threshold
	for i := range ts {
		if ts[i].ID == id {
			found = &ts[i]
		}
	}
	if found == nil || !sc.may(found.User) {
		return d.refuse(ctx, entry, fmt.Errorf("anomaly: threshold %q: %w", id, ErrNotFound))
	}
	if found.IsDCC() && approval == nil {
		return d.refuse(ctx, entry, &TwoPersonError{Current: *found, Why: "deleting a DCC threshold"})
	}
	if approval != nil && approval.Current != nil && found.String() != approval.Current.String() {
		return d.refuse(ctx, entry, fmt.Errorf("%w: threshold %s changed since its deletion was proposed (now %s)", ErrConflict, id, found))
	}
	entry.Time, entry.Outcome = d.now().UTC(), OutcomeSuccess
	entry.Details["threshold"] = found.String()
	if err := d.store.DeleteThreshold(ctx, id, entry); err != nil {
		return fmt.Errorf("anomaly: deleting threshold %s: %w", id, err)
	}
	d.log.InfoContext(ctx, "threshold deleted", "threshold", found.String(), "actor", actor.String(), "reason", reason)
	if err := d.Reload(ctx); err != nil {
		d.log.ErrorContext(ctx, "reloading thresholds after a change", "err", err)
	}
	return nil
}

// Usage is a live count against a threshold.
type Usage struct {
	Threshold Threshold
	// Count is the number of commands counted in the threshold's window
	// now.
	Count int64
}

// Usage returns live counts against the count thresholds: for user u, every
// per-user threshold that applies to u (for every service reference u has
// a threshold for); for u zero, the DCC-wide per-service thresholds. A
// RoleUser actor may ask only for its own user.
func (d *Detector) Usage(ctx context.Context, actor Actor, u smki.EUI) ([]Usage, error) {
	sc, err := actor.authorize(ActionView)
	if err != nil {
		return nil, err
	}
	if !sc.all && u != sc.user {
		return nil, fmt.Errorf("%w: user %s may see only its own counts", ErrForbidden, sc.user)
	}
	var ts []Threshold
	var counters []Counter
	now := d.now().UTC().Truncate(time.Microsecond)
	for _, t := range d.set.Load().all {
		switch {
		case t.Scope == ScopeAttribute:
			continue
		case u.IsZero() && t.Scope == ScopeDCCService:
		case !u.IsZero() && t.Scope != ScopeDCCService && (t.IsDCC() || t.User == u):
		default:
			continue
		}
		ts = append(ts, t)
		counters = append(counters, Counter{Key: t.counterKey(u, t.ServiceRef), Since: t.Since(now), Limit: t.Limit})
	}
	if len(counters) == 0 {
		return nil, nil
	}
	counts, err := d.store.CountEvents(ctx, counters)
	if err != nil {
		return nil, fmt.Errorf("anomaly: counting: %w", err)
	}
	if len(counts) != len(ts) {
		return nil, fmt.Errorf("anomaly: counting: store returned %d counts for %d counters", len(counts), len(ts))
	}
	out := make([]Usage, len(ts))
	for i, t := range ts {
		out[i] = Usage{Threshold: t, Count: counts[i]}
	}
	return out, nil
}

// Subscribe returns a channel of the alerts f selects, raised by this or
// (with a Notifier) any other Detector sharing the store, from now until ctx
// is done; see Broker.Subscribe for slow subscribers. A RoleUser actor
// receives only its own user's alerts.
func (d *Detector) Subscribe(ctx context.Context, actor Actor, f AlertFilter) (<-chan Alert, error) {
	sc, err := actor.authorize(ActionView)
	if err != nil {
		return nil, err
	}
	if !sc.all {
		if !f.User.IsZero() && f.User != sc.user {
			return nil, fmt.Errorf("%w: user %s may subscribe only to its own alerts", ErrForbidden, sc.user)
		}
		f.User = sc.user
	}
	return d.broker.Subscribe(ctx, f), nil
}

// into adds the approval's names to audit details; nil adds nothing.
func (a *Approval) into(details map[string]string) {
	if a == nil {
		return
	}
	details["proposal"], details["proposer"], details["approver"] = a.Proposal, a.Proposer, a.Approver
}
