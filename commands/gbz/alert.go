package gbz

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Message codes whose GBZ alerts have a layout of their own (section 6.3).
const (
	// CodeBillingDataLog is GCS53, the billing data log alert: one encrypted
	// component.
	CodeBillingDataLog uint16 = 0x008B
	// CodeFutureDatedGBZ is the future-dated execution outcome alert of a
	// GBZ device.
	CodeFutureDatedGBZ uint16 = 0x00CD
	// CodeFirmwareReceiptGSME is the firmware distribution receipt alert of
	// a GSME, carrying the calculated manufacturer hash.
	CodeFirmwareReceiptGSME uint16 = 0x00CF
	// CodeIntegrityWarningGBZ is the meter integrity warning alert (81A0)
	// of a GBZ device.
	CodeIntegrityWarningGBZ uint16 = 0x00F2
	// CodeGenericCritical and CodeGenericNonCritical are the generic alerts,
	// with no component.
	CodeGenericCritical    uint16 = 0x1000
	CodeGenericNonCritical uint16 = 0x1001
)

const (
	alertHeaderLen       = 3 + 2 + 4 // profile id, count, alert code, time stamp
	futureDatedLen       = 0x0E
	firmwareHashLen      = 32
	octetStringTag       = 0x09
	integrityWarningLen  = 2
	specialAlertComps    = 1
	firmwareReceiptBytes = 2 + firmwareHashLen
)

// FutureDated is the rest of a future-dated execution alert (0x00CD): which
// future-dated command was executed, and which ZCL command of which cluster.
type FutureDated struct {
	// MessageCode is the message code of the future-dated command.
	MessageCode uint16 `json:"message_code"`
	// OriginatorCounter is the originator counter of that command.
	OriginatorCounter uint64 `json:"originator_counter"`
	// Cluster is the cluster id of the component executed.
	Cluster Cluster `json:"cluster"`
	// FrameControl is the ZCL frame control of the component executed.
	FrameControl FrameControl `json:"frame_control"`
	// Command is the ZCL command id of the component executed.
	Command uint8 `json:"command"`
}

// MarshalJSON adds the cluster_name and message_code_name display fields.
func (f FutureDated) MarshalJSON() ([]byte, error) {
	type plain FutureDated
	return json.Marshal(struct {
		plain
		MessageCodeName  string `json:"message_code_name"`
		ClusterName      string `json:"cluster_name"`
		FrameControlName string `json:"frame_control_name"`
	}{plain(f), fmt.Sprintf("0x%04X", f.MessageCode), f.Cluster.String(), f.FrameControl.String()})
}

// Alert is a GBZ alert payload (section 6.3): profile id, count, alert code,
// time stamp, then a rest whose layout the message code chooses. Exactly one
// of FutureDated, FirmwareHash, IntegrityWarning and Components is used, as
// MessageCode says: the three special codes carry their rest under a count
// of 1; every other code (generic alerts, GCS53) carries Components.
type Alert struct {
	// MessageCode is the GBCS message code of the alert (from the message's
	// other-information); it chooses the layout and is not itself in the
	// payload.
	MessageCode uint16 `json:"message_code"`
	// AlertCode is the 2-byte alert code (big-endian).
	AlertCode uint16 `json:"alert_code"`
	// Timestamp is the time stamp (big-endian).
	Timestamp UTC `json:"timestamp"`
	// FutureDated is the rest of a 0x00CD alert; nil otherwise.
	FutureDated *FutureDated `json:"future_dated,omitempty"`
	// FirmwareHash is the 32-byte calculated manufacturer hash of a 0x00CF
	// alert; nil otherwise.
	FirmwareHash Hex `json:"firmware_hash,omitempty"`
	// IntegrityWarning is the warning code of a 0x00F2 alert (as in the DLMS
	// 81A0 alert: 0 other, 1 non-volatile memory ... 9 unspecified); nil
	// otherwise.
	IntegrityWarning *uint16 `json:"integrity_warning,omitempty"`
	// Components are the GBZ components of the other alerts: none for the
	// generic alerts, one encrypted component for GCS53.
	Components []Component `json:"components,omitempty"`
}

