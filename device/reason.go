package device

import (
	"errors"
	"fmt"
)

// Reason says why a meter discarded a message. A real meter sends nothing
// back to a message it refuses; the reason is what tests and fleet
// statistics see instead.
type Reason uint8

// The reasons a meter discards a message. Each has a sentinel error
// (ErrMalformed, ErrBadMAC, ...) usable with errors.Is on what Handle returns.
const (
	// ReasonMalformed: the bytes do not parse as a GBCS message, or an
	// authentic command carries a payload the use case cannot decode.
	ReasonMalformed Reason = iota
	// ReasonWrongRecipient: the message is addressed to another device.
	ReasonWrongRecipient
	// ReasonNotCommand: the message is a response or an alert, or has no
	// MAC header (a pre-command that did not pass the access control broker).
	ReasonNotCommand
	// ReasonBadMAC: the access control broker's MAC does not verify.
	ReasonBadMAC
	// ReasonReplay: the originator counter is not greater than the last one
	// accepted from that originator.
	ReasonReplay
	// ReasonUnsupported: the message code names a use case this meter does
	// not execute (including gas use cases sent to an electricity meter and
	// the reverse).
	ReasonUnsupported
	// ReasonUnknownSigner: the originator of a command is in none of the
	// meter's trust anchors.
	ReasonUnknownSigner
	// ReasonRoleNotAllowed: the originator is a known remote party whose role
	// may not send this command.
	ReasonRoleNotAllowed
	// ReasonBadSignature: a critical command is unsigned, or its signature
	// does not verify with the originator's digital-signature anchor.
	ReasonBadSignature
	// ReasonStaleSequence: a CS02b credential update carries an authorising
	// party sequence number not greater than the one the meter holds.
	ReasonStaleSequence
	// ReasonRejected: an authentic, well-formed command that the meter's
	// state refuses (a CS02b whose certificates are unusable, a CS02d whose
	// certificate does not match the pending key, ...).
	ReasonRejected
	// ReasonInternal: the meter could not build its response (a key store
	// failure).
	ReasonInternal

	numReasons = int(ReasonInternal) + 1
)

// Sentinel errors, one per Reason, wrapped by the *DiscardError Handle
// returns.
var (
	// ErrMalformed is the sentinel of ReasonMalformed.
	ErrMalformed = errors.New("device: malformed message")
	// ErrWrongRecipient is the sentinel of ReasonWrongRecipient.
	ErrWrongRecipient = errors.New("device: message is for another device")
	// ErrNotCommand is the sentinel of ReasonNotCommand.
	ErrNotCommand = errors.New("device: not a MAC'd command")
	// ErrBadMAC is the sentinel of ReasonBadMAC.
	ErrBadMAC = errors.New("device: bad MAC")
	// ErrReplay is the sentinel of ReasonReplay.
	ErrReplay = errors.New("device: replayed counter")
	// ErrUnsupported is the sentinel of ReasonUnsupported.
	ErrUnsupported = errors.New("device: unsupported use case")
	// ErrUnknownSigner is the sentinel of ReasonUnknownSigner.
	ErrUnknownSigner = errors.New("device: originator not in trust anchors")
	// ErrRoleNotAllowed is the sentinel of ReasonRoleNotAllowed.
	ErrRoleNotAllowed = errors.New("device: role not allowed for this command")
	// ErrBadSignature is the sentinel of ReasonBadSignature.
	ErrBadSignature = errors.New("device: bad signature")
	// ErrStaleSequence is the sentinel of ReasonStaleSequence.
	ErrStaleSequence = errors.New("device: stale credential sequence number")
	// ErrRejected is the sentinel of ReasonRejected.
	ErrRejected = errors.New("device: command rejected")
	// ErrInternal is the sentinel of ReasonInternal.
	ErrInternal = errors.New("device: internal error")
)

var (
	errByReason = [numReasons]error{ErrMalformed, ErrWrongRecipient, ErrNotCommand, ErrBadMAC, ErrReplay,
		ErrUnsupported, ErrUnknownSigner, ErrRoleNotAllowed, ErrBadSignature, ErrStaleSequence, ErrRejected, ErrInternal}
	reasonNames = [numReasons]string{"malformed", "wrong-recipient", "not-command", "bad-mac", "replay",
		"unsupported", "unknown-signer", "role-not-allowed", "bad-signature", "stale-sequence", "rejected", "internal"}
)

// Reasons lists every Reason, in order.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// String returns the reason's name, such as "bad-mac".
func (r Reason) String() string {
	if int(r) < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Err returns the sentinel error of r.
func (r Reason) Err() error {
	if int(r) < numReasons {
		return errByReason[r]
	}
	return ErrInternal
}

// DiscardError is returned by Handle for every message the meter discards.
// It wraps the sentinel of its Reason and the underlying cause.
type DiscardError struct {
	Reason Reason
	// Err is the underlying cause (a commands parse error, a signature
	// failure); it never holds key material.
	Err error
}

// Error says why the message was discarded.
func (e *DiscardError) Error() string {
	if e.Err == nil {
		return e.Reason.Err().Error()
	}
	return fmt.Sprintf("%v: %v", e.Reason.Err(), e.Err)
}

// Unwrap returns the Reason's sentinel and the cause, so errors.Is works
// with both.
func (e *DiscardError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason.Err()}
	}
	return []error{e.Reason.Err(), e.Err}
}

func discard(r Reason, format string, args ...any) *DiscardError {
	return &DiscardError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the Reason of an error returned by Handle or Deliver, and
// false if err is not a discard.
func ReasonOf(err error) (Reason, bool) {
	var d *DiscardError
	if errors.As(err, &d) {
		return d.Reason, true
	}
	return 0, false
}

// Stats counts what a meter (or a fleet) did with the messages it received.
type Stats struct {
	// Accepted counts commands executed and answered.
	Accepted uint64
	// Discarded counts discarded messages by Reason.
	Discarded [numReasons]uint64
}

// DiscardedFor returns the number of messages discarded for reason r.
func (s Stats) DiscardedFor(r Reason) uint64 {
	if int(r) < numReasons {
		return s.Discarded[r]
	}
	return 0
}

// TotalDiscarded returns the number of discarded messages.
func (s Stats) TotalDiscarded() uint64 {
	var n uint64
	for _, c := range s.Discarded {
		n += c
	}
	return n
}

// Add adds o's counts to s.
func (s *Stats) Add(o Stats) {
	s.Accepted += o.Accepted
	for i := range s.Discarded {
		s.Discarded[i] += o.Discarded[i]
	}
}
