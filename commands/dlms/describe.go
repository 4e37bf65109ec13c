package dlms

import "fmt"

// Description says which use case a DLMS payload is and gives its typed
// value.
type Description struct {
	// Code is the message code.
	Code uint16 `json:"code"`
	// UseCase names the use case, such as "ECS43 remotely open the load
	// switch".
	UseCase string `json:"use-case"`
	// Kind is the APDU kind (APDU.Kind).
	Kind string `json:"kind"`
	// Value is the typed value: for requests Tariff, LoadSwitchCommand,
	// ProtectedAttributesRequest, HexBytes (the CIN) or nil when the
	// request has no parameter of interest; for responses Outcome; for
	// alerts BillingDataLogAlert, FutureDatedAlert, FirmwareReceiptAlert,
	// FailureToDeliverAlert, IntegrityWarningAlert or Alert.
	Value any `json:"value,omitempty"`
}

// LoadSwitchCommand is the typed value of an ECS42, ECS43 or ECS44
// request: the script id.
type LoadSwitchCommand struct {
	Script uint16 `json:"script"`
}

// Outcome is the typed value of a response: the result of each
// specification, with the returned value where the use case has one
// (Value: ControlState for ECS45, HexBytes for ECS52, *ProtectedResult for
// ECS17b and ECS22b).
type Outcome struct {
	Results []ResponseSpec `json:"results"`
	Value   any            `json:"value,omitempty"`
}

var useCaseNames = map[uint16]string{
	CodeECS01a:                  "ECS01a set tariff and price on ESME",
	CodeECS04b:                  "ECS04b reset meter balance on the ESME",
	CodeECS17b:                  "ECS17b read ESME energy registers (import energy)",
	CodeECS22b:                  "ECS22b read electricity half hour profile data (active import)",
	CodeECS42:                   "ECS42 remotely close the load switch",
	CodeECS43:                   "ECS43 remotely open the load switch",
	CodeECS44:                   "ECS44 arm the load switch",
	CodeECS45:                   "ECS45 read status of load switch",
	CodeECS50:                   "ECS50 send CIN to ESME",
	CodeECS52:                   "ECS52 read ESME/comms hub firmware version",
	CodeECS68:                   "ECS68 ESME critical sensitive alert (billing data log)",
	CodeFutureDatedAlert:        "future-dated execution alert (DLMS)",
	CodeFirmwareReceiptAlert:    "firmware distribution receipt alert (ESME)",
	CodeFailureToDeliverAlert:   "failure to deliver alert (8F84)",
	CodeIntegrityWarningAlert:   "meter integrity warning alert (81A0)",
	CodeGenericCriticalAlert:    "generic critical alert",
	CodeGenericNonCriticalAlert: "generic non-critical alert",
	// Use cases with our own layout (ours.go).
	CodeECS66: "ECS66 read ESME daily consumption log (our layout)",
	CodeECS82: "ECS82 read meter balance for ESME (our layout)",
}

var loadSwitchScripts = map[uint16]uint16{
	CodeECS42: ScriptCloseLoadSwitch,
	CodeECS43: ScriptOpenLoadSwitch,
	CodeECS44: ScriptArmLoadSwitch,
}

// Describe matches a, the DLMS payload of a message with message code code,
// against the layout of that code's use case. It returns the description
// with the typed value when the layout matches; an error wrapping
// ErrMismatch that says what differs when it does not; and
// ErrUnknownUseCase for a code without a typed reader.
func Describe(code uint16, a *APDU) (Description, error) {
	name, ok := useCaseNames[code]
	if !ok {
		return Description{}, fmt.Errorf("%w: 0x%04X", ErrUnknownUseCase, code)
	}
	d := Description{Code: code, UseCase: name, Kind: a.Kind()}
	v, err := describe(code, a)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", name, d.Kind, err)
	}
	d.Value = v
	return d, nil
}

func describe(code uint16, a *APDU) (any, error) {
	q, s, n := a.AccessRequest, a.AccessResponse, a.DataNotification
	switch code {
	case CodeECS68, CodeFutureDatedAlert, CodeFirmwareReceiptAlert, CodeFailureToDeliverAlert,
		CodeIntegrityWarningAlert, CodeGenericCriticalAlert, CodeGenericNonCriticalAlert:
		if n == nil {
			return nil, mismatch("want a data-notification, have %s", kindOr(a))
		}
	default:
		if q == nil && s == nil {
			return nil, mismatch("want an access-request or access-response, have %s", kindOr(a))
		}
	}
	// Use cases with our own layout (ours.go).
	if v, ok, err := describeOurs(code, q, s); ok {
		return v, err
	}
	switch code {
	case CodeECS01a:
		if q != nil {
			return ReadTariff(q)
		}
		return results(s, Set, TariffSpecCount)
	case CodeECS04b:
		if q != nil {
			return nil, ReadResetBalanceRequest(q)
		}
		return results(s, Action, len(resetBalanceSpecs))
	case CodeECS17b, CodeECS22b:
		if q != nil {
			if code == CodeECS17b {
				return ReadImportEnergyRequest(q)
			}
			return ReadHalfHourProfileRequest(q)
		}
		p, _, err := ReadProtectedResponse(s)
		if err != nil {
			return nil, err
		}
		o := Outcome{Results: s.Results}
		if p != nil {
			o.Value = p
		}
		return o, nil
	case CodeECS42, CodeECS43, CodeECS44:
		if q != nil {
			script, err := ReadLoadSwitchRequest(q)
			if err != nil {
				return nil, err
			}
			if want := loadSwitchScripts[code]; script != want {
				return nil, mismatch("script id 0x%04X, want 0x%04X", script, want)
			}
			return LoadSwitchCommand{Script: script}, nil
		}
		return results(s, Action, 1)
	case CodeECS45:
		if q != nil {
			return nil, checkSpecs(q, []RequestSpec{loadSwitchState})
		}
		st, res, err := ReadLoadSwitchStatus(s)
		if err != nil {
			return nil, err
		}
		o := Outcome{Results: s.Results}
		if res == 0 {
			o.Value = st
		}
		return o, nil
	case CodeECS50:
		if q != nil {
			return ReadCINRequest(q)
		}
		return results(s, Set, 1)
	case CodeECS52:
		if q != nil {
			return nil, checkSpecs(q, []RequestSpec{firmwareVersion})
		}
		v, res, err := ReadFirmwareVersion(s)
		if err != nil {
			return nil, err
		}
		o := Outcome{Results: s.Results}
		if res == 0 {
			o.Value = v
		}
		return o, nil
	case CodeECS68:
		return ReadBillingDataLogAlert(n)
	case CodeFutureDatedAlert:
		return ReadFutureDatedAlert(n)
	case CodeFirmwareReceiptAlert:
		return ReadFirmwareReceiptAlert(n)
	case CodeFailureToDeliverAlert:
		return ReadFailureToDeliverAlert(n)
	case CodeIntegrityWarningAlert:
		return ReadIntegrityWarningAlert(n)
	}
	return ReadGenericAlert(n)
}

func results(s *AccessResponse, kind SpecKind, n int) (any, error) {
	if _, err := ReadResults(s, kind, n); err != nil {
		return nil, err
	}
	return Outcome{Results: s.Results}, nil
}

func kindOr(a *APDU) string {
	if k := a.Kind(); k != "" {
		return k
	}
	return "an empty APDU"
}
