package dlms

import "time"

// This file holds the ESME use cases whose payload layout gbcs-payloads.md
// does not give (4.5 lists their message codes in table E, not their COSEM
// descriptors): ECS66 and ECS82. The grammar is the specification's (4.1 to
// 4.4); only the choice of COSEM objects is ours, and every such choice is
// marked "(our layout: the spec gives none)".

// Message codes of the use cases laid out in this file (table E).
const (
	CodeECS66 = 0x0060 // Read ESME Daily Consumption Log (sensitive)
	CodeECS82 = 0x0069 // Read Meter Balance for ESME
)

// COSEM descriptors of ECS66 and ECS82 (our layout: the spec gives none).
var (
	// dailyLogRead is the data protection object (class 30) guarding the
	// daily consumption log, method 1 get_protected_attributes, next to
	// 0-0:43.2.7.255 (ECS22b) and 0-0:43.2.8.255 (ECS17b).
	dailyLogRead = RequestSpec{Kind: Action, Class: 30, OBIS: MustParseOBIS("0-0:43.2.9.255"), ID: 1}
	// dailyLogBufferObj is the buffer of the daily profile generic
	// 0-0:99.2.0.255, the daily counterpart of ECS22b's 0-0:99.1.0.255.
	dailyLogBufferObj = ProtectedObject{Class: 7, OBIS: MustParseOBIS("0-0:99.2.0.255"), Attribute: 2, Restriction: RestrictionByDate}
	// meterBalance is current_credit_amount (attribute 2) of the credit
	// object 0-0:19.10.0.255, the first of the three ECS04b resets.
	meterBalance = RequestSpec{Kind: Get, Class: 112, OBIS: MustParseOBIS("0-0:19.10.0.255"), ID: 2}
)

// DailyConsumptionLogRequest returns the ECS66 request (our layout: the
// spec gives none): the Get Protected Attributes action (class 30, method
// 1) on 0-0:43.2.9.255 for the buffer (attribute 2) of the daily profile
// generic 0-0:99.2.0.255, restricted to the days starting from from to to,
// with protection parameters pp. It is ECS22b's request on the daily log.
func DailyConsumptionLogRequest(invokeID uint32, from, to DateTime, pp ProtectionParameters) *AccessRequest {
	o := dailyLogBufferObj
	o.From, o.To = from, to
	return protectedRequest(invokeID, dailyLogRead, ProtectedAttributesRequest{
		Objects: []ProtectedObject{o}, Protection: pp})
}

// ReadDailyConsumptionLogRequest reads an ECS66 request; the dates are in
// Objects[0].From and To.
func ReadDailyConsumptionLogRequest(q *AccessRequest) (ProtectedAttributesRequest, error) {
	return readProtectedRequest(q, dailyLogRead, dailyLogBufferObj)
}

// DailyConsumption is one day of the ECS66 daily consumption log (our
// layout: the spec gives none): the start of the day in seconds since
// 2000-01-01 UTC and the energy imported that day in Wh.
type DailyConsumption struct {
	Start uint32 `json:"start"`
	Wh    uint32 `json:"wh"`
}

// At returns the start of the day.
func (d DailyConsumption) At() time.Time { return Epoch2000.Add(time.Duration(d.Start) * time.Second) }

// DailyConsumptionLog is the plaintext of an ECS66 response (our layout:
// the spec gives none), shaped as ECS22b's:
// structure(1){compact-array of structure(2){06 day start, 06 Wh}}, the
// records in the order of the buffer (oldest first).
type DailyConsumptionLog struct {
	Days []DailyConsumption `json:"days"`
}

// Data returns the plaintext Data value.
func (l DailyConsumptionLog) Data() Data {
	elems := make([]Data, len(l.Days))
	for i, d := range l.Days {
		elems[i] = Structure(DoubleLongUnsigned(d.Start), DoubleLongUnsigned(d.Wh))
	}
	return Structure(CompactArray(profileType, elems...))
}

