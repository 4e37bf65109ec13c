package gbz

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Message codes of the GSME valve use cases (section 5.3).
const (
	// CodeGCS32 is GCS32 Remotely close the valve (SRV 7.2), critical.
	CodeGCS32 uint16 = 0x0081
	// CodeGCS33 is GCS33 Read GSME Valve Status (SRV 7.4), non-critical.
	CodeGCS33 uint16 = 0x0082
	// CodeGCS39 is GCS39 Arm Valve (SRV 7.3), critical.
	CodeGCS39 uint16 = 0x0085
)

// Metering cluster attributes read by GCS33.
const (
	// AttrSupplyStatus is the supply (valve) status, enum8.
	AttrSupplyStatus uint16 = 0x0014
	// AttrRemainingBatteryLife is the remaining battery life in days,
	// uint16.
	AttrRemainingBatteryLife uint16 = 0x0205
)

// SupplyStatus is the metering cluster's supply status (enum8): the state of
// a gas meter's valve.
type SupplyStatus uint8

// The supply status values of section 5.3.
const (
	SupplyOff   SupplyStatus = 0 // valve closed
	SupplyArmed SupplyStatus = 1 // armed, to be opened by the consumer
	SupplyOn    SupplyStatus = 2 // valve open
)

// String names the supply status.
func (s SupplyStatus) String() string {
	switch s {
	case SupplyOff:
		return "off"
	case SupplyArmed:
		return "armed"
	case SupplyOn:
		return "on"
	}
	return fmt.Sprintf("supply-status-%d", uint8(s))
}

const (
	changeSupplyLen         = 18
	supplyStatusResponseLen = 13
)

// Frame controls of the valve use cases.
var (
	fcCommandCluster  = NewFrameControl(ClusterSpecific, ClientToServer, false) // 0x01
	fcResponseCluster = NewFrameControl(ClusterSpecific, ServerToClient, false) // 0x09
	fcCommandProfile  = NewFrameControl(ProfileWide, ClientToServer, false)     // 0x00
	fcResponseProfile = NewFrameControl(ProfileWide, ServerToClient, false)     // 0x08
)

// ChangeSupply is the payload of the metering cluster's Change Supply
// command (0x0B), sent by GCS32 (close the valve) and GCS39 (arm it). Times
// are little-endian ZigBee UTCTimes; 0 means "now" for the implementation
// date-time.
type ChangeSupply struct {
	// ProviderID is the provider id (uint32), 0 in GB use.
	ProviderID uint32 `json:"provider_id"`
	// IssuerEventID identifies the command; GB use puts a UTCTime here.
	IssuerEventID UTC `json:"issuer_event_id"`
	// RequestDateTime is the request date-time.
	RequestDateTime UTC `json:"request_date_time"`
	// ImplementationDateTime is when to act; 0 for now.
	ImplementationDateTime UTC `json:"implementation_date_time"`
	// ProposedSupplyStatus is SupplyOff for GCS32 and SupplyArmed for GCS39.
	ProposedSupplyStatus SupplyStatus `json:"proposed_supply_status"`
	// SupplyControlBits is the supply control bitmap8, 0x01 in GB use.
	SupplyControlBits uint8 `json:"supply_control_bits"`
}

// ParseChangeSupply reads a Change Supply payload, exactly 18 bytes.
func ParseChangeSupply(b []byte) (*ChangeSupply, error) {
	if len(b) != changeSupplyLen {
		return nil, parseErr("change-supply", 0, "payload is %d bytes, want %d", len(b), changeSupplyLen)
	}
	return &ChangeSupply{
		ProviderID:             binary.LittleEndian.Uint32(b),
		IssuerEventID:          UTC(binary.LittleEndian.Uint32(b[4:])),
		RequestDateTime:        UTC(binary.LittleEndian.Uint32(b[8:])),
		ImplementationDateTime: UTC(binary.LittleEndian.Uint32(b[12:])),
		ProposedSupplyStatus:   SupplyStatus(b[16]),
		SupplyControlBits:      b[17],
	}, nil
}

// AppendBinary appends the Change Supply payload. It never fails.
func (c *ChangeSupply) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, c.ProviderID)
	b = binary.LittleEndian.AppendUint32(b, uint32(c.IssuerEventID))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.RequestDateTime))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.ImplementationDateTime))
	return append(b, byte(c.ProposedSupplyStatus), c.SupplyControlBits), nil
}

// NewChangeSupply builds the GCS32 or GCS39 command payload (section 5.3):
// one component, control 0x01, cluster 0x0702, ZCL 01 00 0B, then c. GCS32
// proposes SupplyOff, GCS39 SupplyArmed.
func NewChangeSupply(c ChangeSupply) *Payload {
	body, _ := c.AppendBinary(make([]byte, 0, changeSupplyLen))
	return NewCommand(Component{
		Cluster: ClusterMetering,
		ZCL:     Header{FrameControl: fcCommandCluster, Command: CmdChangeSupply},
		Payload: body,
	})
}

