package gbz

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
)

// FrameType is the frame type in bits 0-1 of the ZCL frame control.
type FrameType uint8

// The frame types of section 5.2.
const (
	// ProfileWide marks a command that acts across clusters (Read
	// Attributes, Default Response).
	ProfileWide FrameType = 0
	// ClusterSpecific marks a command defined by the cluster named in the
	// component header.
	ClusterSpecific FrameType = 1
)

// String names the frame type.
func (t FrameType) String() string {
	switch t {
	case ProfileWide:
		return "profile-wide"
	case ClusterSpecific:
		return "cluster-specific"
	}
	return fmt.Sprintf("frame-type-%d", uint8(t))
}

// Direction is bit 3 of the ZCL frame control.
type Direction uint8

// The directions of section 5.2.
const (
	// ClientToServer is the direction of commands sent to a meter.
	ClientToServer Direction = 0
	// ServerToClient is the direction of responses and alerts from a meter.
	ServerToClient Direction = 1
)

// String names the direction.
func (d Direction) String() string {
	if d == ServerToClient {
		return "server-to-client"
	}
	return "client-to-server"
}

// FrameControl is the first byte of a ZCL header. Bits 0-1 give the frame
// type, bit 3 the direction and bit 4 disables the default response; the
// other bits are kept as they are. Values seen in GB payloads: 0x00, 0x01,
// 0x08, 0x09, 0x18, 0x19.
//
// The header is always three bytes here, as section 5.1 lays it out: bit 2
// (manufacturer specific in the ZCL, where it adds a 2-byte manufacturer code)
// is kept but does not change the layout.
type FrameControl uint8

const (
	frameTypeMask        = 0x03
	directionBit         = 0x08
	disableDefaultRspBit = 0x10
)

// NewFrameControl builds a frame control byte from its parts.
func NewFrameControl(t FrameType, d Direction, disableDefaultResponse bool) FrameControl {
	fc := FrameControl(t) & frameTypeMask
	if d == ServerToClient {
		fc |= directionBit
	}
	if disableDefaultResponse {
		fc |= disableDefaultRspBit
	}
	return fc
}

// FrameType returns bits 0-1.
func (f FrameControl) FrameType() FrameType { return FrameType(f & frameTypeMask) }

// Direction returns bit 3.
func (f FrameControl) Direction() Direction {
	if f&directionBit != 0 {
		return ServerToClient
	}
	return ClientToServer
}

// DisableDefaultResponse reports bit 4.
func (f FrameControl) DisableDefaultResponse() bool { return f&disableDefaultRspBit != 0 }

// String describes the frame control, for example
// "cluster-specific server-to-client disable-default-response".
func (f FrameControl) String() string {
	parts := []string{f.FrameType().String(), f.Direction().String()}
	if f.DisableDefaultResponse() {
		parts = append(parts, "disable-default-response")
	}
	if rest := f &^ (frameTypeMask | directionBit | disableDefaultRspBit); rest != 0 {
		parts = append(parts, fmt.Sprintf("other-bits-0x%02x", uint8(rest)))
	}
	return strings.Join(parts, " ")
}

// Header is the three-byte ZCL header of a GBZ component: frame control,
// transaction sequence number and command id (section 5.1).
type Header struct {
	// FrameControl is the ZCL frame control byte.
	FrameControl FrameControl `json:"frame_control"`
	// Sequence is the ZCL transaction sequence number: in a command the
	// component's index, in a response the index of the command component it
	// answers.
	Sequence uint8 `json:"sequence"`
	// Command is the ZCL command id, profile-wide or cluster-specific
	// according to the frame type.
	Command uint8 `json:"command"`
}

// MarshalJSON adds the frame_control_name display field.
func (h Header) MarshalJSON() ([]byte, error) {
	type plain Header
	return json.Marshal(struct {
		plain
		FrameControlName string `json:"frame_control_name"`
	}{plain(h), h.FrameControl.String()})
}

