package gbz

import (
	"errors"
	"strings"
	"testing"
)

// TestParseErrors feeds Parse malformed payloads and checks the sentinel, the
// field and the offset of the error.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		field  string
		offset int
	}{
		{"empty", "", "profile-id", 0},
		{"truncated profile id", "01", "profile-id", 0},
		{"bad profile id", "0104 01 | 01 0702 0005 | 08 00 0b | 0b c0", "profile-id", 0},
		{"missing count", "0109", "component-count", 2},
		{"count beyond input", "0109 01", "component[0]", 3},
		{"second component missing", "0109 02 | 01 0702 0005 | 08 00 0b | 0b c0", "component[1]", 13},
		{"truncated component header", "0109 01 | 01 0702 00", "component[0]", 3},
		{"length beyond input", "0109 01 | 01 0702 0015 | 01 00 0b", "component[0].length", 6},
		{"length shorter than ZCL header", "0109 01 | 01 0702 0002 | 01 00", "component[0].length", 6},
		{"length shorter than from-date-time and ZCL header", "0109 01 | 11 0702 0005 | 32a8b380 01", "component[0].length", 6},
		{"length shorter than encrypted fixed fields", "0109 01 | 03 0702 0006 | 00 00 19 00 06 00", "component[0].length", 6},
		{"ciphered length short of component end", "0109 01 | 03 0702 0008 | 00 00 | 19 00 06 | 0000 | 31", "component[0].ciphered-length", 13},
		{"ciphered length past component end", "0109 01 | 03 0702 0008 | 00 00 | 19 00 06 | 0005 | 31", "component[0].ciphered-length", 13},
		{"ciphered length past next component", "0109 02 | 02 0702 0008 | 00 00 | 19 00 06 | 0009 | 31 | 01 0702 0003 | 08 00 0b", "component[0].ciphered-length", 13},
		{"component length not reaching end", "0109 01 | 01 0702 0004 | 08 00 0b | 0b c0", "payload", 12},
		{"trailing byte", "0109 01 | 01 0702 0005 | 08 00 0b | 0b c0 | 00", "payload", 13},
		{"count zero with bytes", "0109 00 | 01", "payload", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(unhex(t, tt.hex))
			checkParseError(t, err, tt.field, tt.offset)
		})
	}
}

func checkParseError(t *testing.T, err error, field string, offset int) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want ErrMalformed", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T is not a *ParseError", err)
	}
	if pe.Field != field || pe.Offset != offset {
		t.Errorf("error %q: field %q offset %d, want %q at %d", err, pe.Field, pe.Offset, field, offset)
	}
	if msg := err.Error(); strings.HasSuffix(msg, ".") || msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("error text %q: want lower case and no trailing period", msg)
	}
}

// TestParseAlertErrors feeds ParseAlert malformed alerts.
func TestParseAlertErrors(t *testing.T) {
	tests := []struct {
		name   string
		code   uint16
		hex    string
		field  string
		offset int
	}{
		{"empty", CodeGenericCritical, "", "profile-id", 0},
		{"bad profile id", CodeGenericCritical, "0901 00 8f30 32a8b380", "profile-id", 0},
		{"truncated header", CodeGenericCritical, "0109 00 8f30 32a8", "alert.header", 3},
		{"generic count beyond input", CodeGenericCritical, "0109 01 8f30 32a8b380", "component[0]", 9},
		{"generic trailing bytes", CodeGenericNonCritical, "0109 00 810e 32a8b380 00", "alert", 9},
		{"future-dated count 0", CodeFutureDatedGBZ, "0109 00 8f66 32aab4c8 0e 0081 000001a246812b00 0702 01 0b", "component-count", 2},
		{"future-dated short", CodeFutureDatedGBZ, "0109 01 8f66 32aab4c8 0e 0081 000001a246812b00 0702 01", "alert.rest", 9},
		{"future-dated long", CodeFutureDatedGBZ, "0109 01 8f66 32aab4c8 0e 0081 000001a246812b00 0702 01 0b 00", "alert.rest", 9},
		{"future-dated length byte", CodeFutureDatedGBZ, "0109 01 8f66 32aab4c8 0f 0081 000001a246812b00 0702 01 0b", "alert.future-dated.length", 9},
		{"firmware receipt tag", CodeFirmwareReceiptGSME, "0109 01 8f72 32a7d280 04 20" + strings.Repeat("00", 32), "alert.firmware-hash", 9},
		{"firmware receipt short", CodeFirmwareReceiptGSME, "0109 01 8f72 32a7d280 09 20" + strings.Repeat("00", 31), "alert.rest", 9},
		{"integrity warning long", CodeIntegrityWarningGBZ, "0109 01 81a0 32a8b380 0006 00", "alert.rest", 9},
		{"integrity warning count 2", CodeIntegrityWarningGBZ, "0109 02 81a0 32a8b380 0006", "component-count", 2},
		{"gcs53 ciphered length mismatch", CodeBillingDataLog, "0109 01 8f1c 32a8b380 | 03 0702 0008 | 00 00 | 19 00 06 | 0002 | 31", "component[0].ciphered-length", 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAlert(tt.code, unhex(t, tt.hex))
			checkParseError(t, err, tt.field, tt.offset)
		})
	}
}

