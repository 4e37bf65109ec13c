package ra

import "github.com/metertrust/metertrust/problem"

// The kinds of error the API answers, each mapped to one HTTP status and
// problem type by the server's error handler.
var (
	// ErrInternal is an unexpected failure of the service or the store.
	ErrInternal = problem.NewKind("ca", "internal error", problem.Internal)
	// ErrBadRequest is malformed or invalid input, or a request the CA
	// refuses as such (a CSR off its profile, an unknown usage).
	ErrBadRequest = problem.NewKind("ca", "bad request", problem.BadRequest)
	// ErrUnauthenticated is a missing, revoked or unverifiable client
	// certificate, or a missing or unknown operator credential.
	ErrUnauthenticated = problem.NewKind("ca", "client or operator credential missing or invalid", problem.Unauthenticated)
	// ErrForbidden is a known operator acting beyond its roles.
	ErrForbidden = problem.NewKind("ca", "operator not allowed", problem.Forbidden)
	// ErrNotFound is an unknown certificate, CA or route.
	ErrNotFound = problem.NewKind("ca", "not found", problem.NotFound)
	// ErrConflict is a request that contradicts the CA's state: a
	// certificate already revoked, a closed or exhausted batch.
	ErrConflict = problem.NewKind("ca", "conflict", problem.Conflict)
	// ErrTooLarge is a request body over the limit.
	ErrTooLarge = problem.NewKind("ca", "request body too large", problem.TooLarge)
	// ErrUnsupportedMediaType is a body that is not application/json.
	ErrUnsupportedMediaType = problem.NewKind("ca", "unsupported media type", problem.UnsupportedMediaType)
	// ErrMethodNotAllowed is a known route called with the wrong method.
	ErrMethodNotAllowed = problem.NewKind("ca", "method not allowed", problem.MethodNotAllowed)
	// ErrSelfApproval is an operator approving its own proposal: two-person
	// control needs a second operator (code self-approval, 403).
	ErrSelfApproval = problem.NewCodedKind("ca", "self-approval", "the proposer may not approve its own proposal", problem.Forbidden)
	// ErrProposalExpired is a proposal whose time for approval has passed
	// (code proposal-expired, 409).
	ErrProposalExpired = problem.NewCodedKind("ca", "proposal-expired", "proposal expired", problem.Conflict)
	// ErrUnavailable is a key the CA cannot load (no key, not an invalid
	// request) or a dependency that is down.
	ErrUnavailable = problem.NewKind("ca", "unavailable", problem.Unavailable)
)

var kinds = []*problem.Kind{ErrInternal, ErrBadRequest, ErrUnauthenticated, ErrForbidden, ErrNotFound, ErrConflict,
	ErrTooLarge, ErrUnsupportedMediaType, ErrMethodNotAllowed, ErrUnavailable, ErrSelfApproval, ErrProposalExpired}
