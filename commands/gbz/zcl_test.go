package gbz

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestFrameControl decodes every frame control value seen in GB payloads and
// rebuilds it from its parts.
func TestFrameControl(t *testing.T) {
	tests := []struct {
		fc      FrameControl
		typ     FrameType
		dir     Direction
		disable bool
		text    string
	}{
		{0x00, ProfileWide, ClientToServer, false, "profile-wide client-to-server"},
		{0x01, ClusterSpecific, ClientToServer, false, "cluster-specific client-to-server"},
		{0x08, ProfileWide, ServerToClient, false, "profile-wide server-to-client"},
		{0x09, ClusterSpecific, ServerToClient, false, "cluster-specific server-to-client"},
		{0x18, ProfileWide, ServerToClient, true, "profile-wide server-to-client disable-default-response"},
		{0x19, ClusterSpecific, ServerToClient, true, "cluster-specific server-to-client disable-default-response"},
	}
	for _, tt := range tests {
		if tt.fc.FrameType() != tt.typ || tt.fc.Direction() != tt.dir || tt.fc.DisableDefaultResponse() != tt.disable {
			t.Errorf("0x%02x: %s %s %v", uint8(tt.fc), tt.fc.FrameType(), tt.fc.Direction(), tt.fc.DisableDefaultResponse())
		}
		if got := NewFrameControl(tt.typ, tt.dir, tt.disable); got != tt.fc {
			t.Errorf("NewFrameControl(%s, %s, %v) = 0x%02x, want 0x%02x", tt.typ, tt.dir, tt.disable, uint8(got), uint8(tt.fc))
		}
		if tt.fc.String() != tt.text {
			t.Errorf("0x%02x.String() = %q, want %q", uint8(tt.fc), tt.fc.String(), tt.text)
		}
	}
	if s := FrameControl(0xE4).String(); s != "profile-wide client-to-server other-bits-0xe4" {
		t.Errorf("unknown bits: %q", s)
	}
}

// TestValues reads and writes one value of every data type of section 5.2.
func TestValues(t *testing.T) {
	tests := []struct {
		hex  string // type byte then value
		want Value
	}{
		{"18 a5", Value{Type: TypeBitmap8, Number: 0xA5}},
		{"19 3412", Value{Type: TypeBitmap16, Number: 0x1234}},
		{"20 ff", Value{Type: TypeUint8, Number: 255}},
		{"21 6400", Value{Type: TypeUint16, Number: 100}},
		{"22 563412", Value{Type: TypeUint24, Number: 0x123456}},
		{"23 78563412", Value{Type: TypeUint32, Number: 0x12345678}},
		{"25 ffffffffffff", Value{Type: TypeUint48, Number: 1<<48 - 1}},
		{"2b feffffff", Value{Type: TypeInt32, Number: -2}},
		{"2b ffffff7f", Value{Type: TypeInt32, Number: 1<<31 - 1}},
		{"2b 00000080", Value{Type: TypeInt32, Number: -1 << 31}},
		{"30 02", Value{Type: TypeEnum8, Number: 2}},
		{"41 03 010203", Value{Type: TypeOctetString, Bytes: Hex{1, 2, 3}}},
		{"42 02 4742", Value{Type: TypeCharString, Bytes: Hex("GB")}},
		{"42 00", Value{Type: TypeCharString}},
	}
	for _, tt := range tests {
		t.Run(tt.want.Type.String(), func(t *testing.T) {
			rec := unhex(t, "0000 00 "+tt.hex)
			rr, err := ParseReadAttributesResponse(rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Records) != 1 || !reflect.DeepEqual(*rr.Records[0].Value, tt.want) {
				t.Fatalf("got %+v, want %+v", rr.Records, tt.want)
			}
			out, err := rr.AppendBinary(nil)
			if err != nil || !bytes.Equal(out, rec) {
				t.Fatalf("AppendBinary = %x, %v; want %x", out, err, rec)
			}
			j, err := json.Marshal(rr)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(j), `"type_name":"`+tt.want.Type.String()+`"`) {
				t.Errorf("JSON %s lacks the type name", j)
			}
			var back ReadAttributesResponse
			if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(&back, rr) {
				t.Errorf("JSON round trip: %+v, %v", back, err)
			}
		})
	}
}

// TestValueInvalid checks the range and shape checks of Value.AppendBinary.
func TestValueInvalid(t *testing.T) {
	for _, v := range []Value{
		{Type: TypeUint8, Number: 256},
		{Type: TypeUint16, Number: -1},
		{Type: TypeUint48, Number: 1 << 48},
		{Type: TypeInt32, Number: 1 << 31},
		{Type: TypeInt32, Number: -1<<31 - 1},
		{Type: TypeEnum8, Bytes: Hex{1}},
		{Type: TypeOctetString, Number: 1},
		{Type: TypeOctetString, Bytes: make(Hex, 256)},
		{Type: 0x38, Number: 1}, // semi-precision float: not sized here
	} {
		if b, err := v.AppendBinary(nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: AppendBinary = %x, %v; want ErrInvalid", v, b, err)
		}
	}
	for _, rr := range []*ReadAttributesResponse{
		{Records: []AttributeRecord{{Status: StatusSuccess}}},
		{Records: []AttributeRecord{{Status: StatusFailure, Value: &Value{Type: TypeUint8}}}},
	} {
		if _, err := rr.AppendBinary(nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", rr, err)
		}
	}
}

