package device

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// SupplyState is the state of the supply switch (the load switch of an
// ESME, the valve of a GSME), with the values of the DLMS disconnect
// control's control_state attribute.
type SupplyState uint8

// Supply states.
const (
	// SupplyDisabled: the switch is open (DLMS disconnected).
	SupplyDisabled SupplyState = 0
	// SupplyEnabled: the switch is closed (DLMS connected).
	SupplyEnabled SupplyState = 1
	// SupplyArmed: the switch is open and will close when the consumer
	// presses the button (DLMS ready_for_reconnection).
	SupplyArmed SupplyState = 2
)

// String names the state.
func (s SupplyState) String() string {
	switch s {
	case SupplyDisabled:
		return "disabled"
	case SupplyEnabled:
		return "enabled"
	case SupplyArmed:
		return "armed"
	}
	return fmt.Sprintf("supplyState(%d)", uint8(s))
}

// supplyRequest returns the DLMS request specification of a supply-switch
// use case: ECS43 and GCS32 call remote_disconnect, ECS42 and ECS44/GCS39
// call remote_reconnect (which the meter follows to connected or to
// ready_for_reconnection according to the message code, as the DLMS
// control modes do), and ECS45/GCS33 get control_state.
func supplyRequest(code uint16) (dlmsItem, bool) {
	it := dlmsItem{class: classDisconnectControl, obis: obisDisconnect}
	switch code {
	case CodeECS42, CodeECS44, CodeGCS39:
		it.kind, it.id = reqAction, methodRemoteReconnect
	case CodeECS43, CodeGCS32:
		it.kind, it.id = reqAction, methodRemoteDisconnect
	case CodeECS45, CodeGCS33:
		it.kind, it.id = reqGet, attrControlState
	default:
		return dlmsItem{}, false
	}
	return it, true
}

// EncodeSupplyCommand returns the payload of a supply-switch command: ECS42
// (enable), ECS43 (disable), ECS44 (arm), ECS45 (read status), GCS32
// (disable), GCS39 (arm) or GCS33 (read status). It is a DLMS access request
// in the layout of the GBCS 18.4 vector with one request specification on
// the disconnect control object (class 70, OBIS 0-0-96-3-10-255) and a null
// data element.
func EncodeSupplyCommand(code uint16) ([]byte, error) {
	it, ok := supplyRequest(code)
	if !ok {
		return nil, payloadErr("supply command", "message code 0x%04X is not a supply-switch use case", code)
	}
	return buildAccessRequest(defaultInvokeID, []dlmsItem{it}, []dlmsData{{tag: dataNull}}), nil
}

// DecodeSupplyCommand checks that p is the payload of the supply-switch use
// case code and returns its DLMS invoke id, which the response repeats.
func DecodeSupplyCommand(code uint16, p []byte) (invokeID uint32, err error) {
	want, ok := supplyRequest(code)
	if !ok {
		return 0, payloadErr("supply command", "message code 0x%04X is not a supply-switch use case", code)
	}
	id, items, data, err := parseAccessRequest("supply command", p)
	if err != nil {
		return 0, err
	}
	if len(items) != 1 || items[0] != want {
		return 0, payloadErr("supply command", "want one request on class 70 OBIS 0-0-96-3-10-255 kind %d id %d, have %d requests", want.kind, want.id, len(items))
	}
	if len(data) != 1 || data[0].tag != dataNull {
		return 0, payloadErr("supply command", "want one null data element, have %d elements", len(data))
	}
	return id, nil
}

// SupplyResponse is what a meter answers to a supply-switch command.
type SupplyResponse struct {
	// InvokeID repeats the command's DLMS invoke id.
	InvokeID uint32
	// OK reports whether the action succeeded (always true for a status
	// read): DLMS result success, against temporary-failure for a transition
	// the switch refuses (arming a closed switch, enabling a gas valve).
	OK bool
	// State is the switch state after the command.
	State SupplyState
	// Status reports whether this answers a status read (the state is then
	// in the DLMS data) rather than an action.
	Status bool
}

