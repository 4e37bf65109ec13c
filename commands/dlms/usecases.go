package dlms

import "fmt"

// Message codes of the use cases this package has typed readers for
// (gbcs-payloads.md 4.5, 6.2 and table E).
const (
	CodeECS01a                  = 0x0019 // Set Tariff and Price on ESME
	CodeECS17b                  = 0x0027 // Read ESME Energy Registers (Import Energy)
	CodeECS22b                  = 0x0037 // Read Electricity Half Hour Profile Data (active import)
	CodeECS42                   = 0x004F // Remotely Close the Load Switch
	CodeECS43                   = 0x0050 // Remotely Open the Load Switch
	CodeECS44                   = 0x0051 // Arm the Load Switch
	CodeECS45                   = 0x0052 // Read Status of Load Switch
	CodeECS50                   = 0x0058 // Send CIN to ESME
	CodeECS52                   = 0x0059 // Read ESME/Comms Hub Firmware Version
	CodeECS68                   = 0x0061 // ESME Critical Sensitive Alert (Billing Data Log)
	CodeECS04b                  = 0x00B3 // Reset Meter Balance on the ESME
	CodeFutureDatedAlert        = 0x00CC // future-dated execution outcome (DLMS)
	CodeFirmwareReceiptAlert    = 0x00CE // firmware distribution receipt (ESME)
	CodeFailureToDeliverAlert   = 0x00D5 // failure to deliver (8F84)
	CodeIntegrityWarningAlert   = 0x00F0 // meter integrity warning (81A0)
	CodeGenericCriticalAlert    = 0x1000 // generic critical alert
	CodeGenericNonCriticalAlert = 0x1001 // generic non-critical alert
)

// COSEM descriptors of the use cases (gbcs-payloads.md 4.5).
var (
	loadSwitchExecute = RequestSpec{Kind: Action, Class: 9, OBIS: MustParseOBIS("0-0:10.0.106.255"), ID: 1}
	loadSwitchState   = RequestSpec{Kind: Get, Class: 70, OBIS: MustParseOBIS("0-0:96.3.10.255"), ID: 3}
	cinValue          = RequestSpec{Kind: Set, Class: 1, OBIS: MustParseOBIS("0-3:96.13.1.255"), ID: 2}
	firmwareVersion   = RequestSpec{Kind: Get, Class: 1, OBIS: MustParseOBIS("0-0:0.2.1.255"), ID: 2}
	importEnergyRead  = RequestSpec{Kind: Action, Class: 30, OBIS: MustParseOBIS("0-0:43.2.8.255"), ID: 1}
	profileRead       = RequestSpec{Kind: Action, Class: 30, OBIS: MustParseOBIS("0-0:43.2.7.255"), ID: 1}
	importEnergyObj   = ProtectedObject{Class: 1, OBIS: MustParseOBIS("0-0:94.44.34.10"), Attribute: 2}
	profileBufferObj  = ProtectedObject{Class: 7, OBIS: MustParseOBIS("0-0:99.1.0.255"), Attribute: 2, Restriction: RestrictionByDate}
)

// resetBalanceSpecs are the three ECS04b actions: class 112 method 2.
var resetBalanceSpecs = []RequestSpec{
	{Kind: Action, Class: 112, OBIS: MustParseOBIS("0-0:19.10.0.255"), ID: 2},
	{Kind: Action, Class: 112, OBIS: MustParseOBIS("0-0:19.10.1.255"), ID: 2},
	{Kind: Action, Class: 112, OBIS: MustParseOBIS("0-0:19.10.2.255"), ID: 2},
}

// sameDescriptor reports whether s has the kind and COSEM descriptor of
// want (not the selector).
func sameDescriptor(s, want RequestSpec) bool {
	return s.Kind == want.Kind && s.Class == want.Class && s.OBIS == want.OBIS && s.ID == want.ID &&
		s.Parameters == nil && s.Selector == 0
}

