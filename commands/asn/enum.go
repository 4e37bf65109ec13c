package asn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Enumerated values (INTEGER with named numbers, or ENUMERATED) are Go
// integer types whose String method gives the ASN.1 name, or the number
// when the name is unknown. In JSON they are {"value": n, "name": "..."};
// decoding JSON reads only "value", and also accepts a bare number.

func enumString(names map[int64]string, v int64) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.FormatInt(v, 10)
}

type enumJSON struct {
	Value int64  `json:"value"`
	Name  string `json:"name,omitempty"`
}

func marshalEnum(names map[int64]string, v int64) ([]byte, error) {
	return json.Marshal(enumJSON{Value: v, Name: names[v]})
}

func unmarshalEnum(b []byte, what string, out *int64) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("asn: %s: %w", what, err)
		}
		return nil
	}
	var j struct {
		Value *int64 `json:"value"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("asn: %s: %w", what, err)
	}
	if j.Value == nil {
		return fmt.Errorf("asn: %s: missing \"value\"", what)
	}
	*out = *j.Value
	return nil
}

// RemotePartyRole is a GBCS remote party role. Values outside the named
// list are kept as they are.
type RemotePartyRole int64

// The named remote party roles.
const (
	RoleRoot                RemotePartyRole = 0
	RoleRecovery            RemotePartyRole = 1
	RoleSupplier            RemotePartyRole = 2
	RoleNetworkOperator     RemotePartyRole = 3
	RoleAccessControlBroker RemotePartyRole = 4
	RoleTransitionalCoS     RemotePartyRole = 5
	RoleWANProvider         RemotePartyRole = 6
	RoleIssuingAuthority    RemotePartyRole = 7
	RoleLoadController      RemotePartyRole = 8
	RoleOther               RemotePartyRole = 127
)

var remotePartyRoleNames = map[int64]string{0: "root", 1: "recovery", 2: "supplier", 3: "networkOperator",
	4: "accessControlBroker", 5: "transitionalCoS", 6: "wanProvider", 7: "issuingAuthority",
	8: "loadController", 127: "other"}

// String returns the role's name, or its number.
func (v RemotePartyRole) String() string { return enumString(remotePartyRoleNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v RemotePartyRole) MarshalJSON() ([]byte, error) {
	return marshalEnum(remotePartyRoleNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *RemotePartyRole) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "remotePartyRole", (*int64)(v))
}

// CellUsage says what a trust-anchor cell's key is for.
type CellUsage int64

// The cell usages.
const (
	CellManagement      CellUsage = 0
	CellPrePaymentTopUp CellUsage = 1
)

var cellUsageNames = map[int64]string{0: "management", 1: "prePaymentTopUp"}

// String returns the usage's name, or its number.
func (v CellUsage) String() string { return enumString(cellUsageNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v CellUsage) MarshalJSON() ([]byte, error) { return marshalEnum(cellUsageNames, int64(v)) }

// UnmarshalJSON implements json.Unmarshaler.
func (v *CellUsage) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "cellUsage", (*int64)(v))
}

// StatusCode is the ENUMERATED status of a trust-anchor cell replacement or
// of a remote party's details.
type StatusCode int64

// The status codes.
const (
	StatusSuccess             StatusCode = 0
	StatusBadCertificate      StatusCode = 5
	StatusNoTrustAnchor       StatusCode = 10
	StatusInsufficientMemory  StatusCode = 17
	StatusTrustAnchorNotFound StatusCode = 25
	StatusResourcesBusy       StatusCode = 30
	StatusOther               StatusCode = 127
)

var statusCodeNames = map[int64]string{0: "success", 5: "badCertificate", 10: "noTrustAnchor",
	17: "insufficientMemory", 25: "trustAnchorNotFound", 30: "resourcesBusy", 127: "other"}

// String returns the status's name, or its number.
func (v StatusCode) String() string { return enumString(statusCodeNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v StatusCode) MarshalJSON() ([]byte, error) { return marshalEnum(statusCodeNames, int64(v)) }

// UnmarshalJSON implements json.Unmarshaler.
func (v *StatusCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "statusCode", (*int64)(v))
}

// AlertCode is the GBCS alert code an ASN.1 alert carries, such as 0x8F66.
type AlertCode int64

// Alert codes of the future-dated execution alerts.
const (
	AlertFutureDatedSuccess AlertCode = 0x8F66
	AlertFutureDatedFailure AlertCode = 0x8F67
)

var alertCodeNames = map[int64]string{0x8F66: "futureDatedExecutionSuccess", 0x8F67: "futureDatedExecutionFailure"}

// String returns the code as 0x and four hex digits, with its name when the
// package knows it.
func (v AlertCode) String() string {
	if n, ok := alertCodeNames[int64(v)]; ok {
		return fmt.Sprintf("0x%04X %s", int64(v), n)
	}
	if v < 0 {
		return strconv.FormatInt(int64(v), 10)
	}
	return fmt.Sprintf("0x%04X", int64(v))
}

// MarshalJSON implements json.Marshaler; the name is the String form.
func (v AlertCode) MarshalJSON() ([]byte, error) {
	return json.Marshal(enumJSON{Value: int64(v), Name: v.String()})
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *AlertCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "alertCode", (*int64)(v))
}

// SeqNumber is a remote party sequence number.
type SeqNumber int64

// CredentialsReplacementMode is the CS02b replacement mode; it fixes the
// message code of the command (see MessageCode).
type CredentialsReplacementMode int64

// The replacement modes.
const (
	RootBySupplier                   CredentialsReplacementMode = 0
	RootByWanProvider                CredentialsReplacementMode = 1
	SupplierBySupplier               CredentialsReplacementMode = 2
	NetworkOperatorByNetworkOperator CredentialsReplacementMode = 3
	AccessControlBrokerByACB         CredentialsReplacementMode = 4
	WanProviderByWanProvider         CredentialsReplacementMode = 5
	TransCoSByTransCoS               CredentialsReplacementMode = 6
	SupplierByTransCoS               CredentialsReplacementMode = 7
	AnyExceptAbnormalRootByRecovery  CredentialsReplacementMode = 8
	AnyByContingency                 CredentialsReplacementMode = 9
	LoadControllerByLoadController   CredentialsReplacementMode = 10
	LoadControllerBySupplier         CredentialsReplacementMode = 11
)

var replacementModeNames = map[int64]string{0: "rootBySupplier", 1: "rootByWanProvider",
	2: "supplierBySupplier", 3: "networkOperatorByNetworkOperator", 4: "accessControlBrokerByACB",
	5: "wanProviderByWanProvider", 6: "transCoSByTransCoS", 7: "supplierByTransCoS",
	8: "anyExceptAbnormalRootByRecovery", 9: "anyByContingency", 10: "loadControllerByLoadController",
	11: "loadControllerBySupplier"}

// String returns the mode's name, or its number.
func (v CredentialsReplacementMode) String() string {
	return enumString(replacementModeNames, int64(v))
}

// MarshalJSON implements json.Marshaler.
func (v CredentialsReplacementMode) MarshalJSON() ([]byte, error) {
	return marshalEnum(replacementModeNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *CredentialsReplacementMode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "credentialsReplacementMode", (*int64)(v))
}

// MessageCode returns the message code of a CS02b or CS02g command in this
// mode: 0x0100 + mode for modes 0 to 9, 0x0125 for mode 10 and 0x0126 for
// mode 11. ok is false for any other mode.
func (v CredentialsReplacementMode) MessageCode() (code uint16, ok bool) {
	switch {
	case v >= 0 && v <= 9:
		return 0x0100 + uint16(v), true
	case v == LoadControllerByLoadController:
		return 0x0125, true
	case v == LoadControllerBySupplier:
		return 0x0126, true
	}
	return 0, false
}

// AlertMessageCode returns the message code of the future-dated execution
// alert for a command in this mode: 0x00CB for modes 0 to 9 (CS02b), 0x0124
// for modes 10 and 11 (CS02g).
func (v CredentialsReplacementMode) AlertMessageCode() (code uint16, ok bool) {
	switch {
	case v >= 0 && v <= 9:
		return 0x00CB, true
	case v == LoadControllerByLoadController, v == LoadControllerBySupplier:
		return 0x0124, true
	}
	return 0, false
}

// ModeOfMessageCode returns the replacement mode whose CS02b or CS02g
// command has the given message code; ok is false for any other code.
func ModeOfMessageCode(code uint16) (mode CredentialsReplacementMode, ok bool) {
	switch {
	case code >= 0x0100 && code <= 0x0109:
		return CredentialsReplacementMode(code - 0x0100), true
	case code == 0x0125:
		return LoadControllerByLoadController, true
	case code == 0x0126:
		return LoadControllerBySupplier, true
	}
	return 0, false
}

// ApplyTimeBasedCPVChecks says whether the device applies the time-based
// certification path validation checks to a CS02b command.
type ApplyTimeBasedCPVChecks int64

// The values of ApplyTimeBasedCPVChecks.
const (
	CPVApply    ApplyTimeBasedCPVChecks = 0
	CPVDisapply ApplyTimeBasedCPVChecks = 1
)

var cpvNames = map[int64]string{0: "apply", 1: "disapply"}

// String returns the value's name, or its number.
func (v ApplyTimeBasedCPVChecks) String() string { return enumString(cpvNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v ApplyTimeBasedCPVChecks) MarshalJSON() ([]byte, error) {
	return marshalEnum(cpvNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ApplyTimeBasedCPVChecks) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "applyTimeBasedCPVChecks", (*int64)(v))
}

// SeqNumberUsage names what a specialist sequence number counts.
type SeqNumberUsage int64

// SeqNumberPrepaymentTopUp is the only named SeqNumberUsage.
const SeqNumberPrepaymentTopUp SeqNumberUsage = 0

var seqNumberUsageNames = map[int64]string{0: "prepaymentTopUp"}

// String returns the usage's name, or its number.
func (v SeqNumberUsage) String() string { return enumString(seqNumberUsageNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v SeqNumberUsage) MarshalJSON() ([]byte, error) {
	return marshalEnum(seqNumberUsageNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *SeqNumberUsage) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "seqNumberUsage", (*int64)(v))
}

// IssueResponseCode is the CS02c failure code.
type IssueResponseCode int64

var issueResponseNames = map[int64]string{1: "invalidKeyUsage", 2: "keyPairGenerationFailed", 3: "crProductionFailed"}

// String returns the code's name, or its number.
func (v IssueResponseCode) String() string { return enumString(issueResponseNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v IssueResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(issueResponseNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *IssueResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// UpdateDeviceCertificateResponse is the CS02d response payload, an
// INTEGER result code.
type UpdateDeviceCertificateResponse int64

var updateDeviceCertNames = map[int64]string{0: "success", 1: "invalidCertificate", 2: "wrongDeviceIdentity",
	3: "invalidKeyUsage", 4: "noCorrespondingKeyPairGenerated", 5: "wrongPublicKey",
	6: "certificateStorageFailed", 7: "privateKeyChangeFailed"}

// String returns the code's name, or its number.
func (v UpdateDeviceCertificateResponse) String() string {
	return enumString(updateDeviceCertNames, int64(v))
}

// MarshalJSON implements json.Marshaler.
func (v UpdateDeviceCertificateResponse) MarshalJSON() ([]byte, error) {
	return marshalEnum(updateDeviceCertNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *UpdateDeviceCertificateResponse) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "updateDeviceCertificateResponse", (*int64)(v))
}

// ProvideResponseCode is the CS02e failure code.
type ProvideResponseCode int64

var provideResponseNames = map[int64]string{1: "invalidKeyUsage", 2: "noCertificateHeld", 3: "certificateRetrievalFailure"}

// String returns the code's name, or its number.
func (v ProvideResponseCode) String() string { return enumString(provideResponseNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v ProvideResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(provideResponseNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ProvideResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// DeviceType is the type of a device in a device log.
type DeviceType int64

var deviceTypeNames = map[int64]string{0: "gsme", 1: "esme", 2: "chf", 3: "gpf", 4: "hcalcs", 5: "ppmid", 6: "type2"}

// String returns the type's name, or its number.
func (v DeviceType) String() string { return enumString(deviceTypeNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v DeviceType) MarshalJSON() ([]byte, error) { return marshalEnum(deviceTypeNames, int64(v)) }

// UnmarshalJSON implements json.Unmarshaler.
func (v *DeviceType) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "deviceType", (*int64)(v))
}

// JoinMethodAndRole is the join method of a CS03 command and this device's
// part in it.
type JoinMethodAndRole int64

var joinMethodNames = map[int64]string{0: "methodAInitiator", 1: "methodAResponder", 2: "methodB", 3: "methodC"}

// String returns the value's name, or its number.
func (v JoinMethodAndRole) String() string { return enumString(joinMethodNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v JoinMethodAndRole) MarshalJSON() ([]byte, error) {
	return marshalEnum(joinMethodNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *JoinMethodAndRole) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "joinMethodAndRole", (*int64)(v))
}

// JoinDeviceResponse is the CS03 response payload, an INTEGER result code.
type JoinDeviceResponse int64

var joinResponseNames = map[int64]string{0: "success", 1: "invalidMessageCodeForJoinMethodAndRole",
	2: "invalidJoinMethodAndRole", 3: "incompatibleWithExistingEntry", 4: "deviceLogFull", 5: "writeFailure",
	6: "keyAgreementNoResources", 7: "keyAgreementUnknownIssuer", 8: "keyAgreementUnsupportedSuite",
	9: "keyAgreementBadMessage", 10: "keyAgreementBadKeyConfirm", 11: "invalidOrMissingCertificate",
	12: "noPartnerLinkKeyReceived", 13: "noCBKEResponse"}

// String returns the code's name, or its number.
func (v JoinDeviceResponse) String() string { return enumString(joinResponseNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v JoinDeviceResponse) MarshalJSON() ([]byte, error) {
	return marshalEnum(joinResponseNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *JoinDeviceResponse) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "joinDeviceResponse", (*int64)(v))
}

// UnjoinDeviceResponse is the CS04 response payload, an INTEGER result code.
type UnjoinDeviceResponse int64

var unjoinResponseNames = map[int64]string{0: "success", 1: "notInDeviceLog", 2: "otherFailure"}

// String returns the code's name, or its number.
func (v UnjoinDeviceResponse) String() string { return enumString(unjoinResponseNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v UnjoinDeviceResponse) MarshalJSON() ([]byte, error) {
	return marshalEnum(unjoinResponseNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *UnjoinDeviceResponse) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "unjoinDeviceResponse", (*int64)(v))
}

// ActivateFirmwareResponseCode is the CS06 execution outcome code.
type ActivateFirmwareResponseCode int64

var activateFirmwareNames = map[int64]string{0: "success", 1: "noImageHeld", 2: "hashMismatch", 3: "activationFailure"}

// String returns the code's name, or its number.
func (v ActivateFirmwareResponseCode) String() string {
	return enumString(activateFirmwareNames, int64(v))
}

// MarshalJSON implements json.Marshaler.
func (v ActivateFirmwareResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(activateFirmwareNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ActivateFirmwareResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// ReadDeviceJoinDetailsResponseCode is the CS07 result code.
type ReadDeviceJoinDetailsResponseCode int64

var readJoinNames = map[int64]string{0: "success", 1: "readFailure"}

// String returns the code's name, or its number.
func (v ReadDeviceJoinDetailsResponseCode) String() string {
	return enumString(readJoinNames, int64(v))
}

// MarshalJSON implements json.Marshaler.
func (v ReadDeviceJoinDetailsResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(readJoinNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ReadDeviceJoinDetailsResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// CS08ResponseCode is the CS08 read result code.
type CS08ResponseCode int64

var cs08ResponseNames = map[int64]string{0: "readSuccess", 1: "readFailure"}

// String returns the code's name, or its number.
func (v CS08ResponseCode) String() string { return enumString(cs08ResponseNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v CS08ResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(cs08ResponseNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *CS08ResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// ActivateImage is the CS08 and CS09 alert's image activation result.
type ActivateImage int64

var activateImageNames = map[int64]string{0: "success", 1: "failure"}

// String returns the code's name, or its number.
func (v ActivateImage) String() string { return enumString(activateImageNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v ActivateImage) MarshalJSON() ([]byte, error) {
	return marshalEnum(activateImageNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *ActivateImage) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "activateImage", (*int64)(v))
}

// FirmwareTransferResponseCode is the CCS08 alert's result code.
type FirmwareTransferResponseCode int64

var firmwareTransferNames = map[int64]string{0: "success", 1: "imageDiscarded", 2: "hardwareVersionMismatch", 3: "fileTransferFailure"}

// String returns the code's name, or its number.
func (v FirmwareTransferResponseCode) String() string {
	return enumString(firmwareTransferNames, int64(v))
}

// MarshalJSON implements json.Marshaler.
func (v FirmwareTransferResponseCode) MarshalJSON() ([]byte, error) {
	return marshalEnum(firmwareTransferNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *FirmwareTransferResponseCode) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "responseCode", (*int64)(v))
}

// DeviceTimeStatus is the GCS28 response's device time status.
type DeviceTimeStatus int64

var deviceTimeStatusNames = map[int64]string{0: "reliable", 1: "invalid", 2: "unreliable"}

// String returns the code's name, or its number.
func (v DeviceTimeStatus) String() string { return enumString(deviceTimeStatusNames, int64(v)) }

// MarshalJSON implements json.Marshaler.
func (v DeviceTimeStatus) MarshalJSON() ([]byte, error) {
	return marshalEnum(deviceTimeStatusNames, int64(v))
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *DeviceTimeStatus) UnmarshalJSON(b []byte) error {
	return unmarshalEnum(b, "deviceTimeStatus", (*int64)(v))
}
