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

// The router's refusals by code, for errors.Is (the list is in the
// router's OpenAPI document, docs/api/router.json).
var (
	ErrUnauthenticated = &Error{Code: "unauthenticated"}
	ErrMalformed       = &Error{Code: "malformed"}
	ErrOriginator      = &Error{Code: "originator-mismatch"}
	ErrNotEligible     = &Error{Code: "role-not-eligible"}
	ErrUnknownDevice   = &Error{Code: "unknown-device"}
	ErrNotOwner        = &Error{Code: "not-owner"}
	ErrConsentPeriod   = &Error{Code: "consent-period"}
	ErrCertPath        = &Error{Code: "certificate-path"}
	ErrSignature       = &Error{Code: "signature"}
	ErrReplay          = &Error{Code: "replay"}
	ErrCounterAhead    = &Error{Code: "counter-ahead"}
	ErrQuarantined     = &Error{Code: "quarantined"}
	ErrNotFound        = &Error{Code: "not-found"}
	ErrBadRequest      = &Error{Code: "bad-request"}
	ErrConflict        = &Error{Code: "conflict"}
	ErrNotStricter     = &Error{Code: "not-stricter"}
	ErrUnavailable     = &Error{Code: "unavailable"}
	// ErrOwnershipUnsettled: a change of supplier for the device is under
	// way; critical commands wait until it settles.
	ErrOwnershipUnsettled = &Error{Code: "ownership-unsettled"}
	// ErrChangePending: a second change of supplier while one is open.
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