// checkSpecs checks that q has exactly the descriptors want, in order, and
// one Data per descriptor.
func checkSpecs(q *AccessRequest, want []RequestSpec) error {
	if q == nil {
		return mismatch("not an access-request")
	}
	if len(q.Specs) != len(want) || len(q.Data) != len(want) {
		return mismatch("access-request with %d specifications and %d values, want %d of each", len(q.Specs), len(q.Data), len(want))
	}
	for i, w := range want {
		if !sameDescriptor(q.Specs[i], w) {
			return mismatch("specification %d is %s, want %s", i, q.Specs[i], w)
		}
	}
	return nil
}

// singleRequest builds a request of one specification and its value.
func singleRequest(invokeID uint32, spec RequestSpec, v Data) *AccessRequest {
	return &AccessRequest{InvokeID: invokeID, Specs: []RequestSpec{spec}, Data: []Data{v}}
}

// NewSetResponse returns the ACCESS-Response to n set specifications: n
// null-data values and one set result each.
func NewSetResponse(invokeID uint32, results ...DataAccessResult) *AccessResponse {
	s := &AccessResponse{InvokeID: invokeID, Data: make([]Data, len(results))}
	for _, r := range results {
		s.Results = append(s.Results, ResponseSpec{Kind: Set, Result: uint8(r)})
	}
	return s
}

// NewActionResponse returns the ACCESS-Response to actions without a
// return value: null-data values and one action result each.
func NewActionResponse(invokeID uint32, results ...ActionResult) *AccessResponse {
	s := &AccessResponse{InvokeID: invokeID, Data: make([]Data, len(results))}
	for _, r := range results {
		s.Results = append(s.Results, ResponseSpec{Kind: Action, Result: uint8(r)})
	}
	return s
}

// NewGetResponse returns the ACCESS-Response to one get: the value and
// result success, or, when result is not success, null-data and result.
func NewGetResponse(invokeID uint32, value Data, result DataAccessResult) *AccessResponse {
	if result != 0 {
		value = Null()
	}
	return &AccessResponse{InvokeID: invokeID, Data: []Data{value}, Results: []ResponseSpec{{Kind: Get, Result: uint8(result)}}}
}

// ReadResults checks that s answers n specifications of kind with results
// only (every value null-data) and returns the result codes.
func ReadResults(s *AccessResponse, kind SpecKind, n int) ([]uint8, error) {
	if s == nil {
		return nil, mismatch("not an access-response")
	}
	if len(s.Results) != n || len(s.Data) != n {
		return nil, mismatch("access-response with %d values and %d results, want %d of each", len(s.Data), len(s.Results), n)
	}
	out := make([]uint8, n)
	for i, r := range s.Results {
		if r.Kind != kind {
			return nil, mismatch("result %d is a %s result, want %s", i, r.Kind, kind)
		}
		if s.Data[i].Tag != TagNull {
			return nil, mismatch("value %d is %s, want null-data", i, describeData(s.Data[i]))
		}
		out[i] = r.Result
	}
	return out, nil
}

// ReadGetResponse reads the answer to one get: the value (null-data on
// failure) and the result.
func ReadGetResponse(s *AccessResponse) (Data, DataAccessResult, error) {
	if s == nil {
		return Data{}, 0, mismatch("not an access-response")
	}
	if len(s.Results) != 1 || len(s.Data) != 1 || s.Results[0].Kind != Get {
		return Data{}, 0, mismatch("want one value and one get result, have %d values and %d results", len(s.Data), len(s.Results))
	}
	res := DataAccessResult(s.Results[0].Result)
	if res != 0 && s.Data[0].Tag != TagNull {
		return Data{}, 0, mismatch("failed get (%s) with value %s, want null-data", res, describeData(s.Data[0]))
	}
	return s.Data[0], res, nil
}

// Load switch scripts of ECS42, ECS43 and ECS44 (gbcs-payloads.md 4.5).
const (
	ScriptCloseLoadSwitch uint16 = 0x0033 // ECS42
	ScriptOpenLoadSwitch  uint16 = 0x0034 // ECS43
	ScriptArmLoadSwitch   uint16 = 0x0036 // ECS44
)

