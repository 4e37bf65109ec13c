package operator

import (
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// QuarantineView is the JSON form of a quarantine record.
type QuarantineView struct {
	// Ref is the quarantine event reference.
	Ref string `json:"ref"`
	// CommandID is the router's ID of the command.
	CommandID string `json:"commandId"`
	// User is the DCC user who sent the command, and UserRole its role.
	User     smki.EUI      `json:"user"`
	UserRole smki.UserRole `json:"userRole,omitempty"`
	// ServiceRef is the service reference variant, Target the device.
	ServiceRef string   `json:"serviceRef"`
	Target     smki.EUI `json:"target"`
	// Kind is the kind of breach, ThresholdID the threshold breached, and
	// Detail a description of the breach.
	Kind        anomaly.Kind `json:"kind"`
	ThresholdID string       `json:"threshold,omitempty"`
	Detail      string       `json:"detail,omitempty"`
	// Attributes are the values inside the command that attribute limits
	// check.
	Attributes map[string]int64 `json:"attributes,omitempty"`
	// CommandLength is the size of the command in bytes; Command the
	// command itself (base64), in single-record responses only.
	CommandLength int    `json:"commandLength"`
	Command       []byte `json:"command,omitempty"`
	// At is when the router received the command, CreatedAt when it was
	// quarantined.
	At        time.Time `json:"at"`
	CreatedAt time.Time `json:"createdAt"`
	// State is quarantined, released or deleted.
	State anomaly.State `json:"state"`
	// DecidedBy, DecidedAt and Reason say who released or deleted the
	// command, when and why.
	DecidedBy string    `json:"decidedBy,omitempty"`
	DecidedAt time.Time `json:"decidedAt,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// Forwarding is, once released, what became of the command's
	// forwarding through the router.
	Forwarding *ForwardingView `json:"forwarding,omitempty"`
}

// ForwardingView is the JSON form of a released command's forwarding.
type ForwardingView struct {
	// State is pending (the router forwards it at NextAttempt), forwarded,
	// failed (given up, with Error) or unknown (released before outcomes
	// were recorded).
	State anomaly.ForwardState `json:"state"`
	// Attempts is how many attempts the router has made.
	Attempts int `json:"attempts"`
	// NextAttempt is, while pending, when the next attempt is due.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// At is when the command was forwarded or given up on.
	At time.Time `json:"at,omitzero"`
	// Error is why the last attempt failed.
	Error string `json:"error,omitempty"`
	// CommandID is the router's ID of the forwarded command.
	CommandID string `json:"commandId,omitempty"`
}

func quarantineView(q anomaly.Quarantine, withCommand bool) QuarantineView {
	v := QuarantineView{
		Ref: q.Ref, CommandID: q.CommandID, User: q.User, UserRole: q.UserRole, ServiceRef: q.ServiceRef,
		Target: q.Target, Kind: q.Kind, ThresholdID: q.ThresholdID, Detail: q.Detail, Attributes: q.Attributes,
		CommandLength: len(q.Command), At: q.At, CreatedAt: q.CreatedAt, State: q.State,
		DecidedBy: q.DecidedBy, DecidedAt: q.DecidedAt, Reason: q.Reason,
	}
	if withCommand {
		v.Command = q.Command
	}
	if f := q.Forwarding; f.State != anomaly.ForwardNone {
		v.Forwarding = &ForwardingView{State: f.State, Attempts: f.Attempts, At: f.At, Error: f.Error, CommandID: f.CommandID}
		if f.State == anomaly.ForwardPending {
			v.Forwarding.NextAttempt = f.Next
		}
	}
	return v
}

// QuarantineList is a page of quarantine records, newest first.
type QuarantineList struct {
	// Items are the records of this page.
	Items []QuarantineView `json:"items"`
	// Next, when the page is full, is the link to the following page.
	Next string `json:"next,omitempty"`
}

// ReleaseResult is the answer to a release: the released record and, when
// this process forwarded it (200), the router's receipt for the forwarded
// command. When the router's release sweeper forwards it (202), Forwarded
// is absent and the record's forwarding is pending: GET the record for the
// outcome.
type ReleaseResult struct {
	// Quarantine is the record, now released.
	Quarantine QuarantineView `json:"quarantine"`
	// Forwarded is the router's receipt for the command carried on.
	Forwarded any `json:"forwarded,omitempty"`
}

// ThresholdList is every threshold the operator may see.
type ThresholdList struct {
	// Items are the thresholds, in the anomaly package's wire form.
	Items []anomaly.Threshold `json:"items"`
}

// UsageView is a live count against a threshold.
type UsageView struct {
	// Threshold is the threshold counted against.
	Threshold anomaly.Threshold `json:"threshold"`
	// Count is the number of commands counted in its window now.
	Count int64 `json:"count"`
}

// UsageList is the answer to GET /v1/usage.
type UsageList struct {
	// User is the user counted; absent for the DCC-wide counts.
	User *smki.EUI `json:"user,omitempty"`
	// Items are the counts.
	Items []UsageView `json:"items"`
}

// DecisionRequest is the body of a release, a delete, or a threshold
// deletion.
type DecisionRequest struct {
	// Reason says why, for the audit log and the user's alert. Required.
	Reason string `json:"reason"`
}