// Profile-wide command ids of section 5.2.
const (
	CmdReadAttributes         uint8 = 0x00
	CmdReadAttributesResponse uint8 = 0x01
	CmdDefaultResponse        uint8 = 0x0B
)

// Metering cluster (0x0702) command ids used by the valve use cases (5.3).
const (
	// CmdChangeSupply is the client-to-server Change Supply command.
	CmdChangeSupply uint8 = 0x0B
	// CmdSupplyStatusResponse is the server-to-client Supply Status
	// Response.
	CmdSupplyStatusResponse uint8 = 0x0C
)

// CommandName names the command of header h in cluster c when this package
// knows it (the profile-wide commands and the valve commands of 5.3), and
// returns "" otherwise.
func CommandName(c Cluster, h Header) string {
	switch h.FrameControl.FrameType() {
	case ProfileWide:
		switch h.Command {
		case CmdReadAttributes:
			return "Read Attributes"
		case CmdReadAttributesResponse:
			return "Read Attributes Response"
		case CmdDefaultResponse:
			return "Default Response"
		}
	case ClusterSpecific:
		toServer := h.FrameControl.Direction() == ClientToServer
		switch {
		case c == ClusterMetering && h.Command == CmdChangeSupply && toServer:
			return "Change Supply"
		case c == ClusterMetering && h.Command == CmdSupplyStatusResponse && !toServer:
			return "Supply Status Response"
		}
		return oursCommandName(c, h.Command, toServer)
	}
	return ""
}

// Cluster is a ZCL cluster id.
type Cluster uint16

// The clusters GB payloads use (section 5.2).
const (
	ClusterBasic            Cluster = 0x0000
	ClusterPrice            Cluster = 0x0700
	ClusterMetering         Cluster = 0x0702
	ClusterMessaging        Cluster = 0x0703
	ClusterPrepayment       Cluster = 0x0705
	ClusterCalendar         Cluster = 0x0707
	ClusterDeviceManagement Cluster = 0x0708
	ClusterEvents           Cluster = 0x0709
)

var clusterNames = map[Cluster]string{
	ClusterBasic:            "basic",
	ClusterPrice:            "price",
	ClusterMetering:         "metering",
	ClusterMessaging:        "messaging",
	ClusterPrepayment:       "prepayment",
	ClusterCalendar:         "calendar",
	ClusterDeviceManagement: "device management",
	ClusterEvents:           "events",
}

// String names the cluster, or formats an unknown one as "cluster-0x1234".
func (c Cluster) String() string {
	if n, ok := clusterNames[c]; ok {
		return n
	}
	return fmt.Sprintf("cluster-0x%04x", uint16(c))
}

// Status is a ZCL status code, as carried in a Default Response and in read
// attribute records.
type Status uint8

// The status codes of section 5.2.
const (
	StatusSuccess                   Status = 0x00
	StatusFailure                   Status = 0x01
	StatusNotAuthorized             Status = 0x7E
	StatusMalformedCommand          Status = 0x80
	StatusUnsupportedClusterCommand Status = 0x81
	StatusUnsupportedGeneralCommand Status = 0x82
	StatusInvalidField              Status = 0x85
	StatusUnsupportedAttribute      Status = 0x86
	StatusInvalidValue              Status = 0x87
	StatusReadOnly                  Status = 0x88
	StatusInsufficientSpace         Status = 0x89
	StatusNotFound                  Status = 0x8B
	StatusInvalidDataType           Status = 0x8D
	StatusHardwareFailure           Status = 0xC0
	StatusSoftwareFailure           Status = 0xC1
)

