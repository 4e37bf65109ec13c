package asn

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeErrors(t *testing.T) {
	v12 := unhex(t, vectorByPrefix(t, "12").PayloadHex)
	tests := []struct {
		name   string
		code   uint16
		cra    CRA
		hex    string
		field  string // the ParseError's Field
		offset int
		reason string // a word of the reason
	}{
		{"empty", 0x000A, Command, "", "IssueSecurityCredentialsCommand", 0, "truncated"},
		{"truncated content", 0x000A, Command, "30 04 03 02 07", "IssueSecurityCredentialsCommand", 1, "exceeds"},
		{"truncated length", 0x0008, Response, "30 82 00", "ProvideSecurityCredentialDetailsResponse", 1, "truncated"},
		{"wrong top tag", 0x000A, Command, "31 04 03 02 07 80", "IssueSecurityCredentialsCommand", 0, "want tag 0x30"},
		{"wrong inner tag", 0x000A, Command, "30 04 04 02 07 80", "IssueSecurityCredentialsCommand.keyUsage", 2, "want tag 0x03"},
		{"trailing bytes", 0x000A, Command, "30 04 03 02 07 80 00", "IssueSecurityCredentialsCommand", 6, "trailing"},
		{"trailing inside", 0x000A, Command, "30 05 03 02 07 80 00", "IssueSecurityCredentialsCommand", 6, "trailing"},
		{"length beyond input", 0x000B, Response, "02 05 00", "UpdateDeviceCertificateResponse", 1, "exceeds"},
		{"non-minimal INTEGER", 0x000B, Response, "02 02 00 01", "UpdateDeviceCertificateResponse", 2, "non-minimal"},
		{"non-minimal negative INTEGER", 0x000F, Response, "02 02 FF 80", "UnjoinDeviceResponse", 2, "non-minimal"},
		{"empty INTEGER", 0x000E, Response, "02 00", "JoinDeviceResponse", 2, "empty"},
		{"INTEGER too large", 0x000E, Response, "02 09 01 00 00 00 00 00 00 00 00", "JoinDeviceResponse", 2, "too large"},
		{"indefinite length", 0x000A, Command, "30 80 03 02 07 80 00 00", "IssueSecurityCredentialsCommand", 1, "indefinite"},
		{"long form below 128", 0x000A, Command, "30 81 04 03 02 07 80", "IssueSecurityCredentialsCommand", 1, "one byte"},
		{"82 form below 128", 0x000A, Command, "30 82 00 04 03 02 07 80", "IssueSecurityCredentialsCommand", 1, "one byte"},
		{"83 form below 65536", 0x000A, Command, "30 83 00 00 80", "IssueSecurityCredentialsCommand", 1, "non-minimal"},
		{"four length bytes", 0x000A, Command, "30 84 00 00 00 04", "IssueSecurityCredentialsCommand", 1, "unsupported"},
		{"BIT STRING padding", 0x000A, Command, "30 04 03 02 07 81", "IssueSecurityCredentialsCommand.keyUsage", 4, "unused bits"},
		{"BIT STRING unused 8", 0x000A, Command, "30 04 03 02 08 00", "IssueSecurityCredentialsCommand.keyUsage", 4, "above 7"},
		{"BIT STRING empty with unused", 0x000C, Command, "30 03 03 01 01", "ProvideDeviceCertificateCommand.keyUsage", 4, "no bit bytes"},
		{"EntityId of 7 bytes", 0x000F, Command, "04 07 00 DB 00 00 00 00 A2", "UnjoinDeviceCommand", 2, "want 8 bytes"},
		{"CHOICE tag", 0x000C, Response, "04 01 00", "ProvideDeviceCertificateResponse", 0, "want tag 0x30"},
		{"CHOICE tag CS06", 0x0012, Response, "02 01 00", "ActivateFirmwareResponse", 0, "0x05"},
		{"NULL with content", 0x0013, Command, "05 01 00", "ReadDeviceJoinDetailsCommand", 2, "content"},
		{"time of 13 characters", 0x007F, Response, "30 12 18 0D 32 36 30 31 30 31 30 30 30 30 30 30 5A 02 01 00",
			"SetTimeResponse.deviceTime", 4, "15 characters"},
		{"time with a bad month", 0x007F, Response, "30 14 18 0F 32 30 32 36 31 33 30 31 30 30 30 30 30 30 5A 02 01 00",
			"SetTimeResponse.deviceTime", 4, "not a valid date"},
		{"time without Z", 0x007F, Response, "30 14 18 0F 32 30 32 36 30 31 30 31 30 30 30 30 30 30 30 02 01 00",
			"SetTimeResponse.deviceTime", 4, "15 characters"},
		{"81 on a short type", 0x007F, Response, "30 81 80" + strings.Repeat(" 00", 128), "SetTimeResponse", 1, "length form 81"},
		{"CS02b response without NULL", 0x0107, Response, "30 02 02 00", "UpdateSecurityCredentialsResponse.commandAccepted", 2, "want tag 0x05"},
		{"CS02b command without [3]", 0x0104, Command, "30 09 30 03 02 01 04 30 00 30 00", "AuthorisingRemotePartyControl.authorisingRemotePartySeqNumber", 7, "truncated"},
		{"CS02b command with [3] as universal", 0x0104, Command, "30 0C 30 06 02 01 04 02 01 03 30 00 30 00",
			"AuthorisingRemotePartyControl.authorisingRemotePartySeqNumber", 7, "want tag 0x83"},
		{"CS02b control with unknown tag", 0x0104, Command, "30 0F 30 09 02 01 04 83 01 03 87 01 00 30 00 30 00",
			"AuthorisingRemotePartyControl", 10, "trailing"},
		{"vector 12 truncated by one byte", 0x0107, Response, strings.ToUpper(hexString(v12[:len(v12)-1])),
			"UpdateSecurityCredentialsResponse", 1, "exceeds"},
		{"vector 12 with a byte appended", 0x0107, Response, hexString(v12) + "00", "UpdateSecurityCredentialsResponse", 205, "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.code, tc.cra, unhex(t, tc.hex))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v is not a *ParseError", err)
			}
			if pe.Field != tc.field || pe.Offset != tc.offset || !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("err = %v\nwant field %q, offset %d, reason with %q", err, tc.field, tc.offset, tc.reason)
			}
		})
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestNotASN1(t *testing.T) {
	for _, tc := range []struct {
		code uint16
		cra  CRA
	}{{0x0050, Command}, {0x00CB, Command}, {0x0107, Alert}, {0x0008, Alert}, {0x0008, 0}, {0x0008, 4}, {0x1000, Alert}} {
		if _, err := Decode(tc.code, tc.cra, []byte{0x05, 0x00}); !errors.Is(err, ErrNotASN1) {
			t.Errorf("Decode(0x%04X, %v) = %v, want ErrNotASN1", tc.code, tc.cra, err)
		}
		if Has(tc.code, tc.cra) {
			t.Errorf("Has(0x%04X, %v)", tc.code, tc.cra)
		}
	}
	if !Has(0x0129, Alert) || !Has(0x0126, Response) || !Has(0x00B2, Alert) {
		t.Error("Has misses a code")
	}
}

