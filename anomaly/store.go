package anomaly

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Kind is the kind of breach that quarantined a command, as reported to the
// user with the quarantine event reference (GBCS section 10).
type Kind string

// The kinds of breach.
const (
	KindUserThreshold   Kind = "user-threshold"
	KindDCCThreshold    Kind = "dcc-threshold"
	KindAttributeLimits Kind = "attribute-limits"
)

// State is the state of a quarantined command.
type State string

// The states of a quarantined command. Quarantined is the only state that
// may change, once, to released or deleted.
const (
	StateQuarantined State = "quarantined"
	StateReleased    State = "released"
	StateDeleted     State = "deleted"
)

// ParseState accepts a state name.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateQuarantined, StateReleased, StateDeleted:
		return st, nil
	}
	return "", fmt.Errorf("%w: state %q (want quarantined, released or deleted)", ErrInvalid, s)
}

// Quarantine is the record of a quarantined command.
type Quarantine struct {
	// Ref is the quarantine event reference given to the user, unique and
	// readable: "Q-20261123-3F7KQ2M4XJ".
	Ref string
	// CommandID is the router's ID of the command (Request.ID).
	CommandID string
	// User, UserRole, ServiceRef and Target are those of the request.
	User       smki.EUI
	UserRole   smki.UserRole
	ServiceRef string
	Target     smki.EUI
	// Kind is the kind of breach.
	Kind Kind
	// ThresholdID names the threshold breached.
	ThresholdID string
	// Detail describes the breach for people: the threshold and the count
	// or value.
	Detail string
	// Command is the command as submitted, so that a release can carry it
	// through the rest of the pipeline.
	Command []byte
	// Attributes are the request's attributes.
	Attributes map[string]int64
	// At is the time of the request.
	At time.Time
	// State is quarantined, released or deleted.
	State State
	// CreatedAt is when the command was quarantined.
	CreatedAt time.Time
	// DecidedBy, DecidedAt and Reason record who released or deleted it,
	// when and why; empty while quarantined.
	DecidedBy string
	DecidedAt time.Time
	Reason    string
	// Forwarding is what became of a released command's forwarding: the
	// router's release sweeper, or the process that released it, carries
	// it through the rest of the pipeline once and records the outcome
	// here. Zero until released.
	Forwarding Forwarding
}

// ForwardState is the state of a released command's forwarding.
type ForwardState string

// The states of a released command's forwarding. A release leaves it
// pending; a router claims it for one attempt at a time and records
// forwarded, failed (given up, with why), or pending again with a later
// retry. Unknown marks releases made before forwarding was recorded.
const (
	ForwardNone      ForwardState = ""
	ForwardPending   ForwardState = "pending"
	ForwardForwarded ForwardState = "forwarded"
	ForwardFailed    ForwardState = "failed"
	ForwardUnknown   ForwardState = "unknown"
)

// Forwarding is the durable record of a released command's forwarding.
type Forwarding struct {
	// State is pending, forwarded, failed or unknown; empty until
	// released.
	State ForwardState
	// Attempts counts the attempts claimed so far.
	Attempts int
	// Next is, while pending, when the next attempt is due, or when the
	// claim of the attempt under way lapses.
	Next time.Time
	// At is when the command was forwarded or given up on.
	At time.Time
	// Error is why the last attempt failed; empty once forwarded.
	Error string
	// CommandID is the router's ID of the forwarded command.
	CommandID string
}

// ErrForwardPending is returned by a releaser that leaves a released
// command's forwarding to the router's release sweeper (a keyless operator
// process, or a release another router already claimed).
var ErrForwardPending = errors.New("anomaly: forwarding of the released command is pending")

// Filter selects quarantine records for listing, newest first.
type Filter struct {
	// User selects one user's records; zero for every user's.
	User smki.EUI
	// State selects one state; empty for all.
	State State
	// Before and BeforeRef page through the list: with Before set, only
	// records created before Before, or at Before with a reference below
	// BeforeRef, are selected. Pass the CreatedAt and Ref of the last record
	// of the previous page.
	Before    time.Time
	BeforeRef string
	// Limit is the most records returned: 1 to MaxList, 0 for DefaultList.
	Limit int
}

// List limits.
const (
	DefaultList = 100
	MaxList     = 1000
)

// Counter is one window count a Store evaluates: the events recorded under
// Key at times strictly after Since (every one of them, including any with
// a time later than the request's, recorded by an instance whose clock runs
// ahead) must number fewer than Limit for the request to pass. For a
// sliding window Since is the request time less the window; for a fixed
// window, just before the window's start.
type Counter struct {
	Key   string
	Since time.Time
	Limit int64
}

