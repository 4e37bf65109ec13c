package asn

import (
	"errors"
	"fmt"
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrMalformed is wrapped by every error about bytes that do not follow
	// the payload grammar; the concrete error is a *ParseError naming the
	// field and the byte offset.
	ErrMalformed = errors.New("asn: malformed payload")
	// ErrInvalid is wrapped by every error about a value that cannot be
	// encoded: a field out of range, a CHOICE with no or two alternatives, a
	// fixed-size string of the wrong size.
	ErrInvalid = errors.New("asn: invalid value")
	// ErrNotASN1 is returned by the dispatch functions for a message code
	// and CRA flag whose payload is not one of the ASN.1 payloads of this
	// package (a DLMS or GBZ payload, or an unknown code).
	ErrNotASN1 = errors.New("asn: no ASN.1 payload for this message code")
)

// ParseError describes a malformed payload: which field, at which byte
// offset of the payload, and what is wrong. It wraps ErrMalformed.
type ParseError struct {
	// Field names the ASN.1 type and field being read, such as
	// "ReplacementOutcome.statusCode".
	Field string
	// Offset is the byte offset in the payload where the field starts or
	// where the problem was found.
	Offset int
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("asn: malformed %s at offset %d: %s", e.Field, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

func parseErr(field string, off int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func invalid(field string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}