// SupplyStatusResponse is the payload of the metering cluster's Supply
// Status Response (0x0C), the success response of GCS32 and GCS39.
type SupplyStatusResponse struct {
	// ProviderID is the provider id (uint32).
	ProviderID uint32 `json:"provider_id"`
	// IssuerEventID repeats the command's issuer event id.
	IssuerEventID UTC `json:"issuer_event_id"`
	// ImplementationDateTime is when the change took effect.
	ImplementationDateTime UTC `json:"implementation_date_time"`
	// SupplyStatus is the supply status now: SupplyOff after GCS32,
	// SupplyArmed after GCS39.
	SupplyStatus SupplyStatus `json:"supply_status"`
}

// ParseSupplyStatusResponse reads a Supply Status Response payload, exactly
// 13 bytes.
func ParseSupplyStatusResponse(b []byte) (*SupplyStatusResponse, error) {
	if len(b) != supplyStatusResponseLen {
		return nil, parseErr("supply-status-response", 0, "payload is %d bytes, want %d", len(b), supplyStatusResponseLen)
	}
	return &SupplyStatusResponse{
		ProviderID:             binary.LittleEndian.Uint32(b),
		IssuerEventID:          UTC(binary.LittleEndian.Uint32(b[4:])),
		ImplementationDateTime: UTC(binary.LittleEndian.Uint32(b[8:])),
		SupplyStatus:           SupplyStatus(b[12]),
	}, nil
}

// AppendBinary appends the Supply Status Response payload. It never fails.
func (r *SupplyStatusResponse) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, r.ProviderID)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.IssuerEventID))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.ImplementationDateTime))
	return append(b, byte(r.SupplyStatus)), nil
}

// NewSupplyStatusResponse builds the success response of GCS32 or GCS39
// (section 5.3): one component, control 0x01, cluster 0x0702, ZCL 09 00 0C,
// then r.
func NewSupplyStatusResponse(r SupplyStatusResponse) *Payload {
	body, _ := r.AppendBinary(make([]byte, 0, supplyStatusResponseLen))
	return NewResponse(Component{
		Cluster: ClusterMetering,
		ZCL:     Header{FrameControl: fcResponseCluster, Command: CmdSupplyStatusResponse},
		Payload: body,
	})
}

// NewDefaultResponse builds a one-component error response on cluster c:
// control 0x01, ZCL 08 00 0B (Default Response, server to client), payload
// command id and status. The GCS32 and GCS39 error is
// NewDefaultResponse(ClusterMetering, CmdChangeSupply, StatusHardwareFailure).
func NewDefaultResponse(c Cluster, command uint8, status Status) *Payload {
	return NewResponse(Component{
		Cluster: c,
		ZCL:     Header{FrameControl: fcResponseProfile, Command: CmdDefaultResponse},
		Payload: Hex{command, byte(status)},
	})
}

// NewReadValveStatus builds the GCS33 command (section 5.3): one component,
// control 0x01, cluster 0x0702, ZCL 00 00 00 Read Attributes of the remaining
// battery life (0x0205) and the supply status (0x0014).
func NewReadValveStatus() *Payload {
	ra := ReadAttributes{Attributes: []uint16{AttrRemainingBatteryLife, AttrSupplyStatus}}
	body, _ := ra.AppendBinary(nil)
	return NewCommand(Component{
		Cluster: ClusterMetering,
		ZCL:     Header{FrameControl: fcCommandProfile, Command: CmdReadAttributes},
		Payload: body,
	})
}

// ValveStatus is the GCS33 response: the two attribute records of its Read
// Attributes Response. A value is nil when its read failed, and its status
// then says why (RTDS's error example has StatusHardwareFailure for the supply
// status).
type ValveStatus struct {
	// BatteryLifeDays is the remaining battery life in days; nil when the
	// read failed.
	BatteryLifeDays *uint16 `json:"battery_life_days,omitempty"`
	// BatteryStatus is the status of the battery life read.
	BatteryStatus Status `json:"battery_status"`
	// SupplyStatus is the valve state; nil when the read failed.
	SupplyStatus *SupplyStatus `json:"supply_status,omitempty"`
	// SupplyReadStatus is the status of the supply status read.
	SupplyReadStatus Status `json:"supply_read_status"`
}