func TestEncodeErrors(t *testing.T) {
	var badKU KeyUsage
	if err := json.Unmarshal([]byte(`{"bits":[0],"unused":7,"nbytes":1}`), &badKU); err != nil {
		t.Fatal(err)
	}
	badKU.unused = 0
	badKU.nbytes = 0
	tests := []struct {
		name  string
		p     Payload
		field string
	}{
		{"CHOICE with neither", &IssueSecurityCredentialsResponse{}, "IssueSecurityCredentialsResponse"},
		{"CHOICE with both", &ProvideDeviceCertificateResponse{Certificate: &Certificate{Raw: []byte{0x30, 0}},
			ResponseCode: ptr(ProvideResponseCode(1))}, "ProvideDeviceCertificateResponse"},
		{"CS06 CHOICE with neither", &ActivateFirmwareResponse{}, "ActivateFirmwareResponse"},
		{"certificate that is not DER", &UpdateDeviceCertificateCommand{Certificate{Raw: []byte{0x30, 0x05, 0}}},
			"UpdateDeviceCertificateCommand"},
		{"certificate with trailing bytes", &UpdateDeviceCertificateCommand{Certificate{Raw: []byte{0x30, 0, 0}}},
			"UpdateDeviceCertificateCommand"},
		{"certificate with another tag", &JoinDeviceCommand{Certificate: &Certificate{Raw: []byte{0x31, 0}}},
			"JoinDeviceCommand.certificate"},
		{"hash of 31 bytes", &ActivateFirmwareCommand{ManufacturerImageHash: make(Octets, 31)},
			"ActivateFirmwareCommand.manufacturerImageHash"},
		{"year 10000", &SetTimeCommand{ValidityIntervalEnd: NewGeneralizedTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))},
			"SetTimeCommand.validityIntervalEnd"},
		{"key usage bits beyond its bytes", &IssueSecurityCredentialsCommand{KeyUsage: badKU}, "IssueSecurityCredentialsCommand.keyUsage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Marshal()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("err = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
	if _, err := Encode(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(nil) = %v", err)
	}
}

func TestJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		into any
		json string
	}{
		{"key usage bit out of range", new(KeyUsage), `{"bits":[64]}`},
		{"key usage unused alone", new(KeyUsage), `{"bits":[0],"unused":7}`},
		{"key usage bits do not fit", new(KeyUsage), `{"bits":[7],"unused":1,"nbytes":1}`},
		{"enum without value", new(StatusCode), `{"name":"success"}`},
		{"enum as string", new(StatusCode), `"success"`},
		{"entity id short", new(EntityID), `"00db"`},
		{"key id not hex", new(KeyID), `"zz00000000000000"`},
		{"time with offset", new(GeneralizedTime), `"20260101000000+0100"`},
		{"octets odd", new(Octets), `"abc"`},
		{"null", new(Null), `0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(tc.json), tc.into); err == nil {
				t.Errorf("json.Unmarshal(%s) into %T succeeded", tc.json, tc.into)
			}
		})
	}
}

// TestJSONEdit is the tool's use: print a decoded payload as JSON, edit a
// field by hand (with or without the name that goes with a number), and
// encode it again.
func TestJSONEdit(t *testing.T) {
	v := vectorByPrefix(t, "13")
	p, err := Decode(v.Code, v.CRA, unhex(t, v.PayloadHex))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"remotePartyRole": {`, `"name": "accessControlBroker"`, `"names": [`, `"keyAgreement"`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON lacks %s:\n%s", want, j)
		}
	}
	edited := strings.Replace(string(j), `"remotePartyRolesCredentialsRequired": [`, `"remotePartyRolesCredentialsRequired": [ 5, {"value": 200},`, 1)
	q, _ := New(v.Code, v.CRA)
	if err := json.Unmarshal([]byte(edited), q); err != nil {
		t.Fatal(err)
	}
	got, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "30 1A 30 07 02 01 04 03 02 03 08 30 0F 02 01 05 02 02 00 C8 02 01 02 02 01 03")
	want[1] = byte(len(want) - 2)
	want[12] = byte(len(want) - 13)
	if hexString(got) != hexString(want) {
		t.Errorf("edited payload:\nhave %x\nwant %x", got, want)
	}
}
