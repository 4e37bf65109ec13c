package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is a refusal by the router: the HTTP status and the RFC 9457
// problem document, whose Code is the router's stable error code. errors.Is
// matches it against the package's Err values by code.
type Error struct {
	Status int
	// Type is the problem type URI, Title its summary.
	Type, Title string
	// Code is the router's error code: "replay", "not-owner", ...
	Code string
	// Detail says what is wrong with this request; Param names the field.
	Detail, Param string
}

// Error returns the refusal as "router: STATUS TITLE (CODE): DETAIL", the
// form metertrust's command line prints.
func (e *Error) Error() string {
	d := e.Detail
	if e.Param != "" {
		d = e.Param + ": " + d
	}
	if e.Code != "" {
		return fmt.Sprintf("router: %d %s (%s): %s", e.Status, e.Title, e.Code, d)
	}
	return fmt.Sprintf("router: %d %s: %s", e.Status, e.Title, d)
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// The router's refusals by code, for errors.Is: each matches any *Error
// with its Code (the list is in the router's OpenAPI document,
// docs/api/router.json, and the package documentation says when each
// happens).
var (
	// ErrUnauthenticated (401): the client certificate is unknown,
	// revoked, or not from the DCCKI.
	ErrUnauthenticated = &Error{Code: "unauthenticated"}
	// ErrMalformed (400): the submitted bytes are not a well-formed GBCS
	// command.
	ErrMalformed = &Error{Code: "malformed"}
	// ErrOriginator (403): the command's business originator is not the
	// user.
	ErrOriginator = &Error{Code: "originator-mismatch"}
	// ErrNotEligible (403): the user's role may not send the service
	// request or call the route.
	ErrNotEligible = &Error{Code: "role-not-eligible"}
	// ErrUnknownDevice (404): the target is not in the router's device
	// registry.
	ErrUnknownDevice = &Error{Code: "unknown-device"}
	// ErrNotOwner (403): the user does not own the device for its role, an
	// other user has no live consent covering the request, a CIN is wrong,
	// or the registration data do not name the caller for a change of
	// supplier.
	ErrNotOwner = &Error{Code: "not-owner"}
	// ErrConsentPeriod (403): an other user's read reaches back more than
	// 13 months.
	ErrConsentPeriod = &Error{Code: "consent-period"}
	// ErrCertPath (403): an organisation certificate (the user's, or one
	// a change of supplier names) is missing, revoked, not the user's, of
	// the wrong usage or without a path to the SMKI root.
	ErrCertPath = &Error{Code: "certificate-path"}
	// ErrSignature (403): a critical command is unsigned or its signature
	// does not verify.
	ErrSignature = &Error{Code: "signature"}
	// ErrReplay (409): the originator counter was already used.
	ErrReplay = &Error{Code: "replay"}
	// ErrCounterAhead (409): the counter is too far ahead of the last one
	// or of the clock.
	ErrCounterAhead = &Error{Code: "counter-ahead"}
	// ErrQuarantined (429): the command breached an anomaly threshold, the
	// DCC's or the user's own, and is held for an operator.
	ErrQuarantined = &Error{Code: "quarantined"}
	// ErrNotFound (404): a command, consent, change of supplier,
	// threshold or CIN challenge that does not exist or is not the user's.
	ErrNotFound = &Error{Code: "not-found"}
	// ErrBadRequest (400): an invalid request: bad JSON, an unsupported
	// service request, bad parameters.
	ErrBadRequest = &Error{Code: "bad-request"}
	// ErrConflict (409): the request contradicts the current state, such
	// as revoking a consent already revoked or a change of supplier asked
	// by the meter's supplier.
	ErrConflict = &Error{Code: "conflict"}
	// ErrNotStricter (409): a user's own threshold is not stricter than the
	// DCC's for the same scope.
	ErrNotStricter = &Error{Code: "not-stricter"}
	// ErrUnavailable (503): a dependency of the router failed; the request
	// was not acted on and may be retried.
	ErrUnavailable = &Error{Code: "unavailable"}
	// ErrOwnershipUnsettled (409): a change of supplier for the device is
	// under way; critical commands wait until it settles.
	ErrOwnershipUnsettled = &Error{Code: "ownership-unsettled"}
	// ErrChangePending (409): a second change of supplier while one is
	// open for the device.
	ErrChangePending = &Error{Code: "change-pending"}
)

// errorOf reads a refusal's problem document.
func errorOf(status int, body []byte) error {
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Param  string `json:"param"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(body, &p) == nil && p.Title != "" {
		e.Type, e.Title, e.Code, e.Detail, e.Param = p.Type, p.Title, p.Code, p.Detail, p.Param
		return e
	}
	e.Title, e.Detail = http.StatusText(status), strings.TrimSpace(string(body[:min(len(body), 200)]))
	return e
}

var errNoThresholdID = errors.New("client: a threshold needs an ID")