// TestMarshalInvalid checks that values the wire cannot carry are refused
// with ErrInvalid rather than written wrongly.
func TestMarshalInvalid(t *testing.T) {
	tooMany := &Payload{Components: make([]Component, 256)}
	big := &Payload{Components: []Component{{Payload: make(Hex, 0xFFFF)}}}
	both := &Payload{Components: []Component{{Encryption: &Encryption{Ciphered: Hex{1}}, Payload: Hex{2}}}}
	warn := uint16(1)
	tests := []struct {
		name string
		m    interface{ Marshal() ([]byte, error) }
	}{
		{"256 components", tooMany},
		{"component over 65535 bytes", big},
		{"encrypted with clear payload", both},
		{"future-dated alert without outcome", &Alert{MessageCode: CodeFutureDatedGBZ}},
		{"future-dated alert with components", &Alert{MessageCode: CodeFutureDatedGBZ, FutureDated: &FutureDated{}, Components: []Component{{}}}},
		{"generic alert with warning code", &Alert{MessageCode: CodeGenericCritical, IntegrityWarning: &warn}},
		{"firmware hash of 31 bytes", &Alert{MessageCode: CodeFirmwareReceiptGSME, FirmwareHash: make(Hex, 31)}},
		{"integrity alert without code", &Alert{MessageCode: CodeIntegrityWarningGBZ}},
		{"alert with 256 components", &Alert{MessageCode: CodeGenericCritical, Components: make([]Component, 256)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.m.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Marshal = %x, %v; want ErrInvalid", b, err)
			}
		})
	}
	if _, err := NewValveStatusResponse(ValveStatus{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewValveStatusResponse with success and no value: %v, want ErrInvalid", err)
	}
	if _, err := NewValveStatusResponse(ValveStatus{BatteryLifeDays: ptr[uint16](1), BatteryStatus: StatusFailure}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NewValveStatusResponse with failure and a value: %v, want ErrInvalid", err)
	}
	if _, err := (&CipheredBlock{SecurityControl: 0x31, Tag: make(Hex, 11)}).AppendBinary(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("CipheredBlock with an 11-byte tag: %v, want ErrInvalid", err)
	}
}

// TestDescribeErrors checks that payloads departing from the valve use case
// layouts are refused with a reason.
func TestDescribeErrors(t *testing.T) {
	parse := func(h string) *Payload {
		p, err := Parse(unhex(t, h))
		if err != nil {
			t.Fatalf("Parse(%s): %v", h, err)
		}
		return p
	}
	gcs32 := "0109 01 | 01 0702 0015 | 01 00 0b | 00000000 60d5a632 00000000 00000000 00 01"
	tests := []struct {
		name      string
		code      uint16
		payload   *Payload
		field     string
		malformed bool
	}{
		{"two components", CodeGCS32, parse("0109 02 | 00 0702 0005 | 08 00 0b | 0b c0 | 01 0702 0005 | 08 01 0b | 0b c0"), "component-count", false},
		{"no components", CodeGCS33, parse("0109 00"), "component-count", false},
		{"wrong cluster", CodeGCS32, parse("0109 01 | 01 0700 0005 | 08 00 0b | 0b c0"), "component[0].cluster", false},
		{"encrypted", CodeGCS32, parse("0109 01 | 03 0702 0018 | 00 00 | 09 00 0c | 0011 | 31 00000000 000102030405060708090a0b"), "component[0].control", false},
		{"GCS39 closing the valve", CodeGCS39, parse(gcs32), "change-supply.proposed-supply-status", false},
		{"change supply of 17 bytes", CodeGCS32, parse("0109 01 | 01 0702 0014 | 01 00 0b | 00000000 60d5a632 00000000 00000000 00"), "component[0].payload", true},
		{"default response for another command", CodeGCS32, parse("0109 01 | 01 0702 0005 | 08 00 0b | 00 c0"), "default-response.command", false},
		{"GCS33 with a change supply", CodeGCS33, parse(gcs32), "component[0].zcl", false},
		{"GCS33 attributes reversed", CodeGCS33, parse("0109 01 | 01 0702 0007 | 00 00 00 | 1400 0502"), "read-attributes.attributes", false},
		{"GCS33 odd attribute bytes", CodeGCS33, parse("0109 01 | 01 0702 0006 | 00 00 00 | 0502 14"), "component[0].payload", true},
		{"GCS33 battery as uint8", CodeGCS33, parse("0109 01 | 01 0702 000d | 08 00 01 | 0502 00 20 64 | 1400 00 30 02"), "read-attributes-response.record[0].type", false},
		{"GCS33 one record", CodeGCS33, parse("0109 01 | 01 0702 0009 | 08 00 01 | 0502 00 21 6400"), "read-attributes-response.records", false},
		{"GCS33 wrong attribute", CodeGCS33, parse("0109 01 | 01 0702 000e | 08 00 01 | 0502 00 21 6400 | 1500 00 30 02"), "read-attributes-response.record[1].attribute", false},
		{"GCS33 truncated record", CodeGCS33, parse("0109 01 | 01 0702 000d | 08 00 01 | 0502 00 21 6400 | 1400 00 30"), "component[0].payload", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Describe(tt.code, tt.payload)
			if !errors.Is(err, ErrLayout) {
				t.Fatalf("Describe = %v, want ErrLayout", err)
			}
			if errors.Is(err, ErrMalformed) != tt.malformed {
				t.Errorf("Describe = %v; wraps ErrMalformed %v, want %v", err, !tt.malformed, tt.malformed)
			}
			var le *LayoutError
			if !errors.As(err, &le) || le.Field != tt.field {
				t.Errorf("Describe = %v; want field %q", err, tt.field)
			}
		})
	}
	if _, err := Describe(0x0080, parse(gcs32)); !errors.Is(err, ErrUnknownUseCase) {
		t.Errorf("Describe(0x0080) = %v, want ErrUnknownUseCase", err)
	}
}