// MarshalJSON adds the status name display fields.
func (v ValveStatus) MarshalJSON() ([]byte, error) {
	type plain ValveStatus
	s := struct {
		plain
		BatteryStatusName    string `json:"battery_status_name"`
		SupplyReadStatusName string `json:"supply_read_status_name"`
		SupplyStatusName     string `json:"supply_status_name,omitempty"`
	}{plain: plain(v), BatteryStatusName: v.BatteryStatus.String(), SupplyReadStatusName: v.SupplyReadStatus.String()}
	if v.SupplyStatus != nil {
		s.SupplyStatusName = v.SupplyStatus.String()
	}
	return json.Marshal(s)
}

// records returns the Read Attributes Response records of v.
func (v *ValveStatus) records() (*ReadAttributesResponse, error) {
	rec := func(attr uint16, st Status, set bool, val Value) (AttributeRecord, error) {
		r := AttributeRecord{Attribute: attr, Status: st}
		switch {
		case st == StatusSuccess && !set:
			return r, fmt.Errorf("%w: attribute 0x%04x: status success without a value", ErrInvalid, attr)
		case st != StatusSuccess && set:
			return r, fmt.Errorf("%w: attribute 0x%04x: status %s with a value", ErrInvalid, attr, st)
		case set:
			r.Value = &val
		}
		return r, nil
	}
	var battery, supply Value
	if v.BatteryLifeDays != nil {
		battery = Value{Type: TypeUint16, Number: int64(*v.BatteryLifeDays)}
	}
	if v.SupplyStatus != nil {
		supply = Value{Type: TypeEnum8, Number: int64(*v.SupplyStatus)}
	}
	r0, err := rec(AttrRemainingBatteryLife, v.BatteryStatus, v.BatteryLifeDays != nil, battery)
	if err != nil {
		return nil, err
	}
	r1, err := rec(AttrSupplyStatus, v.SupplyReadStatus, v.SupplyStatus != nil, supply)
	if err != nil {
		return nil, err
	}
	return &ReadAttributesResponse{Records: []AttributeRecord{r0, r1}}, nil
}

// NewValveStatusResponse builds the GCS33 response (section 5.3): one
// component, control 0x01, cluster 0x0702, ZCL 08 00 01 Read Attributes
// Response with the records 0x0205 (uint16) and 0x0014 (enum8). It fails,
// wrapping ErrInvalid, when a value and its status disagree.
func NewValveStatusResponse(v ValveStatus) (*Payload, error) {
	rr, err := v.records()
	if err != nil {
		return nil, err
	}
	body, err := rr.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	return NewResponse(Component{
		Cluster: ClusterMetering,
		ZCL:     Header{FrameControl: fcResponseProfile, Command: CmdReadAttributesResponse},
		Payload: body,
	}), nil
}

// UseCase says which valve use case message a payload is, with its typed
// value.
type UseCase struct {
	// Code is the message code.
	Code uint16 `json:"message_code"`
	// Name is the use case, such as "GCS32".
	Name string `json:"use_case"`
	// Title is the use case's title, such as "Remotely close the valve".
	Title string `json:"title"`
	// Message is "command", "response" or "error response" (a Default
	// Response for GCS32 and GCS39, a failed record for GCS33).
	Message string `json:"message"`
	// Value is the typed content: *ChangeSupply, *SupplyStatusResponse,
	// *DefaultResponse, *ReadAttributes or *ValveStatus.
	Value any `json:"value"`
}

