package operator

import "github.com/metertrust/metertrust/problem"

// Error is an operator API error: a kind (one of the Err sentinels below),
// the input at fault (if any), a detail safe to show the caller, and the
// underlying cause. errors.Is matches both the kind and the cause. The
// released record of an ErrForwardFailed error is its Extension, a
// *QuarantineView.
type Error = problem.Error

// The kinds of operator API error, each the sentinel errors.Is matches for
// every *Error of the kind, and each mapped to one HTTP status and problem
// type by the server's error handler.
var (
	// ErrInternal is an unexpected failure of the server or a dependency.
	ErrInternal = problem.NewKind("operator", "internal error", problem.Internal)
	// ErrBadRequest is malformed or invalid input; Param names it.
	ErrBadRequest = problem.NewKind("operator", "bad request", problem.BadRequest)
	// ErrUnauthenticated is a missing, malformed or unknown operator token.
	ErrUnauthenticated = problem.NewKind("operator", "credential missing or invalid", problem.Unauthenticated)
	// ErrForbidden is an operator acting beyond its roles.
	ErrForbidden = problem.NewKind("operator", "not allowed", problem.Forbidden)
	// ErrNotFound is an unknown quarantine reference, threshold or route.
	ErrNotFound = problem.NewKind("operator", "not found", problem.NotFound)
	// ErrConflict is an action the current state forbids: a quarantined
	// command already released or deleted, a user threshold not stricter
	// than the DCC's.
	ErrConflict = problem.NewKind("operator", "conflict", problem.Conflict)
	// ErrTooLarge is a request body over the configured limit.
	ErrTooLarge = problem.NewKind("operator", "request body too large", problem.TooLarge)
	// ErrUnsupportedMediaType is a request body that is not JSON.
	ErrUnsupportedMediaType = problem.NewKind("operator", "unsupported media type", problem.UnsupportedMediaType)
	// ErrMethodNotAllowed is a known route called with the wrong method.
	ErrMethodNotAllowed = problem.NewKind("operator", "method not allowed", problem.MethodNotAllowed)
	// ErrForwardFailed is a released command the router refused or could
	// not take (a counter overtaken while it was held, a certificate
	// revoked since, the store unreachable): nothing was forwarded, and the
	// record stays released.
	ErrForwardFailed = problem.NewKind("operator", "released command not forwarded", problem.ForwardFailed)
	// ErrSelfApproval is an operator approving its own proposal: two-person
	// control needs a second, different operator (code self-approval).
	ErrSelfApproval = problem.NewCodedKind("operator", "self-approval", "the proposer may not approve its own proposal", problem.Forbidden)
	// ErrProposalExpired is a proposal whose time for approval has passed
	// (code proposal-expired).
	ErrProposalExpired = problem.NewCodedKind("operator", "proposal-expired", "proposal expired", problem.Conflict)
	// ErrUnavailable is a dependency this instance was not given.
	ErrUnavailable = problem.NewKind("operator", "not configured", problem.Unavailable)
)

// kinds lists the operator API's kinds for its error handler.
var kinds = []*problem.Kind{ErrInternal, ErrBadRequest, ErrUnauthenticated, ErrForbidden, ErrNotFound, ErrConflict,
	ErrTooLarge, ErrUnsupportedMediaType, ErrMethodNotAllowed, ErrForwardFailed, ErrUnavailable, ErrSelfApproval, ErrProposalExpired}

// Problem is an RFC 9457 problem details object, the body of every error
// response (media type application/problem+json).
type Problem struct {
	problem.Details
	// Quarantine is the record of a released command that could not be
	// forwarded (type forward-failed).
	Quarantine *QuarantineView `json:"quarantine,omitempty"`
}

// problemBody is the error handler's Body: the standard members, then the
// released record of a forward-failed error.
func problemBody(d problem.Details, e *Error) any {
	q, _ := e.Extension.(*QuarantineView)
	return Problem{Details: d, Quarantine: q}
}

// ProblemTypeBase prefixes the problem type's name in Problem.Type: the
// one base of every service's problem types.
const ProblemTypeBase = problem.TypeBase
