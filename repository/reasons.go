package repository

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/metertrust/metertrust/problem"
)

// The RFC 5280 section 5.3.1 CRLReason codes.
var reasonNames = map[int]string{
	0:  "unspecified",
	1:  "keyCompromise",
	2:  "cACompromise",
	3:  "affiliationChanged",
	4:  "superseded",
	5:  "cessationOfOperation",
	6:  "certificateHold",
	8:  "removeFromCRL",
	9:  "privilegeWithdrawn",
	10: "aACompromise",
}

// revocableReasons are the reasons a revocation request may give.
// certificateHold is refused because SMKI revocation is permanent,
// removeFromCRL exists only in delta CRLs, and aACompromise concerns
// attribute certificates, which the SMKI does not issue.
var revocableReasons = map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 9: true}

func reasonName(code int) string {
	if n, ok := reasonNames[code]; ok {
		return n
	}
	return strconv.Itoa(code)
}

// ParseReason reads an RFC 5280 CRLReason given as its name
// ("keyCompromise", case-insensitive) or its decimal code, and refuses the
// reasons a revocation request may not give (certificateHold,
// removeFromCRL, aACompromise).
func ParseReason(s string) (int, error) {
	code := -1
	if n, err := strconv.Atoi(s); err == nil {
		code = n
	} else {
		for c, name := range reasonNames {
			if strings.EqualFold(name, s) {
				code = c
			}
		}
	}
	if _, known := reasonNames[code]; !known {
		return 0, fmt.Errorf("%w: %q is not an RFC 5280 CRLReason", ErrBadRequest, clip(s))
	}
	if !revocableReasons[code] {
		return 0, fmt.Errorf("%w: reason %s may not be used here (want unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn)", ErrBadRequest, reasonNames[code])
	}
	return code, nil
}

// RevocationRequest is the body of POST /v1/revocations.
type RevocationRequest struct {
	// CA names the CA that issued the certificate.
	CA string `json:"ca"`
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial"`
	// Reason is the RFC 5280 CRLReason, as a name or a number.
	Reason json.RawMessage `json:"reason"`
}

// revocation is a checked RevocationRequest.
type revocation struct {
	ca     string
	serial []byte
	reason int
}

// parseRevocation decodes and checks a revocation request body strictly.
func parseRevocation(body []byte) (revocation, error) {
	var r RevocationRequest
	if err := decodeStrict(body, &r); err != nil {
		return revocation{}, problem.Wrap(ErrBadRequest, err, "body", "not a revocation request: want a JSON object {ca, serial, reason} and nothing else (%v)", err)
	}
	if r.CA == "" {
		return revocation{}, problem.New(ErrBadRequest, "ca", "missing: name the CA that issued the certificate")
	}
	if err := checkCAName(r.CA); err != nil {
		return revocation{}, problem.Wrap(ErrBadRequest, err, "ca", "%q is not a CA name", clip(r.CA))
	}
	if r.Serial == "" {
		return revocation{}, problem.New(ErrBadRequest, "serial", "missing: give the certificate's serial number in hex")
	}
	serial, err := ParseSerial(r.Serial)
	if err != nil {
		return revocation{}, problem.Wrap(ErrBadRequest, err, "serial", "%q is not a serial number: want hex digits", clip(r.Serial))
	}
	if len(r.Reason) == 0 {
		return revocation{}, problem.New(ErrBadRequest, "reason", "missing: give an RFC 5280 CRLReason name or code")
	}
	var reasonText string
	var num json.Number
	if err := json.Unmarshal(r.Reason, &reasonText); err != nil {
		if err := json.Unmarshal(r.Reason, &num); err != nil {
			return revocation{}, problem.New(ErrBadRequest, "reason", "must be a CRLReason name or code")
		}
		reasonText = num.String()
	}
	reason, err := ParseReason(reasonText)
	if err != nil {
		return revocation{}, problem.Wrap(ErrBadRequest, err, "reason", "%s", strings.TrimPrefix(err.Error(), ErrBadRequest.Error()+": "))
	}
	return revocation{ca: r.CA, serial: serial, reason: reason}, nil
}
