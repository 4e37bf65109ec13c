package dlms

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"
)

// TestDataRoundTrip covers every tag and the recorded length forms.
func TestDataRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Data
	}{
		{"null", "00", Null()},
		{"boolean", "0301", Boolean(true)},
		{"boolean non-canonical", "03ff", Data{Tag: TagBoolean, Value: 0xff}},
		{"bit-string", "040bffe0", BitString([]byte{0xff, 0xe0}, 11)},
		{"double-long", "05fffffffe", DoubleLong(-2)},
		{"double-long-unsigned", "0600015bb4", DoubleLongUnsigned(0x15bb4)},
		{"octet-string", "0903010203", OctetString([]byte{1, 2, 3})},
		{"octet-string 81 form", "09810201ff", Data{Tag: TagOctetString, Bytes: []byte{1, 0xff}, Form: Length81}},
		{"octet-string 82 form", "0982000100", Data{Tag: TagOctetString, Bytes: []byte{0}, Form: Length82}},
		{"visible-string", "0a0434373231", VisibleString("4721")},
		{"utf8-string", "0c02c3a9", UTF8String("é")},
		{"utf8-string invalid", "0c01ff", Data{Tag: TagUTF8String, Bytes: []byte{0xff}}},
		{"bcd", "0d12", Data{Tag: TagBCD, Value: 0x12}},
		{"integer", "0ffb", Integer(-5)},
		{"long", "10ffff", Long(-1)},
		{"unsigned", "11ff", Unsigned(255)},
		{"long-unsigned", "128f66", LongUnsigned(0x8f66)},
		{"long64", "148000000000000000", Long64(-1 << 63)},
		{"long64-unsigned", "15ffffffffffffffff", Long64Unsigned(1<<64 - 1)},
		{"enum", "1620", Enum(32)},
		{"float32", "173f800000", Float32(1)},
		{"float64", "18bff0000000000000", Float64(-1)},
		{"date-time", "1907ea0c01ff000000008000ff", Data{Tag: TagDateTime, Bytes: mustHex(t, "07ea0c01ff000000008000ff")}},
		{"date", "1a07ea0c01ff", Data{Tag: TagDate, Bytes: mustHex(t, "07ea0c01ff")}},
		{"time", "1b01020300", Data{Tag: TagTime, Bytes: []byte{1, 2, 3, 0}}},
		{"array", "0102110112ffff", Array(Unsigned(1), LongUnsigned(0xffff))},
		{"empty structure", "0200", Structure()},
		{"structure 81 count", "02810100", Data{Tag: TagStructure, Elems: []Data{Null()}, Form: Length81}},
		{"compact structure", "1302020606" + "08" + "0000000100000002", CompactArray(profileType, Structure(DoubleLongUnsigned(1), DoubleLongUnsigned(2)))},
		{"compact array of array", "1301000212" + "08" + "0001000200030004", CompactArray(TypeDesc{Tag: TagArray, Count: 2, Elems: []TypeDesc{{Tag: TagLongUnsigned}}},
			Array(LongUnsigned(1), LongUnsigned(2)), Array(LongUnsigned(3), LongUnsigned(4)))},
		{"compact strings", "130908" + "01aa" + "00" + "040fff0002", CompactArray(TypeDesc{Tag: TagOctetString}, OctetString([]byte{0xaa})).withMore(
			OctetString([]byte{}), Data{Tag: TagOctetString, Bytes: []byte{0x0f, 0xff, 0, 2}})},
		{"compact empty", "131200", CompactArray(TypeDesc{Tag: TagLongUnsigned})},
		{"compact 82 contents", "1311820001" + "07", Data{Tag: TagCompactArray, Type: &TypeDesc{Tag: TagUnsigned}, Elems: []Data{Unsigned(7)}, Form: Length82}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.hex)
			d, err := ParseData(in)
			if err != nil {
				t.Fatalf("ParseData: %v", err)
			}
			if !d.Equal(tt.want) {
				t.Errorf("ParseData = %+v, want %+v", d, tt.want)
			}
			out, err := tt.want.MarshalBinary()
			if err != nil || !bytes.Equal(out, in) {
				t.Errorf("MarshalBinary = %x, %v; want %x", out, err, in)
			}
			j, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back Data
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", j, err)
			}
			if !back.Equal(d) {
				t.Errorf("after JSON %s: %+v, want %+v", j, back, d)
			}
		})
	}
}

