package gbz

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestHandmadeRoundTrip decodes every hand-made vector, re-encodes it, and
// sends it through JSON and back (testdata/handmade.json).
func TestHandmadeRoundTrip(t *testing.T) {
	for name, h := range loadHandmade(t) {
		t.Run(name, func(t *testing.T) {
			b := unhex(t, h.Hex)
			switch h.Kind {
			case "payload":
				checkPayloadRoundTrip(t, b)
			case "alert":
				checkAlertRoundTrip(t, h.code(t), b)
			default:
				t.Fatalf("unknown kind %q", h.Kind)
			}
		})
	}
}

func utcOf(t *testing.T, y int, mo time.Month, d, h, mi int) UTC {
	t.Helper()
	u, err := NewUTC(time.Date(y, mo, d, h, mi, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// TestHandmadeUseCases checks the typed reading of the hand-made valve use
// case payloads, and that the typed builders produce exactly their bytes.
func TestHandmadeUseCases(t *testing.T) {
	hm := loadHandmade(t)
	issuer := utcOf(t, 2026, 12, 6, 8, 0)
	valveRsp := func(v ValveStatus) *Payload {
		p, err := NewValveStatusResponse(v)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		built   *Payload
		message string
		value   any
	}{
		{
			name:    "gcs39-command",
			built:   NewChangeSupply(ChangeSupply{IssuerEventID: issuer, ProposedSupplyStatus: SupplyArmed, SupplyControlBits: 1}),
			message: "command",
			value:   &ChangeSupply{IssuerEventID: issuer, ProposedSupplyStatus: SupplyArmed, SupplyControlBits: 1},
		},
		{
			name:    "gcs39-response",
			built:   NewSupplyStatusResponse(SupplyStatusResponse{IssuerEventID: issuer, SupplyStatus: SupplyArmed}),
			message: "response",
			value:   &SupplyStatusResponse{IssuerEventID: issuer, SupplyStatus: SupplyArmed},
		},
		{
			name:    "gcs32-error-response",
			built:   NewDefaultResponse(ClusterMetering, CmdChangeSupply, StatusHardwareFailure),
			message: "error response",
			value:   &DefaultResponse{Command: CmdChangeSupply, Status: StatusHardwareFailure},
		},
		{
			name:    "gcs33-command",
			built:   NewReadValveStatus(),
			message: "command",
			value:   &ReadAttributes{Attributes: []uint16{0x0205, 0x0014}},
		},
		{
			name:    "gcs33-response",
			built:   valveRsp(ValveStatus{BatteryLifeDays: ptr[uint16](100), SupplyStatus: ptr(SupplyOn)}),
			message: "response",
			value:   &ValveStatus{BatteryLifeDays: ptr[uint16](100), SupplyStatus: ptr(SupplyOn)},
		},
		{
			name:    "gcs33-error-response",
			built:   valveRsp(ValveStatus{BatteryLifeDays: ptr[uint16](100), SupplyReadStatus: StatusHardwareFailure}),
			message: "error response",
			value:   &ValveStatus{BatteryLifeDays: ptr[uint16](100), SupplyReadStatus: StatusHardwareFailure},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := hm[tt.name]
			if !ok {
				t.Fatalf("no hand-made vector %s", tt.name)
			}
			want := unhex(t, h.Hex)
			if got := mustMarshal(t, tt.built); !bytes.Equal(got, want) {
				t.Errorf("builder:\n got %x\nwant %x", got, want)
			}
			p := checkPayloadRoundTrip(t, want)
			u, err := Describe(h.code(t), p)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if u.Message != tt.message {
				t.Errorf("Describe message %q, want %q", u.Message, tt.message)
			}
			if !reflect.DeepEqual(u.Value, tt.value) {
				t.Errorf("Describe value %+v, want %+v", u.Value, tt.value)
			}
		})
	}
}

// TestHandmadeThreeComponents reads the three-component payload field by
// field and rebuilds it with NewResponse.
func TestHandmadeThreeComponents(t *testing.T) {
	b := unhex(t, loadHandmade(t)["three-components-one-encrypted"].Hex)
	p := checkPayloadRoundTrip(t, b)
	if len(p.Components) != 3 {
		t.Fatalf("%d components, want 3", len(p.Components))
	}
	c1 := p.Components[1]
	if !c1.Control.Encrypted() || !c1.Control.FromDateTime() || c1.Control.Last() {
		t.Errorf("component 1 control %s, want encrypted|from-date-time", c1.Control)
	}
	if c1.FromDateTime == nil || !c1.FromDateTime.Time().Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("component 1 from-date-time %v", c1.FromDateTime)
	}
	if c1.ZCL != (Header{FrameControl: 0x19, Sequence: 1, Command: 6}) {
		t.Errorf("component 1 ZCL header %+v", c1.ZCL)
	}
	blocks := p.CipheredBlocks()
	if len(blocks) != 1 {
		t.Fatalf("%d ciphered blocks, want 1", len(blocks))
	}
	cb, err := SplitCiphered(*blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	if cb.SecurityControl != SecurityControlEncrypted || cb.InvocationCounter != 0 ||
		!bytes.Equal(cb.Ciphertext, unhex(t, "a1b2c3d4")) || !bytes.Equal(cb.Tag, unhex(t, "000102030405060708090a0b")) {
		t.Errorf("SplitCiphered = %+v", cb)
	}
	if again, err := cb.AppendBinary(nil); err != nil || !bytes.Equal(again, *blocks[0]) {
		t.Errorf("CipheredBlock.AppendBinary = %x, %v; want %x", again, err, *blocks[0])
	}
	rr, err := ParseReadAttributesResponse(p.Components[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := &ReadAttributesResponse{Records: []AttributeRecord{{Attribute: 0, Status: StatusSuccess, Value: &Value{Type: TypeUint48, Number: 10000}}}}
	if !reflect.DeepEqual(rr, want) {
		t.Errorf("component 0 records %+v, want %+v", rr, want)
	}

	// Rebuild with NewResponse: control bits, frame counter and lengths
	// come out right from components given without them.
	from := utcOf(t, 2026, 12, 7, 0, 0)
	comps := []Component{
		{Control: ControlLast, Cluster: ClusterMetering, ZCL: Header{FrameControl: 0x08, Command: 0x01}, Payload: Hex(p.Components[0].Payload)},
		{Cluster: ClusterMetering, FromDateTime: &from, Encryption: &Encryption{FrameCounter: 9, Ciphered: Hex(*blocks[0])}, ZCL: Header{FrameControl: 0x19, Sequence: 1, Command: 6}},
		{Cluster: ClusterPrice, ZCL: Header{FrameControl: 0x08, Sequence: 2, Command: CmdDefaultResponse}, Payload: Hex{0x00, 0x81}},
	}
	built := NewResponse(comps...)
	if got := mustMarshal(t, built); !bytes.Equal(got, b) {
		t.Errorf("NewResponse:\n got %x\nwant %x", got, b)
	}
	if comps[0].Control != ControlLast || comps[1].Encryption.FrameCounter != 9 {
		t.Error("NewResponse changed its arguments")
	}
	// NewCommand renumbers the sequence numbers by index.
	for i, c := range NewCommand(Component{ZCL: Header{Sequence: 7}}, Component{ZCL: Header{Sequence: 7}}).Components {
		if int(c.ZCL.Sequence) != i {
			t.Errorf("NewCommand component %d sequence %d", i, c.ZCL.Sequence)
		}
	}
}

// TestCipheredBlocksReplace replaces a ciphered block through the pointer
// CipheredBlocks returns; the encoder recomputes both lengths.
func TestCipheredBlocksReplace(t *testing.T) {
	b := unhex(t, loadHandmade(t)["gcs53-alert"].Hex)
	a := checkAlertRoundTrip(t, CodeBillingDataLog, b)
	p := &Payload{Components: a.Components}
	blocks := p.CipheredBlocks()
	if len(blocks) != 1 {
		t.Fatalf("%d blocks", len(blocks))
	}
	*blocks[0] = append(Hex{0x31, 0, 0, 0, 0, 0xEE}, make([]byte, TagLen)...)
	out, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "0109 01 8f1c 32a8b380 | 03 0702 0019 | 00 00 | 19 00 06 | 0012 | 3100000000ee 000000000000000000000000")
	if !bytes.Equal(out, want) {
		t.Errorf("after replacing the block:\n got %x\nwant %x", out, want)
	}
}

// TestHandmadeAlerts checks the typed fields of the hand-made alerts and the
// alert builders.
func TestHandmadeAlerts(t *testing.T) {
	hm := loadHandmade(t)

	fd := checkAlertRoundTrip(t, CodeFutureDatedGBZ, unhex(t, hm["future-dated-alert"].Hex))
	wantFD := NewFutureDatedAlert(0x8F66, utcOf(t, 2026, 12, 8, 12, 30), FutureDated{
		MessageCode: CodeGCS32, OriginatorCounter: 0x000001A246812B00, Cluster: ClusterMetering, FrameControl: 0x01, Command: CmdChangeSupply,
	})
	if !reflect.DeepEqual(fd, wantFD) {
		t.Errorf("future-dated alert %+v, want %+v", fd, wantFD)
	}
	if got := mustMarshal(t, wantFD); !bytes.Equal(got, unhex(t, hm["future-dated-alert"].Hex)) {
		t.Errorf("NewFutureDatedAlert: %x", got)
	}

	iw := checkAlertRoundTrip(t, CodeIntegrityWarningGBZ, unhex(t, hm["integrity-warning-alert"].Hex))
	if iw.AlertCode != 0x81A0 || iw.IntegrityWarning == nil || *iw.IntegrityWarning != 6 {
		t.Errorf("integrity warning alert %+v", iw)
	}

	g := checkAlertRoundTrip(t, CodeGenericNonCritical, unhex(t, hm["generic-alert"].Hex))
	if g.AlertCode != 0x810E || g.Components != nil || !g.Timestamp.Time().Equal(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("generic alert %+v", g)
	}

	fw := checkAlertRoundTrip(t, CodeFirmwareReceiptGSME, unhex(t, hm["firmware-receipt-alert"].Hex))
	if len(fw.FirmwareHash) != 32 || fw.FirmwareHash[31] != 0x1F {
		t.Errorf("firmware receipt hash %x", fw.FirmwareHash)
	}

	gcs53 := unhex(t, hm["gcs53-alert"].Hex)
	a := checkAlertRoundTrip(t, CodeBillingDataLog, gcs53)
	built := NewBillingDataLogAlert(0x8F1C, utcOf(t, 2026, 12, 7, 0, 0), 0x06, a.Components[0].Encryption.Ciphered)
	if got := mustMarshal(t, built); !bytes.Equal(got, gcs53) {
		t.Errorf("NewBillingDataLogAlert:\n got %x\nwant %x", got, gcs53)
	}
	// The same bytes are not a plain payload: the alert header is in the way.
	if _, err := Parse(gcs53); !errors.Is(err, ErrMalformed) {
		t.Errorf("Parse of an alert = %v, want ErrMalformed", err)
	}
}
