package store

import (
	"context"
	"time"
)

// Auditor writes typed audit events with a clock, so that callers log an
// action before and after it in one line each (as Boulder's AuditInfo does):
//
//	a.Attempt(ctx, "alice", "ca.batch.key-destroy", "E357", nil)
//	err := destroy()
//	a.Result(ctx, "alice", "ca.batch.key-destroy", "E357", err, nil)
//
// Details must never carry private keys, PINs, shared secrets or derived keys.
type Auditor struct {
	db  *DB
	now func() time.Time
}

// NewAuditor returns an Auditor appending to db with times from now
// (time.Now if nil).
func NewAuditor(db *DB, now func() time.Time) *Auditor {
	if now == nil {
		now = time.Now
	}
	return &Auditor{db: db, now: now}
}

// Log appends one event with the given outcome, stamped with the clock.
func (a *Auditor) Log(ctx context.Context, outcome, actor, action, object string, details map[string]any) (AuditEvent, error) {
	return a.db.AppendAudit(ctx, AuditEvent{
		Time: a.now(), Actor: actor, Action: action, Object: object, Outcome: outcome, Details: details,
	})
}

// Attempt records that actor is about to do action on object.
func (a *Auditor) Attempt(ctx context.Context, actor, action, object string, details map[string]any) error {
	_, err := a.Log(ctx, OutcomeAttempt, actor, action, object, details)
	return err
}

// Success records that the action succeeded.
func (a *Auditor) Success(ctx context.Context, actor, action, object string, details map[string]any) error {
	_, err := a.Log(ctx, OutcomeSuccess, actor, action, object, details)
	return err
}

// Failure records that the action failed.
func (a *Auditor) Failure(ctx context.Context, actor, action, object string, details map[string]any) error {
	_, err := a.Log(ctx, OutcomeFailure, actor, action, object, details)
	return err
}

// Refused records that the action was refused before being tried.
func (a *Auditor) Refused(ctx context.Context, actor, action, object string, details map[string]any) error {
	_, err := a.Log(ctx, OutcomeRefused, actor, action, object, details)
	return err
}

// Result records Success if actionErr is nil and Failure otherwise, adding
// actionErr's text to the details under "error" (details is not modified).
// It returns the error from appending, not actionErr.
func (a *Auditor) Result(ctx context.Context, actor, action, object string, actionErr error, details map[string]any) error {
	if actionErr == nil {
		return a.Success(ctx, actor, action, object, details)
	}
	d := make(map[string]any, len(details)+1)
	for k, v := range details {
		d[k] = v
	}
	d["error"] = actionErr.Error()
	return a.Failure(ctx, actor, action, object, d)
}
