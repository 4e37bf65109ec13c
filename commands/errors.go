package commands

import (
	"errors"
	"fmt"
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrMalformed is wrapped by every error about bytes that do not follow
	// the GBCS message or payload grammar; the concrete error is a
	// *ParseError naming the field and offset.
	ErrMalformed = errors.New("commands: malformed message")
	// ErrBlockTransfer is wrapped when a message is a DLMS general block
	// transfer segment (tag 0xE0) rather than a whole message; reassemble the
	// blocks with Reassemble first.
	ErrBlockTransfer = errors.New("commands: general block transfer segment")
	// ErrSignature is returned when a Remote Party signature does not verify.
	ErrSignature = errors.New("commands: invalid signature")
	// ErrNoSignature is returned when a signature is required but absent.
	ErrNoSignature = errors.New("commands: message is not signed")
	// ErrMAC is returned when a MAC does not verify.
	ErrMAC = errors.New("commands: invalid MAC")
	// ErrNoMAC is returned when a MAC is required but the message has no MAC
	// header.
	ErrNoMAC = errors.New("commands: message has no MAC")
	// ErrDecrypt is returned when an encrypted payload fails authentication.
	ErrDecrypt = errors.New("commands: decryption failed")
	// ErrKey is wrapped by errors about unusable keys (wrong curve, wrong
	// type, wrong length).
	ErrKey = errors.New("commands: unusable key")
	// ErrInvalid is wrapped when a Message or payload value cannot be encoded
	// (a field out of range, a missing mandatory part).
	ErrInvalid = errors.New("commands: invalid value")
	// ErrNotPreCommand is returned when signing is asked of a message that is
	// not a pre-command.
	ErrNotPreCommand = errors.New("commands: not a pre-command")
	// ErrUnknownCode is returned by catalogue look-ups that find nothing.
	ErrUnknownCode = errors.New("commands: unknown message code")
)

// ParseError describes malformed input: which field, at which byte offset
// of the input, and what is wrong. It wraps ErrMalformed, and Err when set.
type ParseError struct {
	// Field names the part of the grammar being read, such as
	// "general-signing.recipient" or "cs02b.replacements".
	Field string
	// Offset is the byte offset in the input where the field starts or where
	// the problem was found.
	Offset int
	// Reason says what is wrong.
	Reason string
	// Err is an optional more specific sentinel (ErrBlockTransfer).
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("commands: malformed %s at offset %d: %s", e.Field, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match ErrMalformed and Err.
func (e *ParseError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformed, e.Err}
	}
	return []error{ErrMalformed}
}

func parseErr(field string, off int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: off, Reason: fmt.Sprintf(format, args...)}
}