// withMore appends elements to a compact array, for table readability.
func (d Data) withMore(e ...Data) Data {
	d.Elems = append(d.Elems, e...)
	return d
}

func TestDataJSONForm(t *testing.T) {
	d := Structure(LongUnsigned(0x8f66), Integer(-3), Boolean(true), VisibleString("ab"), OctetString([]byte{0xAB}))
	got := jsonString(t, d)
	want := `{"tag":2,"type":"structure","elements":[{"tag":18,"type":"long-unsigned","value":36710},` +
		`{"tag":15,"type":"integer","value":-3},{"tag":3,"type":"boolean","value":true},` +
		`{"tag":10,"type":"visible-string","text":"ab"},{"tag":9,"type":"octet-string","hex":"ab"}]}`
	if got != want {
		t.Errorf("JSON\n got %s\nwant %s", got, want)
	}
	// Decoding needs only the numbers; an edited value re-encodes.
	var e Data
	if err := json.Unmarshal([]byte(`{"tag":2,"elements":[{"tag":18,"value":52},{"tag":9,"text":"4721"}]}`), &e); err != nil {
		t.Fatal(err)
	}
	if out, err := e.MarshalBinary(); err != nil || !bytes.Equal(out, mustHex(t, "02021200340904"+"34373231")) {
		t.Errorf("edited JSON encodes to %x, %v", out, err)
	}
}