var statusNames = map[Status]string{
	StatusSuccess:                   "success",
	StatusFailure:                   "failure",
	StatusNotAuthorized:             "not authorized",
	StatusMalformedCommand:          "malformed command",
	StatusUnsupportedClusterCommand: "unsupported cluster command",
	StatusUnsupportedGeneralCommand: "unsupported general command",
	StatusInvalidField:              "invalid field",
	StatusUnsupportedAttribute:      "unsupported attribute",
	StatusInvalidValue:              "invalid value",
	StatusReadOnly:                  "read only",
	StatusInsufficientSpace:         "insufficient space",
	StatusNotFound:                  "not found",
	StatusInvalidDataType:           "invalid data type",
	StatusHardwareFailure:           "hardware failure",
	StatusSoftwareFailure:           "software failure",
}

// String names the status, or formats an unknown one as "status-0x12".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status-0x%02x", uint8(s))
}

// DataType is a ZCL attribute data type.
type DataType uint8

// The data types of section 5.2.
const (
	TypeBitmap8     DataType = 0x18
	TypeBitmap16    DataType = 0x19
	TypeUint8       DataType = 0x20
	TypeUint16      DataType = 0x21
	TypeUint24      DataType = 0x22
	TypeUint32      DataType = 0x23
	TypeUint48      DataType = 0x25
	TypeInt32       DataType = 0x2B
	TypeEnum8       DataType = 0x30
	TypeOctetString DataType = 0x41
	TypeCharString  DataType = 0x42
)

type dataTypeInfo struct {
	name   string
	size   int // bytes of a fixed-size value; 0 for a length-prefixed string
	signed bool
}

var dataTypes = map[DataType]dataTypeInfo{
	TypeBitmap8:     {"bitmap8", 1, false},
	TypeBitmap16:    {"bitmap16", 2, false},
	TypeUint8:       {"uint8", 1, false},
	TypeUint16:      {"uint16", 2, false},
	TypeUint24:      {"uint24", 3, false},
	TypeUint32:      {"uint32", 4, false},
	TypeUint48:      {"uint48", 6, false},
	TypeInt32:       {"int32", 4, true},
	TypeEnum8:       {"enum8", 1, false},
	TypeOctetString: {"octet string", 0, false},
	TypeCharString:  {"character string", 0, false},
}

// String names the data type, or formats an unknown one as "type-0x12".
func (t DataType) String() string {
	if i, ok := dataTypes[t]; ok {
		return i.name
	}
	return fmt.Sprintf("type-0x%02x", uint8(t))
}

// Known reports whether this package can read and write values of type t.
func (t DataType) Known() bool { _, ok := dataTypes[t]; return ok }

// IsString reports whether t is one of the length-prefixed string types.
func (t DataType) IsString() bool { return t == TypeOctetString || t == TypeCharString }

// Size returns the byte size of a fixed-size value of type t, and 0 for the
// string types and unknown types.
func (t DataType) Size() int { return dataTypes[t].size }

// Value is a typed ZCL attribute value. Integer-like types (bitmaps,
// unsigned integers, int32, enum8) use Number; the string types use Bytes,
// written with a 1-byte length prefix.
type Value struct {
	// Type is the ZCL data type.
	Type DataType `json:"type"`
	// Number holds the value of an integer-like type; int32 values are
	// sign-extended.
	Number int64 `json:"number,omitempty"`
	// Bytes holds the content of a string type, without its length byte.
	Bytes Hex `json:"bytes,omitempty"`
}

// MarshalJSON adds the type_name display field.
func (v Value) MarshalJSON() ([]byte, error) {
	type plain Value
	return json.Marshal(struct {
		plain
		TypeName string `json:"type_name"`
	}{plain(v), v.Type.String()})
}