// MarshalJSON adds the alert_code_name and timestamp_name display fields.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	return json.Marshal(struct {
		plain
		AlertCodeName string `json:"alert_code_name"`
		TimestampName string `json:"timestamp_name"`
	}{plain(a), fmt.Sprintf("%04X", a.AlertCode), a.Timestamp.String()})
}

// ParseAlert reads the GBZ payload of an alert (CRA flag 3) with message
// code code. The layout after the time stamp follows the code: 0x00CD,
// 0x00CF and 0x00F2 have their own (with a count of 1), every other code has
// count components. The returned value's byte slices alias b.
func ParseAlert(code uint16, b []byte) (*Alert, error) {
	n, off, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if len(b) < alertHeaderLen {
		return nil, parseErr("alert.header", off, "need alert code and time stamp (6 bytes), have %d", len(b)-off)
	}
	a := &Alert{
		MessageCode: code,
		AlertCode:   binary.BigEndian.Uint16(b[3:]),
		Timestamp:   UTC(binary.BigEndian.Uint32(b[5:])),
	}
	off = alertHeaderLen
	rest := b[off:]
	special := func(want int) error {
		if n != specialAlertComps {
			return parseErr("component-count", 2, "count %d, want 1 for message code 0x%04X", n, code)
		}
		if len(rest) != want {
			return parseErr("alert.rest", off, "%d bytes, want %d for message code 0x%04X", len(rest), want, code)
		}
		return nil
	}
	switch alertRestOf(code) {
	case restFutureDated:
		if err := special(1 + futureDatedLen); err != nil {
			return nil, err
		}
		if rest[0] != futureDatedLen {
			return nil, parseErr("alert.future-dated.length", off, "0x%02x, want 0x%02x", rest[0], futureDatedLen)
		}
		a.FutureDated = &FutureDated{
			MessageCode:       binary.BigEndian.Uint16(rest[1:]),
			OriginatorCounter: binary.BigEndian.Uint64(rest[3:]),
			Cluster:           Cluster(binary.BigEndian.Uint16(rest[11:])),
			FrameControl:      FrameControl(rest[13]),
			Command:           rest[14],
		}
	case restFirmwareHash:
		if err := special(firmwareReceiptBytes); err != nil {
			return nil, err
		}
		if rest[0] != octetStringTag || rest[1] != firmwareHashLen {
			return nil, parseErr("alert.firmware-hash", off, "header %02x %02x, want 09 20 (octet-string of 32)", rest[0], rest[1])
		}
		a.FirmwareHash = Hex(rest[2:])
	case restIntegrityWarning:
		if err := special(integrityWarningLen); err != nil {
			return nil, err
		}
		w := binary.BigEndian.Uint16(rest)
		a.IntegrityWarning = &w
	default:
		comps, end, err := parseComponents(b, off, n)
		if err != nil {
			return nil, err
		}
		if end != len(b) {
			return nil, parseErr("alert", end, "%d bytes after the last of %d components", len(b)-end, n)
		}
		if len(comps) > 0 {
			a.Components = comps
		}
	}
	return a, nil
}

// Marshal returns the encoding of a.
func (a *Alert) Marshal() ([]byte, error) { return a.AppendBinary(nil) }

