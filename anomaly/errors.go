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
)