// EncodeSupplyResponse writes a DLMS access response: for a status read,
// the control_state as an enum and a get result; for an action, a null data
// element and the action result. The state after an action is not in the
// DLMS response; the decoder leaves it zero.
func EncodeSupplyResponse(r SupplyResponse) []byte {
	res := byte(dlmsSuccess)
	if !r.OK {
		res = dlmsTemporaryFailure
	}
	if r.Status {
		return buildAccessResponse(r.InvokeID, []dlmsData{{tag: dataEnum, val: int32(r.State)}}, []dlmsResult{{reqGet, res}})
	}
	return buildAccessResponse(r.InvokeID, []dlmsData{{tag: dataNull}}, []dlmsResult{{reqAction, res}})
}

// DecodeSupplyResponse reads what EncodeSupplyResponse writes.
func DecodeSupplyResponse(p []byte) (SupplyResponse, error) {
	id, data, results, err := parseAccessResponse("supply response", p)
	if err != nil {
		return SupplyResponse{}, err
	}
	if len(data) != 1 || len(results) != 1 {
		return SupplyResponse{}, payloadErr("supply response", "want one data element and one result, have %d and %d", len(data), len(results))
	}
	r := SupplyResponse{InvokeID: id, OK: results[0].result == dlmsSuccess}
	switch results[0].kind {
	case reqGet:
		if data[0].tag != dataEnum || data[0].val > int32(SupplyArmed) {
			return SupplyResponse{}, payloadErr("supply response", "control_state must be an enum 0, 1 or 2")
		}
		r.Status, r.State = true, SupplyState(data[0].val)
	case reqAction:
		if data[0].tag != dataNull {
			return SupplyResponse{}, payloadErr("supply response", "an action result carries null data")
		}
	default:
		return SupplyResponse{}, payloadErr("supply response", "result kind %d, want get (1) or action (3)", results[0].kind)
	}
	return r, nil
}

// EncodeBalanceReset returns the ECS04b payload exactly as GBCS section
// 18.4 gives it: a DLMS access request calling set_amount_to_value (method
// 2) with 0 on the three ESME credit objects (class 112, OBIS
// 0-0-19-10-{0,1,2}-255).
func EncodeBalanceReset() []byte {
	items := make([]dlmsItem, len(obisCredit))
	data := make([]dlmsData, len(obisCredit))
	for i, o := range obisCredit {
		items[i] = dlmsItem{kind: reqAction, class: classCredit, obis: o, id: methodSetAmount}
		data[i] = dlmsData{tag: dataDoubleLong}
	}
	return buildAccessRequest(defaultInvokeID, items, data)
}

// DecodeBalanceReset checks an ECS04b payload and returns its invoke id.
// Only resets to zero are accepted: ECS04b resets, ECS04a adjusts.
func DecodeBalanceReset(p []byte) (invokeID uint32, err error) {
	id, items, data, err := parseAccessRequest("ECS04b", p)
	if err != nil {
		return 0, err
	}
	if len(items) != len(obisCredit) || len(data) != len(obisCredit) {
		return 0, payloadErr("ECS04b", "want %d requests and %d data elements, have %d and %d", len(obisCredit), len(obisCredit), len(items), len(data))
	}
	for i, o := range obisCredit {
		if items[i] != (dlmsItem{kind: reqAction, class: classCredit, obis: o, id: methodSetAmount}) {
			return 0, payloadErr("ECS04b", "request %d is not set_amount_to_value on credit object %d-%d-%d-%d-%d-%d", i, o[0], o[1], o[2], o[3], o[4], o[5])
		}
		if data[i] != (dlmsData{tag: dataDoubleLong}) {
			return 0, payloadErr("ECS04b", "data %d is not double-long 0", i)
		}
	}
	return id, nil
}

// EncodeBalanceResetResponse writes the DLMS access response to ECS04b: a
// null data element and an action result per credit object.
func EncodeBalanceResetResponse(invokeID uint32, ok bool) []byte {
	res := byte(dlmsSuccess)
	if !ok {
		res = dlmsTemporaryFailure
	}
	data := make([]dlmsData, len(obisCredit))
	results := make([]dlmsResult, len(obisCredit))
	for i := range results {
		data[i] = dlmsData{tag: dataNull}
		results[i] = dlmsResult{reqAction, res}
	}
	return buildAccessResponse(invokeID, data, results)
}

