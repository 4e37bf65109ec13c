package dlms

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

var (
	supplier = smki.MustParseEUI("90B3D51F30010001")
	esme     = smki.MustParseEUI("00DB0000000000A1")
	acb      = smki.MustParseEUI("90B3D51F30000002")
	ou       = smki.MustParseEUI("90B3D51F30090001")
)

func vectorPayload(t *testing.T, file string) ([]byte, uint64) {
	t.Helper()
	for _, v := range loadVectors(t).Vectors {
		if v.File == file {
			c, err := strconv.ParseUint(v.Counter, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mustHex(t, v.Payload), c
		}
	}
	t.Fatalf("no vector %s", file)
	return nil, 0
}

type constructed struct {
	Name      string `json:"name"`
	Code      uint16 `json:"code"`
	Payload   string `json:"payload"`
	Plaintext string `json:"plaintext"`
}

func constructedVector(t *testing.T, name string) constructed {
	t.Helper()
	b, err := os.ReadFile("testdata/constructed.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []constructed }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no constructed vector %s", name)
	return constructed{}
}

func encode(t *testing.T, a interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, b []byte) *APDU {
	t.Helper()
	a, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestBuildersReproduceVectors checks that the typed builders produce the
// payloads of the constructed vectors byte for byte.
func TestBuildersReproduceVectors(t *testing.T) {
	tests := []struct {
		file  string
		build func(invoke uint32) any
	}{
		{"01-ecs43-precommand.json", func(i uint32) any { return LoadSwitchRequest(i, ScriptOpenLoadSwitch) }},
		{"04-ecs43-response.json", func(i uint32) any { return NewActionResponse(i, 0) }},
		{"05-ecs17b-command.json", func(i uint32) any {
			return ImportEnergyRequest(i, NewProtectionParameters(0x000001a230f089c0, supplier, esme))
		}},
		{"07-urp-ecs50-command-oi18.json", func(i uint32) any { return CINRequest(i, []byte("4721")) }},
		{"08-urp-ecs50-response-oi18.json", func(i uint32) any { return NewSetResponse(i, 0) }},
		{"09-urp-ecs22b-command-oi-cert.json", func(i uint32) any {
			from := DateTime{0x07, 0xea, 12, 1, 0xff, 0, 0, 0, 0, 0x80, 0, 0xff}
			to := DateTime{0x07, 0xea, 12, 1, 0xff, 1, 30, 0, 0, 0x80, 0, 0xff}
			return HalfHourProfileRequest(i, from, to, NewProtectionParameters(0x000001a236694b80, ou, esme))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			want, counter := vectorPayload(t, tt.file)
			got := encode(t, tt.build(InvokeID(counter)).(interface{ MarshalBinary() ([]byte, error) }))
			if !bytes.Equal(got, want) {
				t.Errorf("built\n %x\nwant\n %x", got, want)
			}
		})
	}
}

func TestInvokeID(t *testing.T) {
	for _, tt := range []struct {
		counter uint64
		want    uint32
	}{
		{0x000001a230d51280, 0x20d51280},
		{0x151, 0x20000151},
		{0xFFFFFFFFFFFFFFFF, 0x20FFFFFF},
		{0, 0x20000000},
	} {
		if got := InvokeID(tt.counter); got != tt.want {
			t.Errorf("InvokeID(%#x) = %#x, want %#x", tt.counter, got, tt.want)
		}
	}
}

// TestSpecGetExample is the constructed GET of gbcs-payloads.md 4.1.
func TestSpecGetExample(t *testing.T) {
	want := mustHex(t, "D92000002A0001010046000060030AFF030100")
	got := encode(t, LoadSwitchStatusRequest(InvokeID(0x2A)))
	if !bytes.Equal(got, want) {
		t.Fatalf("built %x, want %x", got, want)
	}
	a := mustParse(t, want)
	if s := a.AccessRequest.Specs[0].String(); s != "get 70 0-0:96.3.10.255 attribute 3 (disconnect control: control_state)" {
		t.Errorf("spec String = %q", s)
	}
	d, err := Describe(CodeECS45, a)
	if err != nil {
		t.Fatal(err)
	}
	if d.UseCase != "ECS45 read status of load switch" || d.Kind != "access-request" {
		t.Errorf("Describe = %+v", d)
	}
}

func TestPlaintextReaders(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Vectors {
		if vec.Plaintext == "" {
			continue
		}
		pt := mustHex(t, vec.Plaintext)
		d, err := ParseData(pt)
		if err != nil {
			t.Fatal(err)
		}
		switch vec.Code {
		case CodeECS17b:
			e, err := ReadImportEnergy(d)
			if err != nil {
				t.Fatalf("ReadImportEnergy: %v", err)
			}
			want := ImportEnergy{ActiveImport: Register{Value: 0x0012d687, Unit: 30}, ReactiveImport: Register{Value: 0x00015bb4, Unit: 32}}
			if e.ActiveImport != want.ActiveImport || e.ReactiveImport != want.ReactiveImport || e.Twin != nil {
				t.Errorf("ReadImportEnergy = %+v, want %+v", e, want)
			}
			if got := encode(t, e.Data()); !bytes.Equal(got, pt) {
				t.Errorf("ImportEnergy.Data = %x, want %x", got, pt)
			}
			// The twin-element shape: one more double-long-unsigned.
			twin := uint32(7)
			e.Twin = &twin
			back, err := ReadImportEnergy(e.Data())
			if err != nil || back.Twin == nil || *back.Twin != 7 {
				t.Errorf("twin-element round trip = %+v, %v", back, err)
			}
		case CodeECS22b:
			p, err := ReadHalfHourProfile(d)
			if err != nil {
				t.Fatalf("ReadHalfHourProfile: %v", err)
			}
			if len(p.Records) != 4 || p.Records[0] != (ProfileRecord{Time: 0x32a0ca80, Value: 0xd2}) {
				t.Fatalf("records = %+v", p.Records)
			}
			for i := 1; i < len(p.Records); i++ {
				if p.Records[i].Time-p.Records[i-1].Time != 1800 {
					t.Errorf("records %d and %d are not 1800 s apart", i-1, i)
				}
			}
			if got := p.Records[0].At().UTC().Format("2006-01-02T15:04:05"); got != "2026-12-01T00:00:00" {
				t.Errorf("first record at %s", got)
			}
			if got := encode(t, p.Data()); !bytes.Equal(got, pt) {
				t.Errorf("HalfHourProfile.Data = %x, want %x", got, pt)
			}
		default:
			t.Fatalf("unexpected plaintext in %s", vec.File)
		}
	}
}

func TestDescribeVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.File, func(t *testing.T) {
			a := mustParse(t, mustHex(t, v.Payload))
			d, err := Describe(v.Code, a)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if d.Code != v.Code || d.UseCase == "" {
				t.Errorf("Describe = %+v", d)
			}
			if _, err := json.Marshal(d); err != nil {
				t.Errorf("json.Marshal(Description): %v", err)
			}
			switch val := d.Value.(type) {
			case LoadSwitchCommand:
				if val.Script != ScriptOpenLoadSwitch {
					t.Errorf("script %#x", val.Script)
				}
			case HexBytes:
				if string(val) != "4721" {
					t.Errorf("CIN %q", val)
				}
			case ProtectedAttributesRequest:
				if val.Protection.Recipient != esme {
					t.Errorf("recipient %s", val.Protection.Recipient)
				}
			case Outcome:
				if len(val.Results) != 1 || val.Results[0].Result != 0 {
					t.Errorf("results %+v", val.Results)
				}
			case FutureDatedAlert:
				want := FutureDatedAlert{AlertCode: AlertFutureDatedSuccess, Time: val.Time, MessageCode: CodeECS01a,
					Counter: 0x000001a1f8d3ea00, Class: 20, OBIS: MustParseOBIS("0-0:13.0.0.255"), Attribute: 10}
				if val != want {
					t.Errorf("future-dated alert %+v, want %+v", val, want)
				}
				if got := encode(t, val.Notification(a.InvokeID())); !bytes.Equal(got, mustHex(t, v.Payload)) {
					t.Errorf("FutureDatedAlert.Notification = %x", got)
				}
			default:
				t.Errorf("unexpected value %T", d.Value)
			}
		})
	}
}