// TestZCLParseErrors covers the malformed ZCL payloads of the profile-wide
// and valve commands.
func TestZCLParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		parse  func([]byte) error
		hex    string
		field  string
		offset int
	}{
		{"read attributes odd", func(b []byte) error { _, err := ParseReadAttributes(b); return err }, "0502 14", "read-attributes.attribute", 2},
		{"record truncated", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "0502", "read-attributes-response.record[0]", 0},
		{"record without type", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "0502 00", "read-attributes-response.record[0].type", 3},
		{"unknown type", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "0502 00 38 0000", "read-attributes-response.record[0].value", 4},
		{"value truncated", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "6400 00 20 64 | 0502 00 23 010203", "read-attributes-response.record[1].value", 9},
		{"string length missing", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "0000 00 41", "read-attributes-response.record[0].value", 4},
		{"string truncated", func(b []byte) error { _, err := ParseReadAttributesResponse(b); return err }, "0000 00 42 05 4142", "read-attributes-response.record[0].value", 4},
		{"default response short", func(b []byte) error { _, err := ParseDefaultResponse(b); return err }, "0b", "default-response", 0},
		{"change supply long", func(b []byte) error { _, err := ParseChangeSupply(b); return err }, strings.Repeat("00", 19), "change-supply", 0},
		{"supply status short", func(b []byte) error { _, err := ParseSupplyStatusResponse(b); return err }, strings.Repeat("00", 12), "supply-status-response", 0},
		{"ciphered block short", func(b []byte) error { _, err := SplitCiphered(b); return err }, "31 00000000" + strings.Repeat("00", 11), "ciphered-block", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, tt.parse(unhex(t, tt.hex)), tt.field, tt.offset)
		})
	}
}

// TestUTC converts ZigBee UTCTimes to and from time.Time.
func TestUTC(t *testing.T) {
	u, err := NewUTC(time.Date(2026, 12, 5, 14, 0, 0, 999, time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if u != 0x32A6D560-3600 {
		t.Errorf("NewUTC = 0x%08x", uint32(u))
	}
	if got := UTC(0x32A6D560).Time(); !got.Equal(time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Errorf("Time() = %v", got)
	}
	if UTC(0).String() != "2000-01-01T00:00:00Z" || UTC(0xFFFFFFFF).String() != "2136-02-07T06:28:15Z" {
		t.Errorf("ends of range: %s, %s", UTC(0), UTC(0xFFFFFFFF))
	}
	for _, bad := range []time.Time{
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2136, 2, 7, 6, 28, 16, 0, time.UTC),
	} {
		if _, err := NewUTC(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewUTC(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}

// TestNames checks the display names and that JSON carries them beside the
// numbers without needing them on the way back.
func TestNames(t *testing.T) {
	if ClusterMetering.String() != "metering" || Cluster(0x0800).String() != "cluster-0x0800" {
		t.Error("cluster names")
	}
	if StatusHardwareFailure.String() != "hardware failure" || Status(0x42).String() != "status-0x42" {
		t.Error("status names")
	}
	if Control(0x13).String() != "last|encrypted|from-date-time" || Control(0).String() != "none" || Control(0x40).String() != "other-bits-0x40" {
		t.Errorf("control names: %s %s %s", Control(0x13), Control(0), Control(0x40))
	}
	if CommandName(ClusterMetering, Header{FrameControl: 0x09, Command: 0x0C}) != "Supply Status Response" ||
		CommandName(ClusterPrice, Header{FrameControl: 0x01, Command: 0x0B}) != "" ||
		CommandName(ClusterPrice, Header{FrameControl: 0x08, Command: 0x0B}) != "Default Response" {
		t.Error("command names")
	}
	p, err := Parse(unhex(t, loadVectors(t)[0].PayloadHex))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"control":1`, `"control_name":"last"`, `"cluster":1794`, `"cluster_name":"metering"`, `"command_name":"Change Supply"`, `"frame_control_name":"cluster-specific client-to-server"`, `"payload":"0000000060d5a63200000000000000000001"`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON %s lacks %s", j, want)
		}
	}
	// A hand-edited tree with only the numbers encodes the same bytes.
	var q Payload
	edited := `{"components":[{"control":1,"cluster":1794,"zcl":{"frame_control":1,"sequence":0,"command":11},"payload":"0000000060D5A63200000000000000000001"}]}`
	if err := json.Unmarshal([]byte(edited), &q); err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, &q); !bytes.Equal(got, unhex(t, loadVectors(t)[0].PayloadHex)) {
		t.Errorf("hand-written JSON encodes to %x", got)
	}
}

// TestControlDerivedBits checks that the encoder derives the encrypted and
// from-date-time bits from the component's parts and keeps the others.
func TestControlDerivedBits(t *testing.T) {
	from := UTC(1)
	c := Component{Control: 0x40 | ControlEncrypted, FromDateTime: &from, ZCL: Header{Command: 1}}
	b, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "50 0000 0007 00000001 00 00 01")
	if !bytes.Equal(b, want) {
		t.Errorf("AppendBinary = %x, want %x", b, want)
	}
}