// DecodeBalanceResetResponse reads an ECS04b response and reports whether
// every reset succeeded.
func DecodeBalanceResetResponse(p []byte) (invokeID uint32, ok bool, err error) {
	id, data, results, err := parseAccessResponse("ECS04b response", p)
	if err != nil {
		return 0, false, err
	}
	if len(data) != len(obisCredit) || len(results) != len(obisCredit) {
		return 0, false, payloadErr("ECS04b response", "want %d data elements and results, have %d and %d", len(obisCredit), len(data), len(results))
	}
	ok = true
	for i, r := range results {
		if r.kind != reqAction || data[i].tag != dataNull {
			return 0, false, payloadErr("ECS04b response", "entry %d is not an action result with null data", i)
		}
		ok = ok && r.result == dlmsSuccess
	}
	return id, ok, nil
}

// The compact payloads below are our own encoding (our rule): GBCS carries
// these use cases in DLMS or GBZ structures too large to reproduce here.
// Every one opens with the version byte 0x01; integers are big-endian;
// times are Unix seconds (uint64).
const payloadVersion = 0x01

type compactReader struct {
	what string
	b    []byte
	pos  int
}

func newCompactReader(what string, p []byte) (*compactReader, error) {
	r := &compactReader{what: what, b: p}
	v, err := r.u8()
	if err != nil {
		return nil, err
	}
	if v != payloadVersion {
		return nil, payloadErr(what, "version byte 0x%02X, want 0x01", v)
	}
	return r, nil
}