// ReadDailyConsumptionLog reads the decrypted plaintext of an ECS66
// response.
func ReadDailyConsumptionLog(v Data) (DailyConsumptionLog, error) {
	var l DailyConsumptionLog
	outer, err := list(v, TagStructure, 1, "daily consumption log plaintext")
	if err != nil {
		return l, err
	}
	ca := outer[0]
	if ca.Tag != TagCompactArray || ca.Type == nil || !ca.Type.Equal(profileType) {
		return l, mismatch("daily consumption log: want compact-array of %s, have %s", profileType, describeCompact(ca))
	}
	if err := conforms(ca); err != nil {
		return l, err
	}
	l.Days = make([]DailyConsumption, len(ca.Elems))
	for i, e := range ca.Elems {
		l.Days[i] = DailyConsumption{Start: uint32(e.Elems[0].Value), Wh: uint32(e.Elems[1].Value)}
	}
	return l, nil
}

// DailyConsumptionLogResponse returns the ECS66 response (our layout: the
// spec gives none): the protected element of 4.4, exactly as ECS17b and
// ECS22b answer, holding ciphered, the ciphered block (2.2) of the
// DailyConsumptionLog plaintext that the caller encrypted, and action result
// success. The failure answer is NewActionResponse(invokeID, result).
func DailyConsumptionLogResponse(invokeID uint32, pp ProtectionParameters, ciphered []byte) *AccessResponse {
	return NewProtectedResponse(invokeID, ProtectedResult{Protection: pp, Ciphered: ciphered})
}

// ReadDailyConsumptionLogResponse reads an ECS66 response: the protected
// element when the action succeeded (nil and the result when it did not).
// The block's bytes are in Ciphered; CipheredBlocks gives the octet-string
// node holding them, to replace it in place.
func ReadDailyConsumptionLogResponse(s *AccessResponse) (*ProtectedResult, ActionResult, error) {
	return ReadProtectedResponse(s)
}

// MeterBalanceRequest returns the ECS82 request (our layout: the spec
// gives none): one get of current_credit_amount, attribute 2 of the credit
// object (class 112) 0-0:19.10.0.255.
func MeterBalanceRequest(invokeID uint32) *AccessRequest {
	return singleRequest(invokeID, meterBalance, Null())
}

// ReadMeterBalanceRequest checks that q is an ECS82 request.
func ReadMeterBalanceRequest(q *AccessRequest) error {
	if err := checkSpecs(q, []RequestSpec{meterBalance}); err != nil {
		return err
	}
	if q.Data[0].Tag != TagNull {
		return mismatch("get parameter is %s, want null-data", describeData(q.Data[0]))
	}
	return nil
}

// MeterBalance is the typed value of an ECS82 response (our layout: the
// spec gives none): current_credit_amount, a double-long. The amount is in
// thousandths of a penny (our convention; COSEM leaves the scale to the
// account object), negative when the consumer owes.
type MeterBalance struct {
	Amount int32 `json:"amount"`
}

// MeterBalanceResponse returns the ECS82 response (our layout: the spec
// gives none): double-long amount and get result success, or null-data and
// result when result is not success.
func MeterBalanceResponse(invokeID uint32, amount int32, result DataAccessResult) *AccessResponse {
	return NewGetResponse(invokeID, DoubleLong(amount), result)
}

// ReadMeterBalance reads an ECS82 response: the amount when result is
// success.
func ReadMeterBalance(s *AccessResponse) (MeterBalance, DataAccessResult, error) {
	v, res, err := ReadGetResponse(s)
	if err != nil || res != 0 {
		return MeterBalance{}, res, err
	}
	if v.Tag != TagDoubleLong {
		return MeterBalance{}, res, mismatch("current credit amount: want %s, have %s", TagDoubleLong, describeData(v))
	}
	return MeterBalance{Amount: int32(v.Int())}, res, nil
}

// describeOurs is Describe for the use cases of this file; ok is false for
// any other code.
func describeOurs(code uint16, q *AccessRequest, s *AccessResponse) (v any, ok bool, err error) {
	switch code {
	case CodeECS66:
		if q != nil {
			v, err = ReadDailyConsumptionLogRequest(q)
			return v, true, err
		}
		p, _, err := ReadDailyConsumptionLogResponse(s)
		if err != nil {
			return nil, true, err
		}
		o := Outcome{Results: s.Results}
		if p != nil {
			o.Value = p
		}
		return o, true, nil
	case CodeECS82:
		if q != nil {
			return nil, true, ReadMeterBalanceRequest(q)
		}
		b, res, err := ReadMeterBalance(s)
		if err != nil {
			return nil, true, err
		}
		o := Outcome{Results: s.Results}
		if res == 0 {
			o.Value = b
		}
		return o, true, nil
	}
	return nil, false, nil
}
