package gbz

import (
	"errors"
	"fmt"
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrMalformed is wrapped by every error about bytes that do not follow
	// the GBZ or ZCL grammar; the concrete error is a *ParseError naming the
	// field and the byte offset.
	ErrMalformed = errors.New("gbz: malformed payload")
	// ErrInvalid is wrapped when a value cannot be encoded: a field out of
	// range, a length that does not fit its field, or parts that contradict
	// each other.
	ErrInvalid = errors.New("gbz: invalid value")
	// ErrLayout is wrapped when a well-formed payload does not have the
	// layout of the use case its message code names (section 5.3); the
	// concrete error is a *LayoutError.
	ErrLayout = errors.New("gbz: payload does not fit the use case")
	// ErrUnknownUseCase is returned by Describe for a message code whose
	// payload layout this package does not detail.
	ErrUnknownUseCase = errors.New("gbz: no typed layout for this message code")
)

// ParseError describes malformed input: which field, at which byte offset,
// and what is wrong. Offsets count from the start of the bytes given to the
// parsing function. It wraps ErrMalformed.
type ParseError struct {
	// Field names the part of the grammar being read, such as
	// "component[1].length" or "read-attributes-response.record[0].status".
	Field string
	// Offset is the byte offset where the field starts or where the problem
	// was found.
	Offset int
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("gbz: malformed %s at offset %d: %s", e.Field, e.Offset, e.Reason)
}

// Unwrap lets errors.Is match ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

func parseErr(field string, off int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// LayoutError says why a payload does not fit a use case of section 5.3. It
// wraps ErrLayout, and the parse error of a ZCL payload when there is one.
type LayoutError struct {
	// UseCase names the use case tried, such as "GCS32 command".
	UseCase string
	// Field names the part that does not fit, such as "component[0].cluster".
	Field string
	// Reason says what was found and what the layout requires.
	Reason string
	// Err is the underlying *ParseError, when the ZCL payload itself does
	// not parse; nil otherwise.
	Err error
}

// Error implements error.
func (e *LayoutError) Error() string {
	return fmt.Sprintf("gbz: payload is not a %s: %s: %s", e.UseCase, e.Field, e.Reason)
}

// Unwrap lets errors.Is match ErrLayout and, when set, Err.
func (e *LayoutError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrLayout, e.Err}
	}
	return []error{ErrLayout}
}