func TestDescribeMismatch(t *testing.T) {
	open := mustParse(t, encode(t, LoadSwitchRequest(1, ScriptOpenLoadSwitch)))
	tests := []struct {
		name string
		code uint16
		a    *APDU
		want error
	}{
		{"wrong script", CodeECS42, open, ErrMismatch},
		{"request for another use case", CodeECS52, open, ErrMismatch},
		{"request where an alert is due", CodeECS68, open, ErrMismatch},
		{"unknown code", 0x0001, open, ErrUnknownUseCase},
		{"alert shape", CodeFutureDatedAlert, &APDU{DataNotification: Alert{Code: 0x8F66}.Notification(1)}, ErrMismatch},
		{"generic alert with extra", CodeGenericCriticalAlert, &APDU{DataNotification: Alert{Rest: []Data{Null()}}.Notification(1)}, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Describe(tt.code, tt.a)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Describe err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTariffConstructed(t *testing.T) {
	v := constructedVector(t, "ecs01a-request")
	want := mustHex(t, v.Payload)
	a := mustParse(t, want)
	checkJSONRoundTrip(t, a, want)
	tariff, err := ReadTariff(a.AccessRequest)
	if err != nil {
		t.Fatal(err)
	}
	if !tariff.Activation.IsNow() {
		t.Errorf("activation %s, want now", tariff.Activation)
	}
	var prices []string
	for _, p := range tariff.UnitPrices() {
		prices = append(prices, p.String())
	}
	if got := jsonString(t, prices); got != `["0.01534","0.02010","-0.00012"]` {
		t.Errorf("UnitPrices = %s", got)
	}
	if sc := tariff.StandingCharges(); len(sc) != 1 || sc[0].String() != "0.05500" || sc[0].Cmp(Scaled{Value: 55, Exp: -3}) != 0 {
		t.Errorf("StandingCharges = %v", sc)
	}
	if got := tariff.BlockThresholds[0]; len(got) != 2 || got[1] != 2000 {
		t.Errorf("thresholds of rate 1 = %v", got)
	}
	if got := encode(t, tariff.Request(a.AccessRequest.InvokeID)); !bytes.Equal(got, want) {
		t.Errorf("Tariff.Request\n %x\nwant\n %x", got, want)
	}
	// Through JSON: a vendor edits the tariff as JSON.
	var back Tariff
	if err := json.Unmarshal([]byte(jsonString(t, tariff)), &back); err != nil {
		t.Fatal(err)
	}
	if got := encode(t, back.Request(a.AccessRequest.InvokeID)); !bytes.Equal(got, want) {
		t.Errorf("Tariff after JSON\n %x\nwant\n %x", got, want)
	}
	// Differing activation times are refused.
	a.AccessRequest.Data[20] = Never.Data()
	if _, err := ReadTariff(a.AccessRequest); !errors.Is(err, ErrMismatch) {
		t.Errorf("ReadTariff with differing activations: %v", err)
	}

	r := constructedVector(t, "ecs01a-response")
	resp := make([]DataAccessResult, TariffSpecCount)
	if got := encode(t, NewSetResponse(a.AccessRequest.InvokeID, resp...)); !bytes.Equal(got, mustHex(t, r.Payload)) {
		t.Errorf("NewSetResponse = %x, want %s", got, r.Payload)
	}
	d, err := Describe(CodeECS01a, mustParse(t, mustHex(t, r.Payload)))
	if err != nil || len(d.Value.(Outcome).Results) != TariffSpecCount {
		t.Errorf("Describe(response) = %+v, %v", d, err)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBillingDataLogConstructed(t *testing.T) {
	v := constructedVector(t, "ecs68-alert")
	want := mustHex(t, v.Payload)
	a := mustParse(t, want)
	checkJSONRoundTrip(t, a, want)
	d, err := Describe(CodeECS68, a)
	if err != nil {
		t.Fatal(err)
	}
	alert := d.Value.(BillingDataLogAlert)
	if alert.AlertCode != AlertBillingDataLog || alert.Protection.Counter != 0x152 ||
		alert.Protection.Originator != esme || alert.Protection.Recipient != supplier {
		t.Errorf("alert %+v", alert)
	}
	if got := encode(t, alert.Notification(a.InvokeID())); !bytes.Equal(got, want) {
		t.Errorf("Notification = %x, want %x", got, want)
	}
	blocks := CipheredBlocks(a)
	if len(blocks) != 1 || !bytes.Equal(blocks[0].Bytes, alert.Ciphered) {
		t.Fatalf("CipheredBlocks = %v", blocks)
	}
	cb, err := ParseCipheredBlock(blocks[0].Bytes)
	if err != nil || cb.SecurityControl != 0x31 || len(cb.Ciphertext) != 40 || len(cb.Tag) != 12 {
		t.Errorf("ParseCipheredBlock = %+v, %v", cb, err)
	}
	if back, err := cb.AppendBinary(nil); err != nil || !bytes.Equal(back, blocks[0].Bytes) {
		t.Errorf("CipheredBlock.AppendBinary = %x, %v", back, err)
	}

	pt := mustHex(t, v.Plaintext)
	pd, err := ParseData(pt)
	if err != nil {
		t.Fatal(err)
	}
	log, err := ReadBillingDataLog(pd)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Records) != 1 || log.Records[0].Values[1] != 12345 || log.Records[0].Array48[47] != 147 || log.Records[0].Arrays8[3][7] != 3007 {
		t.Errorf("billing data log %+v", log)
	}
	if got := encode(t, log.Data()); !bytes.Equal(got, pt) {
		t.Errorf("BillingDataLog.Data = %x, want %x", got, pt)
	}

	// Replacing a block in place: the caller writes new bytes; the APDU
	// re-encodes with the new length.
	blocks[0].Bytes = append([]byte{0x31, 0, 0, 0, 0}, make([]byte, 300)...)
	re, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b2 := CipheredBlocks(mustParse(t, re))
	if len(b2) != 1 || len(b2[0].Bytes) != 305 {
		t.Errorf("after replacement: %d blocks", len(b2))
	}
}

func TestFutureDatedConstructed(t *testing.T) {
	v := constructedVector(t, "future-dated-failure")
	want := mustHex(t, v.Payload)
	a := mustParse(t, want)
	f, err := ReadFutureDatedAlert(a.DataNotification)
	if err != nil {
		t.Fatal(err)
	}
	wantAlert := FutureDatedAlert{AlertCode: AlertFutureDatedFailure, Time: f.Time, MessageCode: CodeECS01a,
		Counter: 0x1a2b3c4d5e, Class: 113, OBIS: MustParseOBIS("0-0:19.20.0.255"), Attribute: 7}
	if f != wantAlert {
		t.Errorf("alert %+v, want %+v", f, wantAlert)
	}
	if got := encode(t, f.Notification(a.InvokeID())); !bytes.Equal(got, want) {
		t.Errorf("Notification = %x, want %x", got, want)
	}
}

func TestSimpleUseCases(t *testing.T) {
	const inv = 0x20000001
	t.Run("ECS04b", func(t *testing.T) {
		q := ResetBalanceRequest(inv)
		a := mustParse(t, encode(t, q))
		if err := ReadResetBalanceRequest(a.AccessRequest); err != nil {
			t.Fatal(err)
		}
		want := mustHex(t, "D92000000100030300700000130A00FF020300700000130A01FF020300700000130A02FF02"+
			"03050000000005000000000500000000")
		if got := encode(t, q); !bytes.Equal(got, want) {
			t.Errorf("request %x, want %x", got, want)
		}
		resp := NewActionResponse(inv, 0, 1, 250)
		got := encode(t, resp)
		if want := mustHex(t, "DA200000010000030000000303000301"+"03FA"); !bytes.Equal(got, want) {
			t.Errorf("response %x, want %x", got, want)
		}
		res, err := ReadResults(mustParse(t, got).AccessResponse, Action, 3)
		if err != nil || res[2] != 250 {
			t.Errorf("ReadResults = %v, %v", res, err)
		}
		if ActionResult(res[2]).String() != "other-reason" || ActionResult(res[1]).String() != "hardware-fault" {
			t.Errorf("result names %s %s", ActionResult(res[2]), ActionResult(res[1]))
		}
	})
	t.Run("ECS45", func(t *testing.T) {
		got := encode(t, NewGetResponse(inv, Enum(1), 0))
		if want := mustHex(t, "DA200000010000011601010100"); !bytes.Equal(got, want) {
			t.Errorf("response %x, want %x", got, want)
		}
		st, res, err := ReadLoadSwitchStatus(mustParse(t, got).AccessResponse)
		if err != nil || res != 0 || st != 1 || st.String() != "connected" {
			t.Errorf("ReadLoadSwitchStatus = %v %v %v", st, res, err)
		}
		fail := encode(t, NewGetResponse(inv, Enum(1), 1))
		if want := mustHex(t, "DA2000000100000100010101"); !bytes.Equal(fail, want) {
			t.Errorf("failure %x, want %x", fail, want)
		}
		_, res, err = ReadLoadSwitchStatus(mustParse(t, fail).AccessResponse)
		if err != nil || res != 1 || res.String() != "hardware-fault" {
			t.Errorf("failure read %v %v", res, err)
		}
	})
	t.Run("ECS52", func(t *testing.T) {
		q := encode(t, FirmwareVersionRequest(inv))
		if want := mustHex(t, "D92000000100010100010000000201FF020100"); !bytes.Equal(q, want) {
			t.Errorf("request %x, want %x", q, want)
		}
		got := encode(t, NewGetResponse(inv, OctetString([]byte{1, 2, 3, 4}), 0))
		v, res, err := ReadFirmwareVersion(mustParse(t, got).AccessResponse)
		if err != nil || res != 0 || v.String() != "01020304" {
			t.Errorf("ReadFirmwareVersion = %v %v %v", v, res, err)
		}
	})
	t.Run("ECS42 ECS44", func(t *testing.T) {
		for code, script := range loadSwitchScripts {
			d, err := Describe(code, mustParse(t, encode(t, LoadSwitchRequest(inv, script))))
			if err != nil || d.Value.(LoadSwitchCommand).Script != script {
				t.Errorf("Describe(0x%04X) = %+v, %v", code, d, err)
			}
		}
	})
}

func TestAlerts(t *testing.T) {
	ts := DateTime{0x07, 0xea, 1, 1, 0xff, 0, 0, 0, 0, 0x80, 0, 0xff}
	hash := bytes.Repeat([]byte{0xab}, 32)
	fw := Alert{Code: 0x8F72, Time: ts, Rest: []Data{OctetString(hash)}}.Notification(1)
	if r, err := ReadFirmwareReceiptAlert(fw); err != nil || !bytes.Equal(r.Hash, hash) {
		t.Errorf("ReadFirmwareReceiptAlert = %+v, %v", r, err)
	}
	det := mustHex(t, "90B3D51F3001000100DB0000000000A1010000000000000123")
	fd := Alert{Code: 0x8F84, Time: ts, Rest: []Data{OctetString(det)}}.Notification(1)
	if r, err := ReadFailureToDeliverAlert(fd); err != nil || r.Originator != supplier || r.Target != esme || r.CRA != 1 || r.Counter != 0x123 {
		t.Errorf("ReadFailureToDeliverAlert = %+v, %v", r, err)
	}
	iw := Alert{Code: 0x81A0, Time: ts, Rest: []Data{OctetString([]byte{0, 6})}}.Notification(1)
	if r, err := ReadIntegrityWarningAlert(iw); err != nil || r.Warning != 6 || r.Warning.String() != "watchdog" {
		t.Errorf("ReadIntegrityWarningAlert = %+v, %v", r, err)
	}
	gen := Alert{Code: 0x8F30, Time: ts}.Notification(1)
	for _, code := range []uint16{CodeGenericCriticalAlert, CodeGenericNonCriticalAlert} {
		d, err := Describe(code, &APDU{DataNotification: gen})
		if err != nil || d.Value.(Alert).Code != 0x8F30 {
			t.Errorf("Describe generic = %+v, %v", d, err)
		}
	}
	if _, err := ReadFirmwareReceiptAlert(iw); !errors.Is(err, ErrMismatch) {
		t.Errorf("hash of 2 bytes accepted: %v", err)
	}
}