// Event is a request to record under each of Keys at At. At is truncated to
// the microsecond, the precision every Store keeps.
type Event struct {
	RequestID string
	Keys      []string
	At        time.Time
}

// Outcome is a Store's check-and-record result.
type Outcome struct {
	// Breached is the index in the counters of the first one whose count
	// had reached its limit, or -1 when the request passed and was
	// recorded.
	Breached int
	// Count is the breached counter's count of events in its window. A
	// store may stop counting at the limit (all a check needs to know), so
	// Count is at least the limit and may equal it when the true count is
	// higher (after a release, or a lowered limit).
	Count int64
}

// Passed reports whether the request passed and was recorded.
func (o Outcome) Passed() bool { return o.Breached < 0 }

// Decide is a change of a quarantined command's state, to released or
// deleted.
type Decide struct {
	Ref    string
	To     State
	By     string
	At     time.Time
	Reason string
	// Record, for a release, is the event to record for the released
	// command: it counts from the moment of its release. Nil for a delete.
	Record *Event
}

// AuditEntry is an entry for the audit log, which the Store appends with
// the change it describes.
type AuditEntry struct {
	Time    time.Time
	Actor   string
	Action  string // "anomaly.quarantine", "anomaly.release", ...
	Object  string // the quarantine reference or threshold ID
	Outcome string // OutcomeSuccess, or OutcomeRefused with the error in Details["error"]
	Details map[string]string
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeRefused = "refused"
)

// Store is what the Detector needs from persistence. Package store
// implements it on SQLite and PostgreSQL; anomalytest has an in-memory
// implementation for tests.
type Store interface {
	// CheckAndRecord counts, for each counter, the events in its window at
	// ev.At, and, only if every count is below its limit, records ev under
	// each of ev.Keys; the counting and the recording are one atomic step
	// with respect to every other CheckAndRecord on the same store, from
	// any process. Counters are checked in order; the first breached is
	// reported.
	CheckAndRecord(ctx context.Context, ev Event, counters []Counter) (Outcome, error)
	// CountEvents returns, for each counter, the number of events in its
	// window (Limit is ignored).
	CountEvents(ctx context.Context, counters []Counter) ([]int64, error)
	// PruneEvents deletes the events recorded strictly before before and
	// returns how many it deleted.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)

	// Thresholds returns every threshold.
	Thresholds(ctx context.Context) ([]Threshold, error)
	// PutThreshold inserts or replaces the threshold with t.ID and appends
	// a to the audit log, in one transaction.
	PutThreshold(ctx context.Context, t Threshold, a AuditEntry) error
	// DeleteThreshold deletes the threshold with id (an error wrapping
	// ErrNotFound if there is none) and appends a to the audit log.
	DeleteThreshold(ctx context.Context, id string, a AuditEntry) error

	// AddQuarantine stores a new quarantine record and appends a to the
	// audit log, in one transaction.
	AddQuarantine(ctx context.Context, q Quarantine, a AuditEntry) error
	// Quarantine returns the record with ref, or an error wrapping
	// ErrNotFound.
	Quarantine(ctx context.Context, ref string) (Quarantine, error)
	// ListQuarantine returns the records f selects, newest first.
	ListQuarantine(ctx context.Context, f Filter) ([]Quarantine, error)
	// DecideQuarantine moves the record d.Ref from quarantined to d.To
	// (a release leaving its Forwarding pending and due at d.At),
	// records d.Record if set, appends a to the audit log, all in one
	// transaction, and returns the updated record. It fails with an error
	// wrapping ErrNotFound for an unknown reference and ErrConflict when
	// the record is no longer quarantined, changing nothing.
	DecideQuarantine(ctx context.Context, d Decide, a AuditEntry) (Quarantine, error)

	// AppendAudit appends a to the audit log on its own, for refused
	// actions that change nothing.
	AppendAudit(ctx context.Context, a AuditEntry) error
}

// Notifier carries alerts between Detectors sharing a store (PostgreSQL
// LISTEN/NOTIFY). Payloads are at most MaxNotifyPayload bytes.
type Notifier interface {
	// Notify sends payload to every listener, including this process's.
	Notify(ctx context.Context, payload []byte) error
	// Listen calls fn with every payload notified, from any process,
	// until ctx is done or the connection fails; it returns ctx's error or
	// the failure. fn must not block.
	Listen(ctx context.Context, fn func(payload []byte)) error
}

// MaxNotifyPayload is the largest payload a Notifier must carry (PostgreSQL
// NOTIFY takes up to 8000 bytes).
const MaxNotifyPayload = 7900