func (r *compactReader) take(n int) ([]byte, error) {
	if len(r.b)-r.pos < n {
		return nil, payloadErr(r.what, "truncated at byte %d: need %d more bytes, have %d", r.pos, n, len(r.b)-r.pos)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *compactReader) u8() (uint8, error) {
	s, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (r *compactReader) u32() (uint32, error) {
	s, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(s), nil
}

func (r *compactReader) u64() (uint64, error) {
	s, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(s), nil
}

func (r *compactReader) time() (time.Time, error) {
	at := r.pos
	v, err := r.u64()
	if err != nil {
		return time.Time{}, err
	}
	if v > math.MaxInt64/2 {
		return time.Time{}, payloadErr(r.what, "byte %d: time %d out of range", at, v)
	}
	return time.Unix(int64(v), 0).UTC(), nil
}

func (r *compactReader) end() error {
	if r.pos != len(r.b) {
		return payloadErr(r.what, "%d trailing bytes after byte %d", len(r.b)-r.pos, r.pos)
	}
	return nil
}

func appendTime(b []byte, t time.Time) []byte {
	s := t.Unix()
	if s < 0 {
		s = 0
	}
	return binary.BigEndian.AppendUint64(b, uint64(s))
}

// EncodeReadRequest returns the payload of a read with no parameters:
// registers (ECS17b, GCS13a) and meter balance (ECS82, GCS60). Our rule: the
// version byte alone.
func EncodeReadRequest() []byte { return []byte{payloadVersion} }

// DecodeReadRequest checks a payload written by EncodeReadRequest.
func DecodeReadRequest(p []byte) error {
	r, err := newCompactReader("read request", p)
	if err != nil {
		return err
	}
	return r.end()
}

// RegisterReading is the answer to a register read (ECS17b, GCS13a): the
// active import register at a point in time.
type RegisterReading struct {
	// At is when the register was read.
	At time.Time
	// ImportWh is the cumulative active import energy in Wh (for gas, the
	// consumption register in Wh-equivalent units of the model).
	ImportWh uint64
}

// EncodeRegisterReading writes a register reading. Our rule: version, At
// (uint64 Unix seconds), ImportWh (uint64).
func EncodeRegisterReading(r RegisterReading) []byte {
	b := appendTime([]byte{payloadVersion}, r.At)
	return binary.BigEndian.AppendUint64(b, r.ImportWh)
}

// DecodeRegisterReading reads what EncodeRegisterReading writes.
func DecodeRegisterReading(p []byte) (RegisterReading, error) {
	r, err := newCompactReader("register reading", p)
	if err != nil {
		return RegisterReading{}, err
	}
	var rr RegisterReading
	if rr.At, err = r.time(); err != nil {
		return RegisterReading{}, err
	}
	if rr.ImportWh, err = r.u64(); err != nil {
		return RegisterReading{}, err
	}
	return rr, r.end()
}

// ProfileRequest asks for half-hourly profile data (ECS22b, GCS17) in the
// half-open range [From, To). The meter answers with the completed slots of
// its 13-month log that fall in the range.
type ProfileRequest struct {
	From, To time.Time
}

// EncodeProfileRequest writes a profile request. Our rule: version, From,
// To (uint64 Unix seconds each).
func EncodeProfileRequest(q ProfileRequest) ([]byte, error) {
	if !q.From.Before(q.To) || q.From.Unix() < 0 {
		return nil, payloadErr("profile request", "want 0 <= From < To, have %v and %v", q.From, q.To)
	}
	return appendTime(appendTime([]byte{payloadVersion}, q.From), q.To), nil
}

// DecodeProfileRequest reads what EncodeProfileRequest writes.
func DecodeProfileRequest(p []byte) (ProfileRequest, error) {
	r, err := newCompactReader("profile request", p)
	if err != nil {
		return ProfileRequest{}, err
	}
	var q ProfileRequest
	if q.From, err = r.time(); err != nil {
		return ProfileRequest{}, err
	}
	if q.To, err = r.time(); err != nil {
		return ProfileRequest{}, err
	}
	if err := r.end(); err != nil {
		return ProfileRequest{}, err
	}
	if !q.From.Before(q.To) {
		return ProfileRequest{}, payloadErr("profile request", "From %v is not before To %v", q.From, q.To)
	}
	return q, nil
}

// maxProfileSlots bounds a profile response: 13 months of half hours (at
// most 31*13 days) fit.
const maxProfileSlots = 31 * 13 * slotsPerDay

// ProfileLog is half-hourly consumption: Values[i] is the energy in Wh of
// the half hour starting at Start + i*30 minutes.
type ProfileLog struct {
	Start  time.Time
	Values []uint32
}

// EncodeProfileLog writes a profile log. Our rule: version, Start (uint64
// Unix seconds), count (uint32), count values (uint32 Wh each).
func EncodeProfileLog(l ProfileLog) ([]byte, error) {
	if len(l.Values) > maxProfileSlots {
		return nil, payloadErr("profile log", "%d slots, at most %d", len(l.Values), maxProfileSlots)
	}
	b := make([]byte, 0, 13+4*len(l.Values))
	b = appendTime(append(b, payloadVersion), l.Start)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Values)))
	for _, v := range l.Values {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b, nil
}

// DecodeProfileLog reads what EncodeProfileLog writes.
func DecodeProfileLog(p []byte) (ProfileLog, error) {
	r, err := newCompactReader("profile log", p)
	if err != nil {
		return ProfileLog{}, err
	}
	var l ProfileLog
	if l.Start, err = r.time(); err != nil {
		return ProfileLog{}, err
	}
	n, err := r.u32()
	if err != nil {
		return ProfileLog{}, err
	}
	if n > maxProfileSlots || int(n)*4 != len(p)-r.pos {
		return ProfileLog{}, payloadErr("profile log", "count %d does not match %d remaining bytes (at most %d slots)", n, len(p)-r.pos, maxProfileSlots)
	}
	l.Values = make([]uint32, n)
	for i := range l.Values {
		l.Values[i], _ = r.u32()
	}
	return l, r.end()
}

// MaxDailyLogDays is the most days a daily consumption log read returns.
const MaxDailyLogDays = 31

// EncodeDailyLogRequest asks for the daily consumption log (ECS66, GCS61):
// the last days completed UTC days, 1 to 31. Our rule: version, days
// (uint8).
func EncodeDailyLogRequest(days int) ([]byte, error) {
	if days < 1 || days > MaxDailyLogDays {
		return nil, payloadErr("daily log request", "days %d, want 1 to %d", days, MaxDailyLogDays)
	}
	return []byte{payloadVersion, byte(days)}, nil
}