// Describe says which use case of section 5.3 a payload with message code
// code is, and decodes its ZCL payload. It fails with ErrUnknownUseCase for a
// code other than GCS32, GCS33 and GCS39, and with a *LayoutError (wrapping
// ErrLayout) naming the first field that departs from the use case's layout.
// The component's control byte may carry a from-date-time (a future-dated
// command) but not encryption; the sequence number is not judged.
func Describe(code uint16, p *Payload) (*UseCase, error) {
	u := &UseCase{Code: code}
	switch code {
	case CodeGCS32:
		u.Name, u.Title = "GCS32", "Remotely close the valve"
	case CodeGCS39:
		u.Name, u.Title = "GCS39", "Arm valve"
	case CodeGCS33:
		u.Name, u.Title = "GCS33", "Read GSME valve status"
	default:
		// Use cases with our own layout (ours.go).
		if ou, ok, err := describeOurs(code, p); ok {
			if err != nil {
				return nil, err
			}
			return ou, nil
		}
		return nil, fmt.Errorf("%w: 0x%04X", ErrUnknownUseCase, code)
	}
	layout := func(field, format string, args ...any) error {
		return &LayoutError{UseCase: u.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(p.Components) != 1 {
		return nil, layout("component-count", "%d components, want 1", len(p.Components))
	}
	c := &p.Components[0]
	switch {
	case c.Cluster != ClusterMetering:
		return nil, layout("component[0].cluster", "0x%04x, want 0x0702 (metering)", uint16(c.Cluster))
	case c.Encryption != nil:
		return nil, layout("component[0].control", "encrypted component, want a clear one")
	}
	zclErr := func(what string, err error) error {
		return &LayoutError{UseCase: u.Name, Field: "component[0].payload", Reason: what + " payload does not parse", Err: err}
	}
	h := c.ZCL
	switch {
	case code != CodeGCS33 && h.FrameControl == fcCommandCluster && h.Command == CmdChangeSupply:
		cs, err := ParseChangeSupply(c.Payload)
		if err != nil {
			return nil, zclErr("Change Supply", err)
		}
		want := SupplyOff
		if code == CodeGCS39 {
			want = SupplyArmed
		}
		if cs.ProposedSupplyStatus != want {
			return nil, layout("change-supply.proposed-supply-status", "%s, want %s for %s", cs.ProposedSupplyStatus, want, u.Name)
		}
		u.Message, u.Value = "command", cs
	case code != CodeGCS33 && h.FrameControl == fcResponseCluster && h.Command == CmdSupplyStatusResponse:
		r, err := ParseSupplyStatusResponse(c.Payload)
		if err != nil {
			return nil, zclErr("Supply Status Response", err)
		}
		u.Message, u.Value = "response", r
	case code != CodeGCS33 && h.FrameControl == fcResponseProfile && h.Command == CmdDefaultResponse:
		d, err := ParseDefaultResponse(c.Payload)
		if err != nil {
			return nil, zclErr("Default Response", err)
		}
		if d.Command != CmdChangeSupply {
			return nil, layout("default-response.command", "0x%02x, want 0x0b (Change Supply)", d.Command)
		}
		u.Message, u.Value = "error response", d
	case code == CodeGCS33 && h.FrameControl == fcCommandProfile && h.Command == CmdReadAttributes:
		ra, err := ParseReadAttributes(c.Payload)
		if err != nil {
			return nil, zclErr("Read Attributes", err)
		}
		if len(ra.Attributes) != 2 || ra.Attributes[0] != AttrRemainingBatteryLife || ra.Attributes[1] != AttrSupplyStatus {
			return nil, layout("read-attributes.attributes", "%04x, want [0205 0014]", ra.Attributes)
		}
		u.Message, u.Value = "command", ra
	case code == CodeGCS33 && h.FrameControl == fcResponseProfile && h.Command == CmdReadAttributesResponse:
		v, err := ParseValveStatus(c.Payload)
		if err != nil {
			var le *LayoutError
			if errors.As(err, &le) {
				le.UseCase = u.Name
				return nil, le
			}
			return nil, zclErr("Read Attributes Response", err)
		}
		u.Message, u.Value = "response", v
		if v.BatteryStatus != StatusSuccess || v.SupplyReadStatus != StatusSuccess {
			u.Message = "error response"
		}
	default:
		return nil, layout("component[0].zcl", "frame control 0x%02x command 0x%02x is none of the %s messages", uint8(h.FrameControl), h.Command, u.Name)
	}
	return u, nil
}

// ParseValveStatus reads the ZCL payload of a GCS33 response. Bytes that are
// not a Read Attributes Response give a *ParseError (ErrMalformed); records
// other than 0x0205 (uint16) then 0x0014 (enum8) give a *LayoutError
// (ErrLayout).
func ParseValveStatus(b []byte) (*ValveStatus, error) {
	rr, err := ParseReadAttributesResponse(b)
	if err != nil {
		return nil, err
	}
	layout := func(field, format string, args ...any) error {
		return &LayoutError{UseCase: "GCS33", Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(rr.Records) != 2 {
		return nil, layout("read-attributes-response.records", "%d records, want 2", len(rr.Records))
	}
	v := &ValveStatus{BatteryStatus: rr.Records[0].Status, SupplyReadStatus: rr.Records[1].Status}
	for i, want := range []struct {
		attr uint16
		typ  DataType
	}{{AttrRemainingBatteryLife, TypeUint16}, {AttrSupplyStatus, TypeEnum8}} {
		r := rr.Records[i]
		field := fmt.Sprintf("read-attributes-response.record[%d]", i)
		if r.Attribute != want.attr {
			return nil, layout(field+".attribute", "0x%04x, want 0x%04x", r.Attribute, want.attr)
		}
		if r.Value == nil {
			continue
		}
		if r.Value.Type != want.typ {
			return nil, layout(field+".type", "%s, want %s", r.Value.Type, want.typ)
		}
		switch i {
		case 0:
			d := uint16(r.Value.Number)
			v.BatteryLifeDays = &d
		case 1:
			s := SupplyStatus(r.Value.Number)
			v.SupplyStatus = &s
		}
	}
	return v, nil
}
