package asn

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// handmade is one entry of testdata/handmade.json; see the file's "source"
// and each entry's "note" for how it was made.
type handmade struct {
	Name string `json:"name"`
	Code uint16 `json:"code"`
	CRA  CRA    `json:"cra"`
	Hex  string `json:"hex"`
	Note string `json:"note"`
}

func loadHandmade(tb testing.TB) map[string]handmade {
	tb.Helper()
	b, err := os.ReadFile("testdata/handmade.json")
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Vectors []handmade `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	m := map[string]handmade{}
	for _, v := range f.Vectors {
		m[v.Name] = v
	}
	return m
}

func TestHandmadeRoundTrip(t *testing.T) {
	all := loadHandmade(t)
	if len(all) < 30 {
		t.Fatalf("only %d hand-made vectors", len(all))
	}
	for name, v := range all {
		t.Run(name, func(t *testing.T) { checkRoundTrip(t, v.Code, v.CRA, unhex(t, v.Hex)) })
	}
}

func gt(tb testing.TB, s string) GeneralizedTime {
	tb.Helper()
	var g GeneralizedTime
	if err := g.UnmarshalText([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	return g
}

func eid(tb testing.TB, s string) EntityID {
	tb.Helper()
	var e EntityID
	if err := e.UnmarshalText([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	return e
}

// TestHandmadeFromGo builds hand-made vectors from typed values and checks
// the bytes, and that decoding gives back the typed value.
func TestHandmadeFromGo(t *testing.T) {
	all := loadHandmade(t)
	vec24 := vectorByPrefix(t, "24").DecodedPayload
	kaCert := Certificate{rawAt(t, vec24, "replacements", 0, "replacementCertificate")}
	lc := eid(t, "90b3d51f30010008")
	no := netop
	mode2Outcome := func() *ExecutionOutcome {
		return &ExecutionOutcome{
			AuthorisingRemotePartySeqNumber: 7, CredentialsReplacementMode: SupplierBySupplier,
			RemotePartySeqNumberChanges: []RemotePartySeqNumberChange{},
			ReplacementOutcomes: []ReplacementOutcome{
				{Cell(RoleSupplier, DigitalSignature, CellManagement), StatusSuccess,
					supplier, keyID(t, "469baf4d9c773750"), supplier, keyID(t, "41240b3af4e70be0")},
				{Cell(RoleSupplier, KeyAgreement, CellManagement), StatusSuccess,
					supplier, keyID(t, "4f300b539053c6e1"), supplier, keyID(t, "4f89556085e0852e")},
				{Cell(RoleSupplier, KeyAgreement, CellPrePaymentTopUp), StatusBadCertificate,
					supplier, keyID(t, "4e6bd99550d5bf5f"), supplier, keyID(t, "4e6bd99550d5bf5f")},
			},
		}
	}
	o81 := mode2Outcome()
	o81.DERLengths = []string{self, "replacementOutcomes"}
	tests := map[string]Payload{
		"cs02b-0102-response-8200": &UpdateSecurityCredentialsResponse{ExecutionOutcome: mode2Outcome()},
		"cs02b-0102-response-81": &UpdateSecurityCredentialsResponse{ExecutionOutcome: o81,
			DERLengths: []string{self}},
		"cs02b-alert-00cb": &UpdateSecurityCredentialsAlert{
			AlertCode: AlertFutureDatedSuccess, ExecutionDateTime: gt(t, "20260301120000Z"),
			ExecutionOutcome: ExecutionOutcome{
				AuthorisingRemotePartySeqNumber: 40, CredentialsReplacementMode: NetworkOperatorByNetworkOperator,
				RemotePartySeqNumberChanges: []RemotePartySeqNumberChange{},
				ReplacementOutcomes: []ReplacementOutcome{
					{Cell(RoleNetworkOperator, DigitalSignature, CellManagement), StatusSuccess,
						no, keyID(t, "4c0f213a827702dd"), eid(t, "90b3d51f30020002"), keyID(t, "4a0000000000a001")},
					{Cell(RoleNetworkOperator, KeyAgreement, CellManagement), StatusSuccess,
						no, keyID(t, "44fc84f1e3bd5280"), eid(t, "90b3d51f30020002"), keyID(t, "4a0000000000a002")},
				}}},
		"cs02g-alert-0124": &UpdateSecurityCredentialsAlert{
			AlertCode: AlertFutureDatedFailure, ExecutionDateTime: gt(t, "20261231235900Z"),
			ExecutionOutcome: ExecutionOutcome{
				AuthorisingRemotePartySeqNumber: 9002, CredentialsReplacementMode: LoadControllerByLoadController,
				RemotePartySeqNumberChanges: []RemotePartySeqNumberChange{{RemotePartyRole: RoleLoadController, FloorSeqNumber: 3}},
				ReplacementOutcomes: []ReplacementOutcome{{Cell(RoleLoadController, DigitalSignature, CellManagement),
					StatusTrustAnchorNotFound, lc, keyID(t, "4b00000000000001"), lc, keyID(t, "4b00000000000001")}}}},
		"cs02e-command": &ProvideDeviceCertificateCommand{KeyUsage: ka},
		"cs02e-response-certificate": &ProvideDeviceCertificateResponse{
			Certificate: &Certificate{unhex(t, vectorByPrefix(t, "19").PayloadHex)}},
		"cs02e-response-code": &ProvideDeviceCertificateResponse{ResponseCode: ptr(ProvideResponseCode(2))},
		"cs02c-response-code": &IssueSecurityCredentialsResponse{ResponseCode: ptr(IssueResponseCode(3))},
		"cs03b-join-command": &JoinDeviceCommand{JoinMethodAndRole: 2, EntityID: eid(t, "00db0000000000a2"),
			DeviceType: 0, Certificate: &kaCert},
		"cs03a1-join-command":  &JoinDeviceCommand{EntityID: eid(t, "00db0000000000a1"), DeviceType: 1},
		"cs03-join-response":   ptr(JoinDeviceResponse(11)),
		"cs04-unjoin-command":  &UnjoinDeviceCommand{EntityID: eid(t, "00db0000000000a2")},
		"cs04-unjoin-response": ptr(UnjoinDeviceResponse(1)),
		"cs06-alert-00ca": &ActivateFirmwareAlert{AlertCode: AlertFutureDatedSuccess,
			ExecutionDateTime: gt(t, "20260401000005Z"), OriginatorCounter: 0x19A00000010,
			ExecutionOutcome: ActivateFirmwareOutcome{ResponseCode: 2, FirmwareVersion: Octets{1, 2, 3, 4}}},
		"cs06-command": &ActivateFirmwareCommand{ManufacturerImageHash: unhex(t,
			"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"),
			OriginatorCounter: 0x8000000000000001, ExecutionDateTime: ptr(gt(t, "20260401000000Z"))},
		"cs06-response-accepted": &ActivateFirmwareResponse{CommandAccepted: true},
		"cs08-alert": &CS08Alert{AlertCode: 0x8F8B, ExecutionDateTime: gt(t, "20260501083000Z"),
			FirmwareVersion: Octets{0, 1, 0, 7}, ActivateImage: 1},
		"gcs28-command": &SetTimeCommand{ValidityIntervalStart: NewGeneralizedTime(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)),
			ValidityIntervalEnd: NewGeneralizedTime(time.Date(2026, 6, 1, 0, 10, 0, 0, time.UTC))},
		"gcs28-response": &SetTimeResponse{DeviceTime: gt(t, "20260601000007Z"), DeviceTimeStatus: 0},
		"gcs62-alert": func() Payload {
			a := &GpfDeviceLogBackupAlert{AlertCode: 0x8F35, BackupDateTime: gt(t, "20260701000000Z"),
				DeviceLogEntries: []DeviceLogEntry{}}
			for i := 1; i <= 10; i++ {
				a.DeviceLogEntries = append(a.DeviceLogEntries, DeviceLogEntry{
					DeviceID: EntityID{0x00, 0xDB, 0, 0, 0, 0, 0, byte(i)}, DeviceType: DeviceType(i % 7)})
			}
			return a
		}(),
		"cs02b-0102-command-future": &UpdateSecurityCredentialsCommand{
			AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
				CredentialsReplacementMode: SupplierBySupplier,
				ApplyTimeBasedCPVChecks:    ptr(CPVDisapply),
				AuthorisingRemotePartyTACellIdentifier: &TrustAnchorCellIdentifier{RemotePartyRole: RoleSupplier,
					KeyUsage: ds, CellUsageExplicit: true},
				AuthorisingRemotePartySeqNumber:        1500,
				NewRemotePartyFloorSeqNumber:           ptr(SeqNumber(0)),
				NewRemotePartySpecialistFloorSeqNumber: []SpecialistSeqNumber{{}},
			},
			Replacements: []TrustAnchorReplacement{{ReplacementCertificate: kaCert,
				TargetTrustAnchorCell: Cell(RoleSupplier, KeyAgreement, CellPrePaymentTopUp)}},
			CertificationPathCertificates: []Certificate{},
			ExecutionDateTime:             ptr(gt(t, "20260315000000Z")),
		},
		"cs02b-0107-command-cancel": &UpdateSecurityCredentialsCommand{
			AuthorisingRemotePartyControl: AuthorisingRemotePartyControl{
				CredentialsReplacementMode:             SupplierByTransCoS,
				AuthorisingRemotePartyTACellIdentifier: ptr(Cell(RoleTransitionalCoS, DigitalSignature, CellManagement)),
				AuthorisingRemotePartySeqNumber:        13,
			},
			Replacements: []TrustAnchorReplacement{{ReplacementCertificate: kaCert,
				TargetTrustAnchorCell: Cell(RoleSupplier, DigitalSignature, CellManagement)}},
			CertificationPathCertificates: []Certificate{kaCert},
			ExecutionDateTime:             ptr(CancelTime()),
		},
		"cs02b-0104-response-future": &UpdateSecurityCredentialsResponse{},
		"cs02a-command-role-200": &ProvideSecurityCredentialDetailsCommand{
			AuthorisingRemotePartyTACellIdentifier: Cell(RoleAccessControlBroker, KeyAgreement, CellManagement),
			RemotePartyRolesCredentialsRequired:    []RemotePartyRole{200, -1}},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			v, ok := all[name]
			if !ok {
				t.Fatalf("no hand-made vector %s", name)
			}
			want := unhex(t, v.Hex)
			got, err := Encode(p)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("built from Go values:\nhave %x\nwant %x", got, want)
			}
			d, err := Decode(v.Code, v.CRA, want)
			if err != nil {
				t.Fatal(err)
			}
			// Decoding yields present, empty lists where Go values may
			// leave a mandatory list nil; compare through the encoding and
			// the JSON of both.
			dj, _ := json.Marshal(d)
			pj, _ := json.Marshal(p)
			if !bytes.Equal(normaliseNulls(dj), normaliseNulls(pj)) {
				t.Errorf("decoded value differs from the typed value:\nhave %s\nwant %s", dj, pj)
			}
		})
	}
}

// normaliseNulls makes a nil mandatory list (null) and an empty one ([])
// compare equal.
func normaliseNulls(b []byte) []byte { return bytes.ReplaceAll(b, []byte("null"), []byte("[]")) }

func TestCancelAndTimes(t *testing.T) {
	v := loadHandmade(t)["cs02b-0107-command-cancel"]
	c, err := Parse[UpdateSecurityCredentialsCommand](unhex(t, v.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExecutionDateTime == nil || !c.ExecutionDateTime.IsCancel() {
		t.Fatalf("executionDateTime %v, want the cancel value", c.ExecutionDateTime)
	}
	if got := c.ExecutionDateTime.Time(); !got.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("Time() = %v", got)
	}
	f := loadHandmade(t)["cs02b-0102-command-future"]
	c, err = Parse[UpdateSecurityCredentialsCommand](unhex(t, f.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExecutionDateTime.IsCancel() || c.ExecutionDateTime.String() != "20260315000000Z" {
		t.Errorf("executionDateTime %v", c.ExecutionDateTime)
	}
	if !c.AuthorisingRemotePartyControl.AuthorisingRemotePartyTACellIdentifier.CellUsageExplicit {
		t.Error("explicit DEFAULT cellUsage not recorded")
	}
	g := NewGeneralizedTime(time.Date(2026, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600)))
	if g.String() != "20260102020405Z" {
		t.Errorf("NewGeneralizedTime: %v", g)
	}
}

func TestModeCodes(t *testing.T) {
	for mode := CredentialsReplacementMode(0); mode <= 11; mode++ {
		code, ok := mode.MessageCode()
		if !ok {
			t.Fatalf("mode %d has no code", mode)
		}
		want := uint16(0x0100) + uint16(mode)
		switch mode {
		case 10:
			want = 0x0125
		case 11:
			want = 0x0126
		}
		if code != want {
			t.Errorf("mode %v: code 0x%04X, want 0x%04X", mode, code, want)
		}
		back, ok := ModeOfMessageCode(code)
		if !ok || back != mode {
			t.Errorf("ModeOfMessageCode(0x%04X) = %v, %v", code, back, ok)
		}
		a, _ := mode.AlertMessageCode()
		if wantA := uint16(0x00CB); mode >= 10 && a != 0x0124 || mode < 10 && a != wantA {
			t.Errorf("mode %v: alert code 0x%04X", mode, a)
		}
	}
	for _, bad := range []CredentialsReplacementMode{-1, 12, 127} {
		if _, ok := bad.MessageCode(); ok {
			t.Errorf("mode %d has a message code", bad)
		}
	}
	for _, bad := range []uint16{0x00FF, 0x010A, 0x0124, 0x0127} {
		if _, ok := ModeOfMessageCode(bad); ok {
			t.Errorf("0x%04X has a mode", bad)
		}
	}
}

func TestCS02bSemantics(t *testing.T) {
	cmd, err := Parse[UpdateSecurityCredentialsCommand](unhex(t, vectorByPrefix(t, "11").PayloadHex))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.CheckMessageCode(0x0107); err != nil {
		t.Error(err)
	}
	if err := cmd.CheckMessageCode(0x0102); !errorsIs(err, ErrInvalid) {
		t.Errorf("CheckMessageCode(0x0102) = %v", err)
	}
	resp, err := Parse[UpdateSecurityCredentialsResponse](unhex(t, vectorByPrefix(t, "12").PayloadHex))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.CheckOutcome(resp.ExecutionOutcome); err != nil {
		t.Errorf("vector 12 does not match vector 11: %v", err)
	}
	other := *resp.ExecutionOutcome
	other.AuthorisingRemotePartySeqNumber++
	if err := cmd.CheckOutcome(&other); !errorsIs(err, ErrInvalid) {
		t.Errorf("CheckOutcome with another seq number = %v", err)
	}
	other = *resp.ExecutionOutcome
	other.CredentialsReplacementMode = SupplierBySupplier
	if err := cmd.CheckOutcome(&other); !errorsIs(err, ErrInvalid) {
		t.Errorf("CheckOutcome with another mode = %v", err)
	}
	o := resp.ExecutionOutcome.ReplacementOutcomes[1]
	eui, kid := o.Replacing()
	if eui != gaining || kid.String() != "4f89556085e0852e" || !o.Replaced() {
		t.Errorf("Replacing() = %v %v", eui, kid)
	}
	if eui, _ := o.Existing(); eui != supplier {
		t.Errorf("Existing() = %v", eui)
	}
	if !o.AffectedTrustAnchorCell.Same(cmd.Replacements[1].TargetTrustAnchorCell) {
		t.Errorf("cell %v is not %v", o.AffectedTrustAnchorCell, cmd.Replacements[1].TargetTrustAnchorCell)
	}
	if o.AffectedTrustAnchorCell.KeyUsage.X509() != KeyUsageFromX509(o.AffectedTrustAnchorCell.KeyUsage.X509()).X509() ||
		!o.AffectedTrustAnchorCell.KeyUsage.Only(KeyAgreement) {
		t.Errorf("key usage %v", o.AffectedTrustAnchorCell.KeyUsage)
	}
	c, err := cmd.Replacements[0].ReplacementCertificate.Parse()
	if err != nil {
		t.Fatalf("replacement certificate: %v", err)
	}
	if c.EUI != eui.EUI() {
		t.Errorf("replacement certificate subject %v, outcome %v", c.EUI, eui)
	}
	d, err := Parse[UpdateDeviceCertificateCommand](unhex(t, vectorByPrefix(t, "19").PayloadHex))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.X509(); err != nil {
		t.Errorf("device certificate: %v", err)
	}
	if !reflect.DeepEqual(cmd.NewExecutionOutcome().RemotePartySeqNumberChanges, []RemotePartySeqNumberChange{}) {
		t.Error("NewExecutionOutcome lists are not empty")
	}
}