// LoadSwitchRequest returns the ECS42/43/44 request: one action, script
// table 0-0:10.0.106.255 method 1 (execute), parameter long-unsigned
// script.
func LoadSwitchRequest(invokeID uint32, script uint16) *AccessRequest {
	return singleRequest(invokeID, loadSwitchExecute, LongUnsigned(script))
}

// ReadLoadSwitchRequest returns the script id of an ECS42/43/44 request.
func ReadLoadSwitchRequest(q *AccessRequest) (uint16, error) {
	if err := checkSpecs(q, []RequestSpec{loadSwitchExecute}); err != nil {
		return 0, err
	}
	return u16(q.Data[0], TagLongUnsigned, "script id")
}

// ControlState is the control_state of the disconnect control object.
type ControlState uint8

// String returns the IEC 62056-6-2 name of the state.
func (c ControlState) String() string {
	switch c {
	case 0:
		return "disconnected"
	case 1:
		return "connected"
	case 2:
		return "ready_for_reconnection"
	}
	return fmt.Sprintf("control state %d", uint8(c))
}

// LoadSwitchStatusRequest returns the ECS45 request: get class 70
// 0-0:96.3.10.255 attribute 3.
func LoadSwitchStatusRequest(invokeID uint32) *AccessRequest {
	return singleRequest(invokeID, loadSwitchState, Null())
}

// ReadLoadSwitchStatus reads an ECS45 response: the control state (an
// enum) when result is success.
func ReadLoadSwitchStatus(s *AccessResponse) (ControlState, DataAccessResult, error) {
	v, res, err := ReadGetResponse(s)
	if err != nil || res != 0 {
		return 0, res, err
	}
	st, err := u8(v, TagEnum, "control state")
	return ControlState(st), res, err
}

// CINRequest returns the ECS50 request: set class 1 0-3:96.13.1.255
// attribute 2 to the octet-string cin.
func CINRequest(invokeID uint32, cin []byte) *AccessRequest {
	return singleRequest(invokeID, cinValue, OctetString(cin))
}

// ReadCINRequest returns the CIN of an ECS50 request.
func ReadCINRequest(q *AccessRequest) (HexBytes, error) {
	if err := checkSpecs(q, []RequestSpec{cinValue}); err != nil {
		return nil, err
	}
	return octets(q.Data[0], -1, "CIN")
}

// FirmwareVersionRequest returns the ECS52 request: get class 1
// 0-0:0.2.1.255 attribute 2.
func FirmwareVersionRequest(invokeID uint32) *AccessRequest {
	return singleRequest(invokeID, firmwareVersion, Null())
}

// ReadFirmwareVersion reads an ECS52 response: the version octet-string
// when result is success.
func ReadFirmwareVersion(s *AccessResponse) (HexBytes, DataAccessResult, error) {
	v, res, err := ReadGetResponse(s)
	if err != nil || res != 0 {
		return nil, res, err
	}
	b, err := octets(v, -1, "firmware version")
	return b, res, err
}

// ResetBalanceRequest returns the ECS04b request: three actions, class 112
// method 2 on 0-0:19.10.0.255, 0-0:19.10.1.255 and 0-0:19.10.2.255, each
// with parameter double-long 0.
func ResetBalanceRequest(invokeID uint32) *AccessRequest {
	q := &AccessRequest{InvokeID: invokeID, Specs: append([]RequestSpec(nil), resetBalanceSpecs...)}
	for range resetBalanceSpecs {
		q.Data = append(q.Data, DoubleLong(0))
	}
	return q
}

// ReadResetBalanceRequest checks that q is an ECS04b request.
func ReadResetBalanceRequest(q *AccessRequest) error {
	if err := checkSpecs(q, resetBalanceSpecs); err != nil {
		return err
	}
	for i, d := range q.Data {
		if d.Tag != TagDoubleLong || d.Value != 0 {
			return mismatch("reset balance parameter %d is %s, want double-long 0", i, describeData(d))
		}
	}
	return nil
}