// DecodeDailyLogRequest reads what EncodeDailyLogRequest writes.
func DecodeDailyLogRequest(p []byte) (days int, err error) {
	r, err := newCompactReader("daily log request", p)
	if err != nil {
		return 0, err
	}
	d, err := r.u8()
	if err != nil {
		return 0, err
	}
	if d < 1 || d > MaxDailyLogDays {
		return 0, payloadErr("daily log request", "days %d, want 1 to %d", d, MaxDailyLogDays)
	}
	return int(d), r.end()
}

// DailyLog is daily consumption: Values[i] is the energy in Wh of the UTC
// day starting at Start + i days.
type DailyLog struct {
	Start  time.Time
	Values []uint32
}

// EncodeDailyLog writes a daily log. Our rule: version, Start (uint64 Unix
// seconds), count (uint8), count values (uint32 Wh each).
func EncodeDailyLog(l DailyLog) ([]byte, error) {
	if len(l.Values) > MaxDailyLogDays {
		return nil, payloadErr("daily log", "%d days, at most %d", len(l.Values), MaxDailyLogDays)
	}
	b := appendTime([]byte{payloadVersion}, l.Start)
	b = append(b, byte(len(l.Values)))
	for _, v := range l.Values {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b, nil
}

// DecodeDailyLog reads what EncodeDailyLog writes.
func DecodeDailyLog(p []byte) (DailyLog, error) {
	r, err := newCompactReader("daily log", p)
	if err != nil {
		return DailyLog{}, err
	}
	var l DailyLog
	if l.Start, err = r.time(); err != nil {
		return DailyLog{}, err
	}
	n, err := r.u8()
	if err != nil {
		return DailyLog{}, err
	}
	if n > MaxDailyLogDays || int(n)*4 != len(p)-r.pos {
		return DailyLog{}, payloadErr("daily log", "count %d does not match %d remaining bytes (at most %d days)", n, len(p)-r.pos, MaxDailyLogDays)
	}
	l.Values = make([]uint32, n)
	for i := range l.Values {
		l.Values[i], _ = r.u32()
	}
	return l, r.end()
}

// MaxTariffRates is the most time-of-use rates a tariff holds.
const MaxTariffRates = 8

// TariffRate is one time-of-use rate: its price applies from the half hour
// of the day FromSlot (0 = 00:00, 47 = 23:30 UTC) to the next rate's.
type TariffRate struct {
	FromSlot uint8
	// PriceMilliPence is the unit price in thousandths of a penny per kWh.
	PriceMilliPence uint32
}

// Tariff is what ECS01a and GCS01a set: a daily standing charge and up to 8
// time-of-use rates, the first starting at midnight.
type Tariff struct {
	// StandingChargeMilliPence is the daily standing charge in thousandths
	// of a penny.
	StandingChargeMilliPence uint32
	Rates                    []TariffRate
}

// Validate reports what is wrong with t: no rates or more than 8, a first
// rate not starting at slot 0, slots not strictly increasing or past 47.
func (t Tariff) Validate() error {
	if len(t.Rates) == 0 || len(t.Rates) > MaxTariffRates {
		return payloadErr("tariff", "%d rates, want 1 to %d", len(t.Rates), MaxTariffRates)
	}
	if t.Rates[0].FromSlot != 0 {
		return payloadErr("tariff", "first rate starts at slot %d, want 0", t.Rates[0].FromSlot)
	}
	for i, r := range t.Rates {
		if r.FromSlot >= slotsPerDay {
			return payloadErr("tariff", "rate %d starts at slot %d, past 47", i, r.FromSlot)
		}
		if i > 0 && r.FromSlot <= t.Rates[i-1].FromSlot {
			return payloadErr("tariff", "rate %d starts at slot %d, not after rate %d", i, r.FromSlot, i-1)
		}
	}
	return nil
}

// EncodeTariff writes a tariff. Our rule: version, standing charge
// (uint32), count (uint8), then per rate its slot (uint8) and price
// (uint32).
func EncodeTariff(t Tariff) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint32([]byte{payloadVersion}, t.StandingChargeMilliPence)
	b = append(b, byte(len(t.Rates)))
	for _, r := range t.Rates {
		b = binary.BigEndian.AppendUint32(append(b, r.FromSlot), r.PriceMilliPence)
	}
	return b, nil
}

