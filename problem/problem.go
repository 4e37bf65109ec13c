// Package problem is the one error-kind machinery of metertrust's HTTP APIs
// (the router's API, the SMKI repository, the operator API and the
// reference meter's endpoint), in the manner of Boulder's probs and
// berrors: every API error carries exactly one Kind, each Kind is the
// sentinel that errors.Is matches and maps to one HTTP status and one
// problem type, and one echo HTTPErrorHandler per service writes every error
// as an RFC 9457 problem details body (media type application/problem+json).
//
// The problem types are one set for every service (Internal, BadRequest,
// ... below), named by the URIs TypeBase + name, such as
// https://metertrust.org/problems/conflict. Each service declares its own
// kinds with NewKind, so that its sentinels keep the service's name
// (errors.Is(err, repository.ErrNotFound)); a kind may carry a stable
// machine-readable error code finer than its type (the router's "replay" is
// of type conflict), which the body's "code" extension member carries.
package problem

import (
	"fmt"
	"net/http"
)

// MediaType is the media type of a problem details body (RFC 9457
// section 3).
const MediaType = "application/problem+json"

// TypeBase prefixes a problem type's name in its type URI, the same for
// every service: TypeBase + "not-found" is the type of every service's
// not-found problems.
const TypeBase = "https://metertrust.org/problems/"

// Type is a kind of problem as the client sees it: the HTTP status, the
// short name ending the problem type URI, and the title.
type Type struct {
	// Status is the HTTP status code.
	Status int
	// Name is the last segment of the problem type URI, e.g. "not-found".
	Name string
	// Title is the short, fixed summary of the problem type.
	Title string
}

// URI returns the problem type URI, TypeBase + t.Name.
func (t Type) URI() string { return TypeBase + t.Name }

// The problem types, one set for every service, in order of status:
// docs/api's OpenAPI documents list those each service answers, and clients
// may rely on their names.
var (
	BadRequest       = Type{http.StatusBadRequest, "bad-request", "Bad request"}
	Unauthenticated  = Type{http.StatusUnauthorized, "unauthenticated", "Credential missing or invalid"}
	Forbidden        = Type{http.StatusForbidden, "forbidden", "Not allowed"}
	NotFound         = Type{http.StatusNotFound, "not-found", "Not found"}
	MethodNotAllowed = Type{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	Conflict         = Type{http.StatusConflict, "conflict", "Conflict"}
	TooLarge         = Type{http.StatusRequestEntityTooLarge, "too-large", "Request body too large"}
	URITooLong       = Type{http.StatusRequestURITooLong, "uri-too-long", "Request target too long"}
	// UnsupportedMediaType is a request body of a type the route does not
	// read.
	UnsupportedMediaType = Type{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	// Discarded is a command a meter discarded (a real meter does so
	// silently); the code names the reason, such as "replay".
	Discarded = Type{http.StatusUnprocessableEntity, "discarded", "Command discarded by the device"}
	// Quarantined is a command held by anomaly detection, not forwarded.
	Quarantined    = Type{http.StatusTooManyRequests, "quarantined", "Quarantined by anomaly detection"}
	HeaderTooLarge = Type{http.StatusRequestHeaderFieldsTooLarge, "header-too-large", "Request header fields too large"}
	Internal       = Type{http.StatusInternalServerError, "internal", "Internal error"}
	// ForwardFailed is a released quarantined command that could not be
	// forwarded.
	ForwardFailed = Type{http.StatusBadGateway, "forward-failed", "Released but not forwarded"}
	Unavailable   = Type{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}
)

// Types lists every problem type, in order of status, for documentation
// and tests.
func Types() []Type {
	return []Type{BadRequest, Unauthenticated, Forbidden, NotFound, MethodNotAllowed, Conflict, TooLarge, URITooLong,
		UnsupportedMediaType, Discarded, Quarantined, HeaderTooLarge, Internal, ForwardFailed, Unavailable}
}

// Kind is one class of error of one service. A *Kind is itself the sentinel
// error of its class: every *Error of the kind matches it with errors.Is.
type Kind struct {
	service string
	code    string
	text    string
	typ     Type
}

// NewKind returns the kind of service's errors of problem type t; its
// sentinel text is "service: text", e.g. "repository: not found".
func NewKind(service, text string, t Type) *Kind {
	return &Kind{service: service, text: text, typ: t}
}

// NewCodedKind is NewKind for a kind with its own stable error code, which
// problem bodies carry as their "code" member: the router's kinds, such as
// "replay" (of type Conflict).
func NewCodedKind(service, code, text string, t Type) *Kind {
	return &Kind{service: service, code: code, text: text, typ: t}
}

// Error returns the sentinel text, prefixed with the service's name.
func (k *Kind) Error() string { return k.service + ": " + k.text }

// Type returns the problem type the kind maps to.
func (k *Kind) Type() Type { return k.typ }

// Status returns the HTTP status code for errors of the kind.
func (k *Kind) Status() int { return k.typ.Status }

// String returns the kind's problem type name, as used in problem type URIs.
func (k *Kind) String() string { return k.typ.Name }

// Code returns the kind's error code, or its problem type name if it was
// given none.
func (k *Kind) Code() string {
	if k.code != "" {
		return k.code
	}
	return k.typ.Name
}

// Text returns the kind's summary, its sentinel text without the service's
// name.
func (k *Kind) Text() string { return k.text }

// Error is an API error: a kind, the input at fault (if any), a detail safe
// to show the caller, and the underlying cause.
type Error struct {
	// Kind classifies the error; it must not be nil.
	Kind *Kind
	// Param names the query parameter, path parameter, header or body field
	// at fault, if there is one.
	Param string
	// Detail says what is wrong, for the caller. It never holds secrets.
	Detail string
	// Err is the underlying cause, for errors.Is and the server log; it is
	// not shown to callers.
	Err error
	// Code, if set, is the stable error code of this error, which the body's
	// "code" member carries instead of the kind's own (the reference
	// meter's discard reason).
	Code string
	// Extension is a service's extra problem member for this error (the
	// operator API's released quarantine record); the service's
	// Handler.Body puts it in the response.
	Extension any
}

// New returns an error of kind k about param with a formatted detail.
func New(k *Kind, param, format string, args ...any) *Error {
	return &Error{Kind: k, Param: param, Detail: fmt.Sprintf(format, args...)}
}

// Wrap is New keeping err as the cause.
func Wrap(k *Kind, err error, param, format string, args ...any) *Error {
	return &Error{Kind: k, Param: param, Detail: fmt.Sprintf(format, args...), Err: err}
}

// Error implements error: "service: param: detail: cause".
func (e *Error) Error() string {
	service := "problem"
	if e.Kind != nil {
		service = e.Kind.service
	}
	s := e.Detail
	if e.Param != "" {
		s = e.Param + ": " + s
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", service, s, e.Err)
	}
	return service + ": " + s
}

// Unwrap returns the kind (the sentinel) and the cause, so that errors.Is
// matches both.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Details is an RFC 9457 problem details object. A service with extension
// members embeds it in its own body type, so that they follow the standard
// members.
type Details struct {
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
	// Code is the extension member with the error's stable machine-readable
	// code, finer than its type (the router's "replay", "signature", ...):
	// the Error's Code, else its kind's code if it was given one.
	Code string `json:"code,omitempty"`
}