func TestDataJSONErrors(t *testing.T) {
	for _, tt := range []struct{ name, json string }{
		{"unknown tag", `{"tag":7}`},
		{"integer out of range", `{"tag":15,"value":128}`},
		{"unsigned out of range", `{"tag":17,"value":256}`},
		{"negative unsigned", `{"tag":18,"value":-1}`},
		{"hex and text", `{"tag":10,"hex":"00","text":"a"}`},
		{"bad hex", `{"tag":9,"hex":"zz"}`},
		{"missing hex", `{"tag":9}`},
		{"fixed size", `{"tag":23,"hex":"00"}`},
		{"bits mismatch", `{"tag":4,"bits":9,"hex":"00"}`},
		{"boolean raw contradicts", `{"tag":3,"value":false,"raw":2}`},
		{"compact without description", `{"tag":19,"elements":[]}`},
		{"array description without count", `{"tag":19,"description":{"tag":1,"elements":[{"tag":6}]}}`},
		{"bad form", `{"tag":9,"hex":"","form":"83"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d Data
			if err := json.Unmarshal([]byte(tt.json), &d); !errors.Is(err, ErrInvalid) {
				t.Errorf("json.Unmarshal(%s) err = %v, want ErrInvalid", tt.json, err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    Data
	}{
		{"unknown tag", Data{Tag: 0x07}},
		{"value too wide", Data{Tag: TagUnsigned, Value: 256}},
		{"fixed size", Data{Tag: TagFloat32, Bytes: []byte{1}}},
		{"bit bytes", Data{Tag: TagBitString, BitLen: 9, Bytes: []byte{1}}},
		{"string too long", OctetString(make([]byte, maxLength+1))},
		{"compact without type", Data{Tag: TagCompactArray}},
		{"compact element tag", CompactArray(TypeDesc{Tag: TagUnsigned}, LongUnsigned(1))},
		{"compact element count", CompactArray(profileType, Structure(DoubleLongUnsigned(1)))},
		{"compact zero-size elements", CompactArray(TypeDesc{Tag: TagNull})},
		{"compact nested compact", CompactArray(TypeDesc{Tag: TagCompactArray})},
		{"compact array type without element", CompactArray(TypeDesc{Tag: TagArray, Count: 1})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.d.MarshalBinary(); !errors.Is(err, ErrInvalid) {
				t.Errorf("MarshalBinary err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestParseErrors covers truncation, bad tags, counts beyond the input and
// compact-array contents that do not follow the description.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		field  string
		offset int
	}{
		{"empty", "", "apdu.tag", 0},
		{"unknown apdu", "c001", "apdu.tag", 0},
		{"truncated invoke", "d92000", "access-request.invoke-id", 1},
		{"date-time length", "d92000000105", "access-request.date-time", 5},
		{"truncated date-time", "d9200000010c0102", "access-request.date-time", 6},
		{"spec count beyond input", "d9200000010005", "access-request.spec-count", 6},
		{"spec choice", "d920000001000109000900000a006aff01", "access-request.spec[0].choice", 7},
		{"spec beyond input", "d92000000100010300090000", "access-request.spec-count", 6},
		{"non-minimal count", "d920000001008101", "access-request.spec-count", 6},
		{"data count beyond input", "d920000001000003", "access-request.data-count", 7},
		{"unknown data tag", "d92000000100000107", "access-request.data[0]", 8},
		{"trailing bytes", "d9200000010000000000", "access-request", 8},
		{"response presence byte", "da20000001000200", "access-response.access-request-specification", 6},
		{"response result choice", "da2000000100000100010400", "access-response.result[0].choice", 10},
		{"response results beyond input", "da2000000100000100050300", "access-response.result-count", 9},
		{"notification truncated", "0f2000000100", "data-notification.body", 6},
		{"string beyond input", "0f20000001000905aa", "data-notification.body.length", 7},
		{"bad length byte", "0f200000010009830000", "data-notification.body.length", 7},
		{"truncated 82 length", "0f2000000100098200", "data-notification.body.length", 8},
		{"array count beyond input", "0f200000010001050000", "data-notification.body.count", 7},
		{"element truncated", "0f20000001000202120001", "data-notification.body.structure[1]", 11},
		{"bit-string beyond input", "0f20000001000411ff", "data-notification.body.bit-count", 7},
		{"compact unknown type", "0f2000000100130700", "data-notification.body.type-description", 7},
		{"compact nested compact", "0f2000000100131300", "data-notification.body.type-description", 7},
		{"compact zero-size type", "0f2000000100130000", "data-notification.body.type-description", 7},
		{"compact array of empty structures", "0f20000001001301ffff020000", "data-notification.body.type-description", 7},
		{"compact contents beyond input", "0f200000010013060900", "data-notification.body.contents-length", 8},
		{"compact contents not whole elements", "0f20000001001302020606" + "06" + "000000010000", "data-notification.body.contents", 12},
		{"compact string overruns contents", "0f20000001001309" + "02" + "0205" + "aabbccdd", "data-notification.body.element[0].length", 9},
		{"compact truncated description", "0f2000000100130203", "data-notification.body.type-description.count", 8},
		{"deep nesting", "0f2000000100" + repeat("0201", 70) + "00", "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(mustHex(t, tt.hex))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse err = %v, want ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not a *ParseError", err)
			}
			if tt.offset >= 0 && (pe.Field != tt.field || pe.Offset != tt.offset) {
				t.Errorf("error at %s offset %d, want %s offset %d (%v)", pe.Field, pe.Offset, tt.field, tt.offset, err)
			}
		})
	}
}

func repeat(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

func TestOBIS(t *testing.T) {
	o, err := ParseOBIS("0-0:96.3.10.255")
	if err != nil || o != (OBIS{0, 0, 96, 3, 10, 255}) || o.String() != "0-0:96.3.10.255" {
		t.Errorf("ParseOBIS = %v, %v", o, err)
	}
	for _, bad := range []string{"", "0-0:96.3.10", "0:0:1.2.3.4", "0-0:96.3.10.256", "0-0:96.3.10.-1", "0-0:96.3.10.01", "0-0:96..10.255"} {
		if _, err := ParseOBIS(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseOBIS(%q) err = %v", bad, err)
		}
	}
	var back OBIS
	if err := json.Unmarshal([]byte(jsonString(t, o)), &back); err != nil || back != o {
		t.Errorf("JSON round trip %v, %v", back, err)
	}
}

func TestDateTime(t *testing.T) {
	want := time.Date(2026, 12, 1, 9, 0, 5, 0, time.UTC)
	d, err := NewDateTime(want)
	if err != nil {
		t.Fatal(err)
	}
	if hx := d.Data().Bytes; !bytes.Equal(hx, mustHex(t, "07ea0c01ff090005008000ff")) {
		t.Errorf("NewDateTime = %x, want the RTDS form with day of week, deviation and status unspecified", hx)
	}
	if got, err := d.Time(); err != nil || !got.Equal(want) {
		t.Errorf("Time = %v, %v", got, err)
	}
	if !Now.IsNow() || !Never.IsNever() || Now.String() != "now" || Never.String() != "never" {
		t.Error("special values")
	}
	// Deviation: local 10:00 with deviation -60 (UTC+1) is 09:00 UTC.
	dev := DateTime{0x07, 0xea, 12, 1, 2, 10, 0, 0, 0, 0xff, 0xc4, 0}
	if got, err := dev.Time(); err != nil || !got.Equal(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("with deviation: %v, %v", got, err)
	}
	for name, bad := range map[string]DateTime{
		"year unspecified": {0xff, 0xff, 1, 1, 0xff, 0, 0, 0, 0, 0x80, 0, 0},
		"month 13":         {0x07, 0xea, 13, 1, 0xff, 0, 0, 0, 0, 0x80, 0, 0},
		"31 November":      {0x07, 0xea, 11, 31, 0xff, 0, 0, 0, 0, 0x80, 0, 0},
		"wrong weekday":    {0x07, 0xea, 12, 1, 1, 0, 0, 0, 0, 0x80, 0, 0},
		"hour 24":          {0x07, 0xea, 12, 1, 0xff, 24, 0, 0, 0, 0x80, 0, 0},
		"never":            Never,
	} {
		if _, err := bad.Time(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Time err = %v", name, err)
		}
	}
	var back DateTime
	if err := json.Unmarshal([]byte(jsonString(t, d)), &back); err != nil || back != d {
		t.Errorf("JSON round trip %v, %v", back, err)
	}
}

func TestScaled(t *testing.T) {
	for _, tt := range []struct {
		s    Scaled
		want string
	}{
		{Scaled{1534, -5}, "0.01534"},
		{Scaled{-12, -5}, "-0.00012"},
		{Scaled{12, 2}, "1200"},
		{Scaled{0, 3}, "0"},
		{Scaled{5, 0}, "5"},
		{Scaled{-1 << 63, -1}, "-922337203685477580.8"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v.String() = %s, want %s", tt.s, got, tt.want)
		}
	}
	if r := (Scaled{1534, -5}).Rat(); r.Cmp(big.NewRat(1534, 100000)) != 0 {
		t.Errorf("Rat = %v", r)
	}
	if (Scaled{15, -1}).Cmp(Scaled{150, -2}) != 0 || (Scaled{1, 0}).Cmp(Scaled{99, -2}) != 1 {
		t.Error("Cmp")
	}
	if f := (Scaled{1534, -5}).Float64(); f < 0.015339 || f > 0.015341 {
		t.Errorf("Float64 = %v", f)
	}
}

// TestAPDURoundTrip covers the parts of the APDUs no vector uses: the
// with-selection specifications, a present date-time and a response that
// repeats its request specifications.
func TestAPDURoundTrip(t *testing.T) {
	for _, tt := range []struct{ name, hex string }{
		{"get with selection", "d9200000010001040007" + "0000630100ff" + "02" + "01" + "0200" + "0100"},
		{"set with selection", "d9200000010001050007" + "0000630100ff" + "02" + "02" + "00" + "010600000001"},
		{"date-time", "0f200000010c07ea0c01ff000000008000ff" + "00"},
		{"response with request specs", "da2000000100" + "01" + "01" + "010046000060030aff03" + "01" + "1601" + "01" + "0100"},
		{"empty request", "d9200000010000" + "00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := mustHex(t, tt.hex)
			a, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if out, err := a.MarshalBinary(); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("MarshalBinary = %x, %v; want %x", out, err, in)
			}
			checkJSONRoundTrip(t, a, in)
		})
	}
	if _, err := (&APDU{}).MarshalBinary(); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty APDU: %v", err)
	}
	bad := &AccessRequest{Specs: []RequestSpec{{Kind: GetWithSelection}}}
	if _, err := bad.MarshalBinary(); !errors.Is(err, ErrInvalid) {
		t.Errorf("get-with-selection without parameters: %v", err)
	}
}
