package dlms

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped by every error about bytes that do not follow
	// the DLMS APDU or A-XDR grammar; the concrete error is a *ParseError
	// naming the field and offset.
	ErrMalformed = errors.New("dlms: malformed")
	// ErrInvalid is wrapped when a value cannot be encoded: a field out of
	// range, a compact-array element that does not follow its description,
	// a typed value that does not fit its Data shape.
	ErrInvalid = errors.New("dlms: invalid value")
	// ErrMismatch is wrapped when a well-formed APDU or Data value does not
	// have the layout a use-case reader expects.
	ErrMismatch = errors.New("dlms: layout does not match the use case")
	// ErrUnknownUseCase is returned by Describe for a message code it has no
	// typed reader for.
	ErrUnknownUseCase = errors.New("dlms: no typed reader for this message code")
)

// ParseError describes malformed input: which field, at which byte offset of
// the input, and what is wrong. It wraps ErrMalformed.
type ParseError struct {
	// Field names the part of the grammar being read, such as
	// "access-request.spec[0].class-id" or "data.structure[2]".
	Field string
	// Offset is the byte offset in the input where the field starts or where
	// the problem was found.
	Offset int
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("dlms: malformed %s at offset %d: %s", e.Field, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

func parseErr(field string, off int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMismatch, fmt.Sprintf(format, args...))
}
