package router

import (
	"errors"

	"github.com/metertrust/metertrust/problem"
)

// Kind is the one error-kind type of the router, in the manner of Boulder's
// berrors: every refusal wraps exactly one Kind, so errors.Is(err,
// router.ErrReplay) works, and the API's error handler maps it in one place
// to its problem type (and so its HTTP status) and its stable
// machine-readable error code, such as "replay", which problem bodies carry
// as their "code" member and audit entries as their kind. A Kind is a kind
// of package problem, the error-kind machinery every service shares.
type Kind = problem.Kind

func kind(code string, t problem.Type, text string) *Kind {
	k := problem.NewCodedKind("router", code, text, t)
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
	ErrUnauthenticated = kind("unauthenticated", problem.Unauthenticated, "caller not authenticated")
	// ErrMalformed: the bytes are not a well-formed GBCS command (truncated,
	// oversized, wrong lengths, not a command, already MAC'd).
	ErrMalformed = kind("malformed", problem.BadRequest, "malformed GBCS command")
	// ErrOriginator: the business originator of the command is not the
	// caller.
	ErrOriginator = kind("originator-mismatch", problem.Forbidden, "business originator is not the caller")
	// ErrNotEligible: the caller's DCC user role may not send this service
	// request, or the message code is not in the catalogue.
	ErrNotEligible = kind("role-not-eligible", problem.Forbidden, "user role not eligible for the service request")
	// ErrUnknownDevice: the target device is not in the device registry.
	ErrUnknownDevice = kind("unknown-device", problem.NotFound, "target device unknown")
	// ErrNotOwner: the caller is not the supplier or network operator of
	// the target device for its role, or an other user has no live consent.
	ErrNotOwner = kind("not-owner", problem.Forbidden, "caller does not own the target device for its role")
	// ErrOwnershipUnsettled: a critical command from a supplier for a
	// device whose change of supplier is pending or unsettled (decision
	// 014): until the meter's answer, or a read of its anchors, settles
	// who owns it, no supplier's critical command is forwarded. Retry
	// later.
	ErrOwnershipUnsettled = kind("ownership-unsettled", problem.Conflict, "the device's change of supplier is not settled")
	// ErrDeviceCertificate: a CS02d (6.15.2) whose certificate is not an
	// unrevoked device certificate the SMKI repository holds for the
	// target device (decision 017), refused before it is recorded.
	ErrDeviceCertificate = kind("device-certificate", problem.Forbidden, "the certificate is not the target device's in the SMKI repository")
	// ErrChangePending: a change of supplier requested for a device with
	// a change pending or unsettled (decision 014).
	ErrChangePending = kind("change-pending", problem.Conflict, "a change of supplier is already under way for the device")
	// ErrConsentPeriod: an other user's read under consent asks for data
	// from before the consent's data period, which reaches back
	// ConsentDataMonths (13) months from the time of the read (spec
	// section 11), or its period cannot be read from the command.
	ErrConsentPeriod = kind("consent-period", problem.Forbidden, "read reaches back before the consented data period")
	// ErrCertPath: the caller's organisation certificate is missing, does
	// not chain to the SMKI root, or is revoked.
	ErrCertPath = kind("certificate-path", problem.Forbidden, "organisation certificate path or revocation check failed")
	// ErrSignature: a critical command is unsigned, or its signature does
	// not verify against the caller's digital-signing certificate.
	ErrSignature = kind("signature", problem.Forbidden, "signature missing or invalid")
	// ErrReplay: the originator counter is not greater than the last
	// forwarded for this originator and target.
	ErrReplay = kind("replay", problem.Conflict, "counter not greater than the last forwarded")
	// ErrCounterAhead: the originator counter is further ahead than the
	// router's bound allows (spec gbcs-security.md section 7, our rule):
	// more than 2^32 above the last forwarded for this originator and
	// target, or, for the pair's first command, more than one day ahead of
	// the clock in milliseconds. Forwarded, it would leave the device
	// refusing every later command from the originator.
	ErrCounterAhead = kind("counter-ahead", problem.Conflict, "counter too far ahead of the last forwarded or the clock")
	// ErrStaleAlert: a device alert whose counter is not above the last
	// alert recorded from the device (decision 018), and not one already
	// recorded (a duplicate, dropped without refusal).
	ErrStaleAlert = kind("stale-alert", problem.Conflict, "alert counter not above the last from the device")
	// ErrNoRecipient: a verified device alert with nobody to deliver it
	// to: its recipient holds no role for the device and the device has no
	// supplier, or it is MAC'd for a recipient who no longer holds the
	// role (the owner could not check it).
	ErrNoRecipient = kind("no-recipient", problem.Conflict, "nobody to deliver the device alert to")
	// ErrQuarantined: the command breached an anomaly detection threshold
	// and was quarantined, not forwarded.
	ErrQuarantined = kind("quarantined", problem.Quarantined, "command quarantined by anomaly detection")
	// ErrNotFound: a command, response or other resource the caller asked
	// for does not exist or is not the caller's.
	ErrNotFound = kind("not-found", problem.NotFound, "not found")
	// ErrBadRequest: an API request (not GBCS bytes) is invalid: bad JSON,
	// an unsupported service request, bad parameters.
	ErrBadRequest = kind("bad-request", problem.BadRequest, "invalid request")
	// ErrConflict: the request contradicts the current state, such as
	// releasing a quarantined command already released or deleted.
	ErrConflict = kind("conflict", problem.Conflict, "conflicting state")
	// ErrNotStricter: a user's own anomaly threshold is not stricter than
	// the DCC's for the same scope (package anomaly's ErrNotStricter).
	ErrNotStricter = kind("not-stricter", problem.Conflict, "user threshold not stricter than the DCC's")
	// ErrUnavailable: a dependency (store, key store, detector) failed; the
	// command was not accepted and may be resubmitted.
	ErrUnavailable = kind("unavailable", problem.Unavailable, "service temporarily unavailable")

	// The HTTP layer's own kinds: requests refused before any handler
	// reads them as a command or a service request.

	// ErrMethodNotAllowed: a known path called with a method it does not
	// answer; the response's Allow header lists those it does.
	ErrMethodNotAllowed = kind("method-not-allowed", problem.MethodNotAllowed, "method not allowed")
	// ErrTooLarge: the request body is over the route's limit.
	ErrTooLarge = kind("too-large", problem.TooLarge, "request body too large")
	// ErrUnsupportedMediaType: the request body's Content-Type is missing,
	// malformed or not one the route reads.
	ErrUnsupportedMediaType = kind("unsupported-media-type", problem.UnsupportedMediaType, "unsupported media type")
	// ErrURITooLong: the request target (path and query) is over the
	// router's limit.
	ErrURITooLong = kind("uri-too-long", problem.URITooLong, "request target too long")
	// ErrHeaderTooLarge: the request's header fields are over the router's
	// limit.
	ErrHeaderTooLarge = kind("header-too-large", problem.HeaderTooLarge, "request header fields too large")
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