// DecodeTariff reads what EncodeTariff writes and validates it.
func DecodeTariff(p []byte) (Tariff, error) {
	r, err := newCompactReader("tariff", p)
	if err != nil {
		return Tariff{}, err
	}
	var t Tariff
	if t.StandingChargeMilliPence, err = r.u32(); err != nil {
		return Tariff{}, err
	}
	n, err := r.u8()
	if err != nil {
		return Tariff{}, err
	}
	if n == 0 || n > MaxTariffRates {
		return Tariff{}, payloadErr("tariff", "%d rates, want 1 to %d", n, MaxTariffRates)
	}
	t.Rates = make([]TariffRate, n)
	for i := range t.Rates {
		if t.Rates[i].FromSlot, err = r.u8(); err != nil {
			return Tariff{}, err
		}
		if t.Rates[i].PriceMilliPence, err = r.u32(); err != nil {
			return Tariff{}, err
		}
	}
	if err := r.end(); err != nil {
		return Tariff{}, err
	}
	return t, t.Validate()
}

// MaxCIN is the largest customer identification number: eight decimal
// digits on the meter's display.
const MaxCIN = 99_999_999

// EncodeCIN writes the payload of ECS50/GCS36, which gives the meter a
// customer identification number to display. Our rule: version, CIN
// (uint32, at most 99999999).
func EncodeCIN(cin uint32) ([]byte, error) {
	if cin > MaxCIN {
		return nil, payloadErr("CIN", "%d has more than 8 digits", cin)
	}
	return binary.BigEndian.AppendUint32([]byte{payloadVersion}, cin), nil
}

// DecodeCIN reads what EncodeCIN writes.
func DecodeCIN(p []byte) (uint32, error) {
	r, err := newCompactReader("CIN", p)
	if err != nil {
		return 0, err
	}
	c, err := r.u32()
	if err != nil {
		return 0, err
	}
	if c > MaxCIN {
		return 0, payloadErr("CIN", "%d has more than 8 digits", c)
	}
	return c, r.end()
}

// Status is the result a meter reports for a command without data to
// return (tariff, CIN).
type Status uint8

// Statuses.
const (
	StatusOK     Status = 0
	StatusFailed Status = 1
)

// EncodeStatus writes a status response. Our rule: version, status
// (uint8).
func EncodeStatus(s Status) []byte { return []byte{payloadVersion, byte(s)} }

// DecodeStatus reads what EncodeStatus writes.
func DecodeStatus(p []byte) (Status, error) {
	r, err := newCompactReader("status", p)
	if err != nil {
		return 0, err
	}
	s, err := r.u8()
	if err != nil {
		return 0, err
	}
	if s > uint8(StatusFailed) {
		return 0, payloadErr("status", "value %d, want 0 or 1", s)
	}
	return Status(s), r.end()
}

// Balance is the answer to a meter balance read (ECS82, GCS60).
type Balance struct {
	// MilliPence is the meter balance in thousandths of a penny; negative
	// when the consumer owes.
	MilliPence int64
}

// EncodeBalance writes a balance. Our rule: version, balance (int64 two's
// complement).
func EncodeBalance(b Balance) []byte {
	return binary.BigEndian.AppendUint64([]byte{payloadVersion}, uint64(b.MilliPence))
}

// DecodeBalance reads what EncodeBalance writes.
func DecodeBalance(p []byte) (Balance, error) {
	r, err := newCompactReader("balance", p)
	if err != nil {
		return Balance{}, err
	}
	v, err := r.u64()
	if err != nil {
		return Balance{}, err
	}
	return Balance{MilliPence: int64(v)}, r.end()
}
