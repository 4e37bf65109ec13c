package dlms

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// Alert is the common part of every DLMS alert (gbcs-payloads.md 6.2): the
// DATA-NOTIFICATION body structure(c), c >= 2, of a long-unsigned alert
// code, an octet-string(12) time stamp, and use-case specific elements.
type Alert struct {
	Code uint16   `json:"code"`
	Time DateTime `json:"time"`
	// Rest holds the elements after the time stamp.
	Rest []Data `json:"rest,omitempty"`
}

// ReadAlert reads the common part of an alert.
func ReadAlert(n *DataNotification) (Alert, error) {
	var a Alert
	if n == nil {
		return a, mismatch("not a data-notification")
	}
	f, err := list(n.Body, TagStructure, -1, "alert")
	if err != nil {
		return a, err
	}
	if len(f) < 2 {
		return a, mismatch("alert: want structure of 2 or more elements, have %s", describeData(n.Body))
	}
	if a.Code, err = u16(f[0], TagLongUnsigned, "alert code"); err != nil {
		return a, err
	}
	if a.Time, err = dateTimeOf(f[1], "alert time stamp"); err != nil {
		return a, err
	}
	a.Rest = f[2:]
	return a, nil
}

// Notification returns the DATA-NOTIFICATION carrying a.
func (a Alert) Notification(invokeID uint32) *DataNotification {
	elems := append([]Data{LongUnsigned(a.Code), a.Time.Data()}, a.Rest...)
	return &DataNotification{InvokeID: invokeID, Body: Structure(elems...)}
}

// restOctets reads an alert whose only extra element is an octet-string of
// n bytes.
func restOctets(n *DataNotification, size int, what string) (Alert, []byte, error) {
	a, err := ReadAlert(n)
	if err != nil {
		return a, nil, err
	}
	if len(a.Rest) != 1 {
		return a, nil, mismatch("%s: want 1 element after the time stamp, have %d", what, len(a.Rest))
	}
	b, err := octets(a.Rest[0], size, what)
	return a, b, err
}

// Alert codes of the outcome of a future-dated command.
const (
	AlertFutureDatedSuccess uint16 = 0x8F66
	AlertFutureDatedFailure uint16 = 0x8F67
)

// FutureDatedAlert is the 0x00CC alert reporting the execution of a
// future-dated DLMS command (gbcs-payloads.md 6.2): after the time stamp an
// octet-string(19) = message code(2) ‖ originator counter(8) of the command
// ‖ class-id(2) ‖ OBIS(6) ‖ attribute-id(1) of the activation attribute.
type FutureDatedAlert struct {
	// AlertCode is AlertFutureDatedSuccess or AlertFutureDatedFailure.
	AlertCode uint16   `json:"alert-code"`
	Time      DateTime `json:"time"`
	// MessageCode and Counter identify the future-dated command.
	MessageCode uint16 `json:"message-code"`
	Counter     uint64 `json:"counter"`
	// Class, OBIS and Attribute name its activation attribute.
	Class     uint16 `json:"class"`
	OBIS      OBIS   `json:"obis"`
	Attribute uint8  `json:"attribute"`
}

// Notification returns the alert's DATA-NOTIFICATION.
func (f FutureDatedAlert) Notification(invokeID uint32) *DataNotification {
	b := binary.BigEndian.AppendUint16(nil, f.MessageCode)
	b = binary.BigEndian.AppendUint64(b, f.Counter)
	b = binary.BigEndian.AppendUint16(b, f.Class)
	b = append(append(b, f.OBIS[:]...), f.Attribute)
	return Alert{Code: f.AlertCode, Time: f.Time, Rest: []Data{OctetString(b)}}.Notification(invokeID)
}

// ReadFutureDatedAlert reads a 0x00CC alert.
func ReadFutureDatedAlert(n *DataNotification) (FutureDatedAlert, error) {
	a, b, err := restOctets(n, 19, "future-dated outcome")
	if err != nil {
		return FutureDatedAlert{}, err
	}
	return FutureDatedAlert{
		AlertCode:   a.Code,
		Time:        a.Time,
		MessageCode: binary.BigEndian.Uint16(b),
		Counter:     binary.BigEndian.Uint64(b[2:]),
		Class:       binary.BigEndian.Uint16(b[10:]),
		OBIS:        OBIS(b[12:18]),
		Attribute:   b[18],
	}, nil
}

// FirmwareReceiptAlert is the 0x00CE alert (alert code 8F72): the
// manufacturer image hash the ESME calculated over a distributed firmware
// image.
type FirmwareReceiptAlert struct {
	AlertCode uint16   `json:"alert-code"`
	Time      DateTime `json:"time"`
	Hash      HexBytes `json:"hash"`
}

