package repository

import "github.com/metertrust/metertrust/problem"

// Error is a repository error: a kind (one of the Err sentinels below), the
// input parameter at fault (if any), a detail safe to show to the caller,
// and the underlying cause, kept for errors.Is and the server log but not
// shown to callers. errors.Is matches both the kind and the cause.
type Error = problem.Error

// The kinds of repository error, each the sentinel errors.Is matches for
// every *Error of the kind, and each mapped to one HTTP status and problem
// type by the server's error handler.
var (
	// ErrInternal is an unexpected failure of the server or a dependency.
	ErrInternal = problem.NewKind("repository", "internal error", problem.Internal)
	// ErrBadRequest is malformed or invalid input.
	ErrBadRequest = problem.NewKind("repository", "bad request", problem.BadRequest)
	// ErrUnauthenticated is a missing or unknown operator credential.
	ErrUnauthenticated = problem.NewKind("repository", "operator credential missing or invalid", problem.Unauthenticated)
	// ErrForbidden is a known operator acting beyond its permissions.
	ErrForbidden = problem.NewKind("repository", "operator not allowed", problem.Forbidden)
	// ErrNotFound is an unknown certificate, CA, CRL or route.
	ErrNotFound = problem.NewKind("repository", "not found", problem.NotFound)
	// ErrConflict is a write that contradicts what the repository holds.
	ErrConflict = problem.NewKind("repository", "conflict", problem.Conflict)
	// ErrTooLarge is a request body over the configured limit.
	ErrTooLarge = problem.NewKind("repository", "request body too large", problem.TooLarge)
	// ErrUnsupportedMediaType is a request body of a type the route does
	// not read.
	ErrUnsupportedMediaType = problem.NewKind("repository", "unsupported media type", problem.UnsupportedMediaType)
	// ErrMethodNotAllowed is a known route called with the wrong method.
	ErrMethodNotAllowed = problem.NewKind("repository", "method not allowed", problem.MethodNotAllowed)
	// ErrUnavailable is a feature this instance has not been configured
	// with.
	ErrUnavailable = problem.NewKind("repository", "not configured", problem.Unavailable)
)

// kinds lists the repository's kinds for its error handler.
var kinds = []*problem.Kind{ErrInternal, ErrBadRequest, ErrUnauthenticated, ErrForbidden, ErrNotFound, ErrConflict,
	ErrTooLarge, ErrUnsupportedMediaType, ErrMethodNotAllowed, ErrUnavailable}

// Problem is an RFC 9457 problem details object, the body of every error
// response (media type application/problem+json).
type Problem = problem.Details

// ProblemTypeBase prefixes the problem type's name in Problem.Type: the
// one base of every service's problem types.
const ProblemTypeBase = problem.TypeBase
