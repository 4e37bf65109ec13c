package router

import (
	"errors"
	"net/http"
)

// Kind is the one error-kind type of the router, in the manner of Boulder's
// berrors: every refusal wraps exactly one Kind, so errors.Is(err,
// router.ErrReplay) works, and the HTTP layer maps the kind to a status and a
// stable error code in one place.
type Kind struct {
	code   string
	title  string
	status int
}

// Error returns the kind's title prefixed with the package name.
func (k *Kind) Error() string { return "router: " + k.title }

// Code returns the kind's stable machine-readable error code, such as
// "replay".
func (k *Kind) Code() string { return k.code }

// Title returns a short human-readable summary of the kind.
func (k *Kind) Title() string { return k.title }

// Status returns the HTTP status the kind maps to.
func (k *Kind) Status() int { return k.status }

func kind(code string, status int, title string) *Kind {
	k := &Kind{code: code, title: title, status: status}
	kinds = append(kinds, k)
	return k
}

var kinds []*Kind

// Kinds lists every error kind, in pipeline order, for documentation and
// tests.
func Kinds() []*Kind { return append([]*Kind(nil), kinds...) }

// The error kinds, in the order of the pipeline stages that return them.
var (
	// ErrUnauthenticated: no caller identity, an unknown or revoked client
	// certificate, or one from another CA.
	ErrUnauthenticated = kind("unauthenticated", http.StatusUnauthorized, "caller not authenticated")
	// ErrMalformed: the bytes are not a well-formed GBCS command (truncated,
	// oversized, wrong lengths, not a command, already MAC'd).
	ErrMalformed = kind("malformed", http.StatusBadRequest, "malformed GBCS command")
	// ErrOriginator: the business originator of the command is not the
	// caller.
	ErrOriginator = kind("originator-mismatch", http.StatusForbidden, "business originator is not the caller")
	// ErrNotEligible: the caller's DCC user role may not send this service
	// request, or the message code is not in the catalogue.
	ErrNotEligible = kind("role-not-eligible", http.StatusForbidden, "user role not eligible for the service request")
	// ErrUnknownDevice: the target device is not in the device registry.
	ErrUnknownDevice = kind("unknown-device", http.StatusNotFound, "target device unknown")
	// ErrNotOwner: the caller is not the supplier or network operator of
	// the target device for its role, or an other user has no live consent.
	ErrNotOwner = kind("not-owner", http.StatusForbidden, "caller does not own the target device for its role")
	// ErrCertPath: the caller's organisation certificate is missing, does
	// not chain to the SMKI root, or is revoked.
	ErrCertPath = kind("certificate-path", http.StatusForbidden, "organisation certificate path or revocation check failed")
	// ErrSignature: a critical command is unsigned, or its signature does
	// not verify against the caller's digital-signing certificate.
	ErrSignature = kind("signature", http.StatusForbidden, "signature missing or invalid")
	// ErrReplay: the originator counter is not greater than the last
	// forwarded for this originator and target.
	ErrReplay = kind("replay", http.StatusConflict, "counter not greater than the last forwarded")
	// ErrCounterAhead: the originator counter is further ahead than the
	// router's bound allows (spec gbcs-security.md section 7, our rule):
	// more than 2^32 above the last forwarded for this originator and
	// target, or, for the pair's first command, more than one day ahead of
	// the clock in milliseconds. Forwarded, it would leave the device
	// refusing every later command from the originator.
	ErrCounterAhead = kind("counter-ahead", http.StatusConflict, "counter too far ahead of the last forwarded or the clock")
	// ErrQuarantined: the command breached an anomaly detection threshold
	// and was quarantined, not forwarded.
	ErrQuarantined = kind("quarantined", http.StatusTooManyRequests, "command quarantined by anomaly detection")
	// ErrNotFound: a command, response or other resource the caller asked
	// for does not exist or is not the caller's.
	ErrNotFound = kind("not-found", http.StatusNotFound, "not found")
	// ErrBadRequest: an API request (not GBCS bytes) is invalid: bad JSON,
	// an unsupported service request, bad parameters.
	ErrBadRequest = kind("bad-request", http.StatusBadRequest, "invalid request")
	// ErrConflict: the request contradicts the current state, such as
	// releasing a quarantined command already released or deleted.
	ErrConflict = kind("conflict", http.StatusConflict, "conflicting state")
	// ErrUnavailable: a dependency (store, key store, detector) failed; the
	// command was not accepted and may be resubmitted.
	ErrUnavailable = kind("unavailable", http.StatusServiceUnavailable, "service temporarily unavailable")

	// The HTTP layer's own kinds: requests refused before any handler
	// reads them as a command or a service request.

	// ErrMethodNotAllowed: a known path called with a method it does not
	// answer; the response's Allow header lists those it does.
	ErrMethodNotAllowed = kind("method-not-allowed", http.StatusMethodNotAllowed, "method not allowed")
	// ErrTooLarge: the request body is over the route's limit.
	ErrTooLarge = kind("too-large", http.StatusRequestEntityTooLarge, "request body too large")
	// ErrUnsupportedMediaType: the request body's Content-Type is missing,
	// malformed or not one the route reads.
	ErrUnsupportedMediaType = kind("unsupported-media-type", http.StatusUnsupportedMediaType, "unsupported media type")
	// ErrURITooLong: the request target (path and query) is over the
	// router's limit.
	ErrURITooLong = kind("uri-too-long", http.StatusRequestURITooLong, "request target too long")
	// ErrHeaderTooLarge: the request's header fields are over the router's
	// limit.
	ErrHeaderTooLarge = kind("header-too-large", http.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
)

// KindOf returns the Kind err wraps, or ErrUnavailable for an error that
// wraps none (an internal failure).
func KindOf(err error) *Kind {
	var k *Kind
	if errors.As(err, &k) {
		return k
	}
	return ErrUnavailable
}