// AppendBinary appends the encoding of a to b. It fails, wrapping
// ErrInvalid, when the part MessageCode calls for is missing, another part is
// set as well, or a component cannot be encoded. The integrity warning code
// is written big-endian, as the alert header fields are (section 6.3 gives
// its width only).
func (a *Alert) AppendBinary(b []byte) ([]byte, error) {
	want := alertRestOf(a.MessageCode)
	for _, part := range []struct {
		rest alertRest
		set  bool
	}{
		{restFutureDated, a.FutureDated != nil},
		{restFirmwareHash, len(a.FirmwareHash) > 0},
		{restIntegrityWarning, a.IntegrityWarning != nil},
		{restComponents, len(a.Components) > 0},
	} {
		if part.set && part.rest != want {
			return nil, fmt.Errorf("%w: alert with message code 0x%04X carries %s; its layout has %s", ErrInvalid, a.MessageCode, part.rest, want)
		}
	}
	n := specialAlertComps
	if want == restComponents {
		n = len(a.Components)
		if n > maxComponents {
			return nil, fmt.Errorf("%w: %d components exceed the count byte's 255", ErrInvalid, n)
		}
	}
	b = binary.BigEndian.AppendUint16(b, ProfileID)
	b = append(b, byte(n))
	b = binary.BigEndian.AppendUint16(b, a.AlertCode)
	b = binary.BigEndian.AppendUint32(b, uint32(a.Timestamp))
	switch want {
	case restFutureDated:
		f := a.FutureDated
		if f == nil {
			return nil, fmt.Errorf("%w: future-dated alert 0x%04X without its outcome", ErrInvalid, a.MessageCode)
		}
		b = append(b, futureDatedLen)
		b = binary.BigEndian.AppendUint16(b, f.MessageCode)
		b = binary.BigEndian.AppendUint64(b, f.OriginatorCounter)
		b = binary.BigEndian.AppendUint16(b, uint16(f.Cluster))
		return append(b, byte(f.FrameControl), f.Command), nil
	case restFirmwareHash:
		if len(a.FirmwareHash) != firmwareHashLen {
			return nil, fmt.Errorf("%w: firmware receipt hash is %d bytes, want %d", ErrInvalid, len(a.FirmwareHash), firmwareHashLen)
		}
		b = append(b, octetStringTag, firmwareHashLen)
		return append(b, a.FirmwareHash...), nil
	case restIntegrityWarning:
		if a.IntegrityWarning == nil {
			return nil, fmt.Errorf("%w: integrity warning alert 0x%04X without its warning code", ErrInvalid, a.MessageCode)
		}
		return binary.BigEndian.AppendUint16(b, *a.IntegrityWarning), nil
	}
	return appendComponents(b, a.Components)
}

// alertRest is the layout of what follows an alert's time stamp.
type alertRest int

const (
	restComponents alertRest = iota
	restFutureDated
	restFirmwareHash
	restIntegrityWarning
)

// String names the Alert field that holds the rest.
func (r alertRest) String() string {
	return [...]string{"components", "future_dated", "firmware_hash", "integrity_warning"}[r]
}

// alertRestOf returns the layout message code code calls for.
func alertRestOf(code uint16) alertRest {
	switch code {
	case CodeFutureDatedGBZ:
		return restFutureDated
	case CodeFirmwareReceiptGSME:
		return restFirmwareHash
	case CodeIntegrityWarningGBZ:
		return restIntegrityWarning
	}
	return restComponents
}

// NewFutureDatedAlert builds a 0x00CD future-dated execution alert with the
// given alert code and time stamp.
func NewFutureDatedAlert(alertCode uint16, ts UTC, outcome FutureDated) *Alert {
	return &Alert{MessageCode: CodeFutureDatedGBZ, AlertCode: alertCode, Timestamp: ts, FutureDated: &outcome}
}

// NewBillingDataLogAlert builds a GCS53 (0x008B) billing data log alert
// carrying one encrypted component: cluster 0x0702, ZCL frame control 0x19
// (cluster-specific, server to client, default response disabled), sequence
// 0 and the given ZCL command id, additional header 00 00, and the given
// ciphered block (section 2.2) whose plaintext is the ZCL payload. The
// component's control byte is 0x03 (last, encrypted).
func NewBillingDataLogAlert(alertCode uint16, ts UTC, command uint8, ciphered []byte) *Alert {
	c := Component{
		Control:    ControlLast,
		Cluster:    ClusterMetering,
		Encryption: &Encryption{Ciphered: Hex(ciphered)},
		ZCL: Header{
			FrameControl: NewFrameControl(ClusterSpecific, ServerToClient, true),
			Command:      command,
		},
	}
	return &Alert{
		MessageCode: CodeBillingDataLog,
		AlertCode:   alertCode,
		Timestamp:   ts,
		Components:  NewResponse(c).Components,
	}
}
