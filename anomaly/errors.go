package anomaly

import "errors"

// Sentinel errors of package anomaly, usable with errors.Is. Returned errors
// wrap them with the context of what failed and name the offending field.
var (
	// ErrInvalid is returned for a malformed threshold, request, filter or
	// argument: the error text names the field.
	ErrInvalid = errors.New("anomaly: invalid")
	// ErrNotStricter is returned when a user's own threshold is not stricter
	// than the DCC's threshold for the same scope.
	ErrNotStricter = errors.New("anomaly: user threshold not stricter than the DCC's")
	// ErrForbidden is returned when the actor's roles do not permit the
	// action, or a user acts on another user's record.
	ErrForbidden = errors.New("anomaly: forbidden")
	// ErrNotFound is returned for an unknown quarantine reference or
	// threshold ID.
	ErrNotFound = errors.New("anomaly: not found")
	// ErrConflict is returned when a quarantined command is no longer in the
	// quarantined state (released or deleted already), and by a Store asked
	// to add a quarantine record under a reference already used.
	ErrConflict = errors.New("anomaly: conflicting state")
	// ErrTwoPerson is returned when a change needs a second operator's
	// approval (decision 023): loosening or deleting a DCC threshold. The
	// error is a *TwoPersonError saying what and why; the caller proposes
	// the change (package proposal), and on approval applies it with
	// SetThresholdApproved or DeleteThresholdApproved.
	ErrTwoPerson = errors.New("anomaly: needs a second operator's approval")
)

// TwoPersonError is the ErrTwoPerson refusal of a threshold change: the
// threshold as it stands, the change asked for, and why it needs a second
// operator.
type TwoPersonError struct {
	// Current is the threshold as it stands.
	Current Threshold
	// Next is the threshold asked for; zero for a deletion.
	Next Threshold
	// Why says what loosens.
	Why string
}

func (e *TwoPersonError) Error() string {
	return ErrTwoPerson.Error() + ": " + e.Current.ID + ": " + e.Why
}

// Unwrap makes errors.Is(err, ErrTwoPerson) hold.
func (e *TwoPersonError) Unwrap() error { return ErrTwoPerson }

// Approval names the two operators behind a change made on approval of a
// proposal (package proposal): it goes into the change's audit entry.
type Approval struct {
	// Proposal is the proposal's ID.
	Proposal string
	// Proposer and Approver name the two operators.
	Proposer, Approver string
	// Current, when set, is the threshold as it stood when the change was
	// proposed: the approved change applies only if it still stands so
	// (ErrConflict otherwise), so that a change made meanwhile is not
	// overwritten.
	Current *Threshold
}