// ReadFirmwareReceiptAlert reads a 0x00CE alert.
func ReadFirmwareReceiptAlert(n *DataNotification) (FirmwareReceiptAlert, error) {
	a, b, err := restOctets(n, 32, "calculated manufacturer hash")
	return FirmwareReceiptAlert{AlertCode: a.Code, Time: a.Time, Hash: b}, err
}

// FailureToDeliverAlert is the 0x00D5 alert (8F84): octet-string(25) =
// business originator id(8) ‖ business target id(8) ‖ CRA flag(1) ‖
// originator counter(8) of the message not delivered.
type FailureToDeliverAlert struct {
	AlertCode  uint16   `json:"alert-code"`
	Time       DateTime `json:"time"`
	Originator smki.EUI `json:"originator"`
	Target     smki.EUI `json:"target"`
	CRA        uint8    `json:"cra"`
	Counter    uint64   `json:"counter"`
}

// ReadFailureToDeliverAlert reads a 0x00D5 alert.
func ReadFailureToDeliverAlert(n *DataNotification) (FailureToDeliverAlert, error) {
	a, b, err := restOctets(n, 25, "failure to deliver details")
	if err != nil {
		return FailureToDeliverAlert{}, err
	}
	return FailureToDeliverAlert{AlertCode: a.Code, Time: a.Time, Originator: smki.EUI(b[:8]),
		Target: smki.EUI(b[8:16]), CRA: b[16], Counter: binary.BigEndian.Uint64(b[17:])}, nil
}

// IntegrityWarning is the warning code of a meter integrity alert (81A0).
type IntegrityWarning uint16

var integrityWarnings = []string{
	"other", "non-volatile memory", "program execution", "program storage", "RAM",
	"unexpected hardware reset", "watchdog", "metrology firmware verification failure",
	"measurement fault", "unspecified operational integrity error",
}

// String returns the name of the warning.
func (w IntegrityWarning) String() string {
	if int(w) < len(integrityWarnings) {
		return integrityWarnings[w]
	}
	return fmt.Sprintf("integrity warning %d", uint16(w))
}

// IntegrityWarningAlert is the 0x00F0 alert (81A0): an octet-string(2)
// warning code.
type IntegrityWarningAlert struct {
	AlertCode uint16           `json:"alert-code"`
	Time      DateTime         `json:"time"`
	Warning   IntegrityWarning `json:"warning"`
}

// ReadIntegrityWarningAlert reads a 0x00F0 alert.
func ReadIntegrityWarningAlert(n *DataNotification) (IntegrityWarningAlert, error) {
	a, b, err := restOctets(n, 2, "integrity warning code")
	if err != nil {
		return IntegrityWarningAlert{}, err
	}
	return IntegrityWarningAlert{AlertCode: a.Code, Time: a.Time, Warning: IntegrityWarning(binary.BigEndian.Uint16(b))}, nil
}

// ReadGenericAlert reads a generic alert (0x1000, 0x1001): structure(2) of
// the alert code and the time stamp only.
func ReadGenericAlert(n *DataNotification) (Alert, error) {
	a, err := ReadAlert(n)
	if err == nil && len(a.Rest) != 0 {
		err = mismatch("generic alert: want structure(2), have %d elements after the time stamp", len(a.Rest))
	}
	return a, err
}

// AlertBillingDataLog is the alert code of ECS68.
const AlertBillingDataLog uint16 = 0x8F0A

// BillingDataLogAlert is the ECS68 alert (0x0061; gbcs-payloads.md 4.5):
// structure(4){long-unsigned 8F0A, octet-string(12) time, protection
// parameters, octet-string ciphered block}. The ciphered block holds a
// BillingDataLog.
type BillingDataLogAlert struct {
	AlertCode  uint16               `json:"alert-code"`
	Time       DateTime             `json:"time"`
	Protection ProtectionParameters `json:"protection"`
	Ciphered   HexBytes             `json:"ciphered"`
}

// Notification returns the alert's DATA-NOTIFICATION.
func (b BillingDataLogAlert) Notification(invokeID uint32) *DataNotification {
	return Alert{Code: b.AlertCode, Time: b.Time, Rest: []Data{b.Protection.Data(), OctetString(bytes.Clone(nonNil(b.Ciphered)))}}.Notification(invokeID)
}

// ReadBillingDataLogAlert reads an ECS68 alert.
func ReadBillingDataLogAlert(n *DataNotification) (BillingDataLogAlert, error) {
	var b BillingDataLogAlert
	a, err := ReadAlert(n)
	if err != nil {
		return b, err
	}
	if len(a.Rest) != 2 {
		return b, mismatch("billing data log alert: want 2 elements after the time stamp, have %d", len(a.Rest))
	}
	b.AlertCode, b.Time = a.Code, a.Time
	if b.Protection, err = ReadProtectionParameters(a.Rest[0]); err != nil {
		return b, err
	}
	if b.Ciphered, err = octets(a.Rest[1], -1, "billing data log ciphered block"); err != nil {
		return b, err
	}
	return b, nil
}
