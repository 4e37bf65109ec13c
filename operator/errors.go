package operator

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is the class of an operator API error. Each kind maps to one HTTP
// status and one problem type, in the server's single error handler.
type Kind int

// The kinds of operator API error.
const (
	// KindInternal is an unexpected failure of the server or a dependency.
	KindInternal Kind = iota
	// KindBadRequest is malformed or invalid input; Param names it.
	KindBadRequest
	// KindUnauthenticated is a missing, malformed or unknown operator
	// token.
	KindUnauthenticated
	// KindForbidden is an operator acting beyond its roles.
	KindForbidden
	// KindNotFound is an unknown quarantine reference, threshold or route.
	KindNotFound
	// KindConflict is an action the current state forbids: a quarantined
	// command already released or deleted, a user threshold not stricter
	// than the DCC's.
	KindConflict
	// KindTooLarge is a request body over the configured limit.
	KindTooLarge
	// KindUnsupportedMediaType is a request body that is not JSON.
	KindUnsupportedMediaType
	// KindMethodNotAllowed is a known route called with the wrong method.
	KindMethodNotAllowed
	// KindForwardFailed is a released command the router refused or could
	// not take (a counter overtaken while it was held, a certificate
	// revoked since, the store unreachable): nothing was forwarded, and the
	// record stays released.
	KindForwardFailed
	// KindUnavailable is a dependency this instance was not given.
	KindUnavailable
)

// Sentinels for errors.Is, one per kind: every *Error matches the sentinel
// of its kind.
var (
	ErrInternal             = errors.New("operator: internal error")
	ErrBadRequest           = errors.New("operator: bad request")
	ErrUnauthenticated      = errors.New("operator: credential missing or invalid")
	ErrForbidden            = errors.New("operator: not allowed")
	ErrNotFound             = errors.New("operator: not found")
	ErrConflict             = errors.New("operator: conflict")
	ErrTooLarge             = errors.New("operator: request body too large")
	ErrUnsupportedMediaType = errors.New("operator: unsupported media type")
	ErrMethodNotAllowed     = errors.New("operator: method not allowed")
	ErrForwardFailed        = errors.New("operator: released command not forwarded")
	ErrUnavailable          = errors.New("operator: not configured")
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
	KindForwardFailed:        {ErrForwardFailed, http.StatusBadGateway, "forward-failed", "Released but not forwarded"},
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

// Error is an operator API error: a kind, the input at fault (if any), a
// detail safe to show the caller, and the underlying cause.
type Error struct {
	// Kind classifies the error.
	Kind Kind
	// Param names the query parameter, path parameter or body field at
	// fault, if there is one.
	Param string
	// Detail says what is wrong, for the caller. It never holds secrets.
	Detail string
	// Err is the underlying cause, for errors.Is and the server log.
	Err error
	// Quarantine, for KindForwardFailed, is the released record, returned
	// in the problem so the caller sees the command's state.
	Quarantine *QuarantineView
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Detail
	if e.Param != "" {
		s = e.Param + ": " + s
	}
	if e.Err != nil {
		return fmt.Sprintf("operator: %s: %v", s, e.Err)
	}
	return "operator: " + s
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
	// Quarantine is the record of a released command that could not be
	// forwarded (type forward-failed).
	Quarantine *QuarantineView `json:"quarantine,omitempty"`
}

// ProblemTypeBase prefixes the kind name in Problem.Type.
const ProblemTypeBase = "https://metertrust.org/problems/operator/"