// parseValue reads a value of type t from b at off (offsets for errors are
// relative to base) and returns it and the bytes read.
func parseValue(field string, t DataType, b []byte, base int) (Value, int, error) {
	info, ok := dataTypes[t]
	if !ok {
		return Value{}, 0, parseErr(field, base, "data type 0x%02x is not one this package can size", uint8(t))
	}
	if info.size == 0 {
		if len(b) < 1 {
			return Value{}, 0, parseErr(field, base, "string length missing")
		}
		n := int(b[0])
		if len(b)-1 < n {
			return Value{}, 0, parseErr(field, base, "string of %d bytes but %d bytes remain", n, len(b)-1)
		}
		v := Value{Type: t}
		if n > 0 {
			v.Bytes = Hex(b[1 : 1+n])
		}
		return v, 1 + n, nil
	}
	if len(b) < info.size {
		return Value{}, 0, parseErr(field, base, "%s value needs %d bytes but %d remain", t, info.size, len(b))
	}
	var u uint64
	for i := info.size - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	n := int64(u)
	if info.signed {
		n = int64(int32(uint32(u)))
	}
	return Value{Type: t, Number: n}, info.size, nil
}

// AppendBinary appends the little-endian encoding of v (without its type
// byte). It fails, wrapping ErrInvalid, for an unknown type, a number out of
// the type's range, a string longer than 255 bytes, or a value that sets both
// Number and Bytes or the field its type does not use.
func (v Value) AppendBinary(b []byte) ([]byte, error) {
	info, ok := dataTypes[v.Type]
	if !ok {
		return nil, fmt.Errorf("%w: data type 0x%02x has no known size", ErrInvalid, uint8(v.Type))
	}
	if info.size == 0 {
		if v.Number != 0 {
			return nil, fmt.Errorf("%w: %s value carries a number %d", ErrInvalid, v.Type, v.Number)
		}
		if len(v.Bytes) > 0xFF {
			return nil, fmt.Errorf("%w: %s of %d bytes exceeds 255", ErrInvalid, v.Type, len(v.Bytes))
		}
		b = append(b, byte(len(v.Bytes)))
		return append(b, v.Bytes...), nil
	}
	if len(v.Bytes) != 0 {
		return nil, fmt.Errorf("%w: %s value carries bytes", ErrInvalid, v.Type)
	}
	bits := uint(8 * info.size)
	if info.signed {
		if v.Number < -(1<<(bits-1)) || v.Number >= 1<<(bits-1) {
			return nil, fmt.Errorf("%w: %d out of range for %s", ErrInvalid, v.Number, v.Type)
		}
	} else if v.Number < 0 || v.Number >= 1<<bits {
		return nil, fmt.Errorf("%w: %d out of range for %s", ErrInvalid, v.Number, v.Type)
	}
	u := uint64(v.Number)
	for i := 0; i < info.size; i++ {
		b = append(b, byte(u>>(8*i)))
	}
	return b, nil
}

// ReadAttributes is the payload of the profile-wide Read Attributes command
// (0x00): the attribute ids to read, 2 bytes little-endian each.
type ReadAttributes struct {
	// Attributes lists the attribute ids in request order.
	Attributes []uint16 `json:"attributes"`
}

// ParseReadAttributes reads a Read Attributes payload.
func ParseReadAttributes(b []byte) (*ReadAttributes, error) {
	if len(b)%2 != 0 {
		return nil, parseErr("read-attributes.attribute", len(b)-1, "odd payload length %d: a lone byte after the last attribute id", len(b))
	}
	r := &ReadAttributes{Attributes: make([]uint16, 0, len(b)/2)}
	for i := 0; i < len(b); i += 2 {
		r.Attributes = append(r.Attributes, binary.LittleEndian.Uint16(b[i:]))
	}
	return r, nil
}

// AppendBinary appends the Read Attributes payload. It never fails.
func (r *ReadAttributes) AppendBinary(b []byte) ([]byte, error) {
	for _, a := range r.Attributes {
		b = binary.LittleEndian.AppendUint16(b, a)
	}
	return b, nil
}

// AttributeRecord is one record of a Read Attributes Response: the
// attribute id, the status, and the typed value when the status is success.
type AttributeRecord struct {
	// Attribute is the attribute id.
	Attribute uint16 `json:"attribute"`
	// Status is the read status; only a successful read carries a value.
	Status Status `json:"status"`
	// Value is the attribute's type and value; nil unless Status is
	// StatusSuccess.
	Value *Value `json:"value,omitempty"`
}