// protectedRequest builds a Get Protected Attributes request on spec. The
// callers pass objects with a valid restriction type, so Data cannot fail.
func protectedRequest(invokeID uint32, spec RequestSpec, q ProtectedAttributesRequest) *AccessRequest {
	v, _ := q.Data()
	return singleRequest(invokeID, spec, v)
}

// readProtectedRequest reads a Get Protected Attributes request on spec
// with exactly the one object want (its restriction dates aside).
func readProtectedRequest(q *AccessRequest, spec RequestSpec, want ProtectedObject) (ProtectedAttributesRequest, error) {
	if err := checkSpecs(q, []RequestSpec{spec}); err != nil {
		return ProtectedAttributesRequest{}, err
	}
	p, err := ReadProtectedAttributesRequest(q.Data[0])
	if err != nil {
		return p, err
	}
	if len(p.Objects) != 1 {
		return p, mismatch("object list of %d objects, want 1", len(p.Objects))
	}
	o := p.Objects[0]
	o.From, o.To = want.From, want.To
	if o != want {
		return p, mismatch("object %d %s attribute %d restriction %d, want %d %s attribute %d restriction %d",
			o.Class, o.OBIS, o.Attribute, o.Restriction, want.Class, want.OBIS, want.Attribute, want.Restriction)
	}
	return p, nil
}

// ImportEnergyRequest returns the ECS17b request: the Get Protected
// Attributes action on 0-0:43.2.8.255 for class 1 0-0:94.44.34.10
// attribute 2, unrestricted, with protection parameters pp.
func ImportEnergyRequest(invokeID uint32, pp ProtectionParameters) *AccessRequest {
	return protectedRequest(invokeID, importEnergyRead, ProtectedAttributesRequest{
		Objects: []ProtectedObject{importEnergyObj}, Protection: pp})
}

// ReadImportEnergyRequest reads an ECS17b request.
func ReadImportEnergyRequest(q *AccessRequest) (ProtectedAttributesRequest, error) {
	return readProtectedRequest(q, importEnergyRead, importEnergyObj)
}

// HalfHourProfileRequest returns the ECS22b request: the Get Protected
// Attributes action on 0-0:43.2.7.255 for the buffer of profile
// 0-0:99.1.0.255, restricted to entries from from to to, with protection
// parameters pp.
func HalfHourProfileRequest(invokeID uint32, from, to DateTime, pp ProtectionParameters) *AccessRequest {
	o := profileBufferObj
	o.From, o.To = from, to
	return protectedRequest(invokeID, profileRead, ProtectedAttributesRequest{
		Objects: []ProtectedObject{o}, Protection: pp})
}

// ReadHalfHourProfileRequest reads an ECS22b request; the dates are in
// Objects[0].From and To.
func ReadHalfHourProfileRequest(q *AccessRequest) (ProtectedAttributesRequest, error) {
	return readProtectedRequest(q, profileRead, profileBufferObj)
}

// NewProtectedResponse returns the answer to one Get Protected Attributes
// action: the protected element and action result success.
func NewProtectedResponse(invokeID uint32, r ProtectedResult) *AccessResponse {
	return &AccessResponse{InvokeID: invokeID, Data: []Data{r.Data()}, Results: []ResponseSpec{{Kind: Action}}}
}

// ReadProtectedResponse reads the answer to one Get Protected Attributes
// action: the protected element when the result is success.
func ReadProtectedResponse(s *AccessResponse) (*ProtectedResult, ActionResult, error) {
	if s == nil {
		return nil, 0, mismatch("not an access-response")
	}
	if len(s.Results) != 1 || len(s.Data) != 1 || s.Results[0].Kind != Action {
		return nil, 0, mismatch("want one value and one action result, have %d values and %d results", len(s.Data), len(s.Results))
	}
	res := ActionResult(s.Results[0].Result)
	if res != 0 {
		if s.Data[0].Tag != TagNull {
			return nil, res, mismatch("failed action (%s) with value %s, want null-data", res, describeData(s.Data[0]))
		}
		return nil, res, nil
	}
	p, err := ReadProtectedResult(s.Data[0])
	if err != nil {
		return nil, res, err
	}
	return &p, res, nil
}
