package repository

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is the class of a repository error. Each kind maps to one HTTP status
// and one problem type in the server's single error handler.
type Kind int

// The kinds of repository error.
const (
	// KindInternal is an unexpected failure of the server or a dependency.
	KindInternal Kind = iota
	// KindBadRequest is malformed or invalid input.
	KindBadRequest
	// KindUnauthenticated is a missing or unknown operator credential.
	KindUnauthenticated
	// KindForbidden is a known operator acting beyond its permissions.
	KindForbidden
	// KindNotFound is an unknown certificate, CA, CRL or route.
	KindNotFound
	// KindConflict is a write that contradicts what the repository holds.
	KindConflict
	// KindTooLarge is a request body over the configured limit.
	KindTooLarge
	// KindUnsupportedMediaType is a request body of a type the route does not read.
	KindUnsupportedMediaType
	// KindMethodNotAllowed is a known route called with the wrong method.
	KindMethodNotAllowed
	// KindUnavailable is a feature this instance has not been configured with.
	KindUnavailable
)

// Sentinels for errors.Is, one per kind: every *Error matches the sentinel of
// its kind.
var (
	ErrInternal             = errors.New("repository: internal error")
	ErrBadRequest           = errors.New("repository: bad request")
	ErrUnauthenticated      = errors.New("repository: operator credential missing or invalid")
	ErrForbidden            = errors.New("repository: operator not allowed")
	ErrNotFound             = errors.New("repository: not found")
	ErrConflict             = errors.New("repository: conflict")
	ErrTooLarge             = errors.New("repository: request body too large")
	ErrUnsupportedMediaType = errors.New("repository: unsupported media type")
	ErrMethodNotAllowed     = errors.New("repository: method not allowed")
	ErrUnavailable          = errors.New("repository: not configured")
)

var kinds = [...]struct {
	sentinel error
	status   int
	slug     string
	title    string
}{
	KindInternal:             {ErrInternal, http.StatusInternalServerError, "internal", "Internal error"},
	KindBadRequest:           {ErrBadRequest, http.StatusBadRequest, "bad-request", "Bad request"},
	KindUnauthenticated:      {ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "Operator credential missing or invalid"},
	KindForbidden:            {ErrForbidden, http.StatusForbidden, "forbidden", "Operator not allowed"},
	KindNotFound:             {ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	KindConflict:             {ErrConflict, http.StatusConflict, "conflict", "Conflict"},
	KindTooLarge:             {ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Request body too large"},
	KindUnsupportedMediaType: {ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	KindMethodNotAllowed:     {ErrMethodNotAllowed, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"},
	KindUnavailable:          {ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
}

func (k Kind) info() (sentinel error, status int, slug, title string) {
	if k < 0 || int(k) >= len(kinds) {
		k = KindInternal
	}
	i := kinds[k]
	return i.sentinel, i.status, i.slug, i.title
}

// Status returns the HTTP status code for errors of kind k.
func (k Kind) Status() int { _, s, _, _ := k.info(); return s }

// String returns the short name of the kind, as used in problem type URIs.
func (k Kind) String() string { _, _, s, _ := k.info(); return s }

// Error is a repository error: a kind, the input parameter at fault (if any),
// a detail safe to show to the caller, and the underlying cause.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Param names the query parameter, path parameter or body field at
	// fault, if there is one.
	Param string
	// Detail says what is wrong, for the caller. It never holds secrets.
	Detail string
	// Err is the underlying cause, kept for errors.Is and the server log; it
	// is not shown to callers.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Detail
	if e.Param != "" {
		s = e.Param + ": " + s
	}
	if e.Err != nil {
		return fmt.Sprintf("repository: %s: %v", s, e.Err)
	}
	return "repository: " + s
}

// Unwrap returns the cause and the sentinel of the error's kind, so that
// errors.Is matches both.
func (e *Error) Unwrap() []error {
	sentinel, _, _, _ := e.Kind.info()
	if e.Err != nil {
		return []error{sentinel, e.Err}
	}
	return []error{sentinel}
}

func newError(k Kind, param, format string, args ...any) *Error {
	return &Error{Kind: k, Param: param, Detail: fmt.Sprintf(format, args...)}
}

func wrapError(k Kind, err error, param, format string, args ...any) *Error {
	return &Error{Kind: k, Param: param, Detail: fmt.Sprintf(format, args...), Err: err}
}

// Problem is an RFC 9457 problem details object, the body of every error
// response (media type application/problem+json).
type Problem struct {
	// Type is a URI naming the kind of problem.
	Type string `json:"type"`
	// Title is the short summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says what is wrong with this request.
	Detail string `json:"detail,omitempty"`
	// Param names the input at fault, if any.
	Param string `json:"param,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
}

// ProblemTypeBase prefixes the kind name in Problem.Type.
const ProblemTypeBase = "https://metertrust.org/problems/repository/"