// MarshalJSON adds the status_name display field.
func (r AttributeRecord) MarshalJSON() ([]byte, error) {
	type plain AttributeRecord
	return json.Marshal(struct {
		plain
		StatusName string `json:"status_name"`
	}{plain(r), r.Status.String()})
}

// ReadAttributesResponse is the payload of the profile-wide Read Attributes
// Response command (0x01).
type ReadAttributesResponse struct {
	// Records lists the records in payload order.
	Records []AttributeRecord `json:"records"`
}

// ParseReadAttributesResponse reads a Read Attributes Response payload. A
// value of a data type outside section 5.2's list cannot be sized and is
// reported as malformed.
func ParseReadAttributesResponse(b []byte) (*ReadAttributesResponse, error) {
	r := &ReadAttributesResponse{Records: []AttributeRecord{}}
	for off := 0; off < len(b); {
		i := len(r.Records)
		field := fmt.Sprintf("read-attributes-response.record[%d]", i)
		if len(b)-off < 3 {
			return nil, parseErr(field, off, "record needs attribute id and status (3 bytes) but %d bytes remain", len(b)-off)
		}
		rec := AttributeRecord{Attribute: binary.LittleEndian.Uint16(b[off:]), Status: Status(b[off+2])}
		off += 3
		if rec.Status == StatusSuccess {
			if off >= len(b) {
				return nil, parseErr(field+".type", off, "successful record has no data type")
			}
			t := DataType(b[off])
			off++
			v, n, err := parseValue(field+".value", t, b[off:], off)
			if err != nil {
				return nil, err
			}
			off += n
			rec.Value = &v
		}
		r.Records = append(r.Records, rec)
	}
	return r, nil
}

// AppendBinary appends the Read Attributes Response payload. It fails,
// wrapping ErrInvalid, when a successful record has no value, a failed one
// has a value, or a value cannot be encoded.
func (r *ReadAttributesResponse) AppendBinary(b []byte) ([]byte, error) {
	for i, rec := range r.Records {
		b = binary.LittleEndian.AppendUint16(b, rec.Attribute)
		b = append(b, byte(rec.Status))
		switch {
		case rec.Status == StatusSuccess && rec.Value == nil:
			return nil, fmt.Errorf("%w: record %d: status success without a value", ErrInvalid, i)
		case rec.Status != StatusSuccess && rec.Value != nil:
			return nil, fmt.Errorf("%w: record %d: status %s with a value", ErrInvalid, i, rec.Status)
		case rec.Value == nil:
			continue
		}
		b = append(b, byte(rec.Value.Type))
		var err error
		if b, err = rec.Value.AppendBinary(b); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return b, nil
}

// DefaultResponse is the payload of the profile-wide Default Response
// command (0x0B): the command it answers and a status.
type DefaultResponse struct {
	// Command is the id of the command answered.
	Command uint8 `json:"command"`
	// Status is the outcome.
	Status Status `json:"status"`
}

// MarshalJSON adds the status_name display field.
func (d DefaultResponse) MarshalJSON() ([]byte, error) {
	type plain DefaultResponse
	return json.Marshal(struct {
		plain
		StatusName string `json:"status_name"`
	}{plain(d), d.Status.String()})
}

// ParseDefaultResponse reads a Default Response payload, exactly 2 bytes.
func ParseDefaultResponse(b []byte) (*DefaultResponse, error) {
	if len(b) != 2 {
		return nil, parseErr("default-response", 0, "payload is %d bytes, want 2 (command id, status)", len(b))
	}
	return &DefaultResponse{Command: b[0], Status: Status(b[1])}, nil
}

// AppendBinary appends the Default Response payload. It never fails.
func (d *DefaultResponse) AppendBinary(b []byte) ([]byte, error) {
	return append(b, d.Command, byte(d.Status)), nil
}
