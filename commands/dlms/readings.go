package dlms

import "time"

// Epoch2000 is the origin of the 4-byte times in profile records:
// 2000-01-01 00:00:00 UTC.
var Epoch2000 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Register is a COSEM register reading: a double-long-unsigned value with
// its scaler and unit (structure(2){integer scaler, enum unit}).
type Register struct {
	Value  uint32 `json:"value"`
	Scaler int8   `json:"scaler"`
	// Unit is the COSEM unit enum: 30 Wh, 32 varh.
	Unit uint8 `json:"unit"`
}

// Scaled returns the reading with its scaler applied (in Unit).
func (r Register) Scaled() Scaled { return Scaled{Value: int64(r.Value), Exp: r.Scaler} }

// ImportEnergy is the plaintext of an ECS17b response (gbcs-payloads.md
// 4.5): structure(1){structure(4){double-long-unsigned,
// structure(2){integer, enum 30}, double-long-unsigned, structure(2){integer,
// enum 32}}}, and for a twin-element meter one more double-long-unsigned.
type ImportEnergy struct {
	// ActiveImport is the first value and its scaler-unit (unit 30, Wh).
	ActiveImport Register `json:"active-import"`
	// ReactiveImport is the second value and its scaler-unit (unit 32,
	// varh).
	ReactiveImport Register `json:"reactive-import"`
	// Twin is the additional double-long-unsigned of a twin-element meter.
	// The specification says only "one more double-long-unsigned"; this
	// package reads and writes it as the fifth element of the inner
	// structure.
	Twin *uint32 `json:"twin,omitempty"`
}

// Data returns the plaintext Data value.
func (e ImportEnergy) Data() Data {
	inner := []Data{
		DoubleLongUnsigned(e.ActiveImport.Value), Structure(Integer(e.ActiveImport.Scaler), Enum(e.ActiveImport.Unit)),
		DoubleLongUnsigned(e.ReactiveImport.Value), Structure(Integer(e.ReactiveImport.Scaler), Enum(e.ReactiveImport.Unit)),
	}
	if e.Twin != nil {
		inner = append(inner, DoubleLongUnsigned(*e.Twin))
	}
	return Structure(Structure(inner...))
}

// ReadImportEnergy reads the decrypted plaintext of an ECS17b response.
func ReadImportEnergy(v Data) (ImportEnergy, error) {
	var e ImportEnergy
	outer, err := list(v, TagStructure, 1, "import energy plaintext")
	if err != nil {
		return e, err
	}
	in, err := list(outer[0], TagStructure, -1, "import energy registers")
	if err != nil {
		return e, err
	}
	if len(in) != 4 && len(in) != 5 {
		return e, mismatch("import energy registers: want structure(4) or structure(5), have %s", describeData(outer[0]))
	}
	if e.ActiveImport, err = readRegister(in[0], in[1], "active import"); err != nil {
		return e, err
	}
	if e.ReactiveImport, err = readRegister(in[2], in[3], "reactive import"); err != nil {
		return e, err
	}
	if len(in) == 5 {
		t, err := u32(in[4], TagDoubleLongUnsigned, "twin-element value")
		if err != nil {
			return e, err
		}
		e.Twin = &t
	}
	return e, nil
}

func readRegister(value, su Data, what string) (Register, error) {
	var r Register
	var err error
	if r.Value, err = u32(value, TagDoubleLongUnsigned, what+" value"); err != nil {
		return r, err
	}
	f, err := list(su, TagStructure, 2, what+" scaler-unit")
	if err != nil {
		return r, err
	}
	if f[0].Tag != TagInteger {
		return r, mismatch("%s scaler: want integer, have %s", what, describeData(f[0]))
	}
	r.Scaler = int8(f[0].Int())
	if r.Unit, err = u8(f[1], TagEnum, what+" unit"); err != nil {
		return r, err
	}
	return r, nil
}

// ProfileRecord is one half-hour profile entry: the time in seconds since
// 2000-01-01 UTC and the value.
type ProfileRecord struct {
	Time  uint32 `json:"time"`
	Value uint32 `json:"value"`
}

// At returns the record's time.
func (r ProfileRecord) At() time.Time { return Epoch2000.Add(time.Duration(r.Time) * time.Second) }

// HalfHourProfile is the plaintext of an ECS22b response (gbcs-payloads.md
// 4.5): structure(1){compact-array of structure(2){06 time, 06 value}}.
type HalfHourProfile struct {
	Records []ProfileRecord `json:"records"`
}

var profileType = TypeDesc{Tag: TagStructure, Elems: []TypeDesc{{Tag: TagDoubleLongUnsigned}, {Tag: TagDoubleLongUnsigned}}}

// Data returns the plaintext Data value.
func (p HalfHourProfile) Data() Data {
	elems := make([]Data, len(p.Records))
	for i, r := range p.Records {
		elems[i] = Structure(DoubleLongUnsigned(r.Time), DoubleLongUnsigned(r.Value))
	}
	return Structure(CompactArray(profileType, elems...))
}

// ReadHalfHourProfile reads the decrypted plaintext of an ECS22b response.
func ReadHalfHourProfile(v Data) (HalfHourProfile, error) {
	var p HalfHourProfile
	outer, err := list(v, TagStructure, 1, "half-hour profile plaintext")
	if err != nil {
		return p, err
	}
	ca := outer[0]
	if ca.Tag != TagCompactArray || ca.Type == nil || !ca.Type.Equal(profileType) {
		return p, mismatch("half-hour profile: want compact-array of %s, have %s", profileType, describeCompact(ca))
	}
	if err := conforms(ca); err != nil {
		return p, err
	}
	p.Records = make([]ProfileRecord, len(ca.Elems))
	for i, e := range ca.Elems {
		p.Records[i] = ProfileRecord{Time: uint32(e.Elems[0].Value), Value: uint32(e.Elems[1].Value)}
	}
	return p, nil
}

// conforms checks that every element of a compact array follows its type
// description (always true of a decoded value; a built one may not).
func conforms(ca Data) error {
	for i := range ca.Elems {
		if _, err := ca.Elems[i].appendUntagged(nil, ca.Type, 0); err != nil {
			return mismatch("compact-array element %d: %v", i, err)
		}
	}
	return nil
}

func describeCompact(v Data) string {
	if v.Tag == TagCompactArray && v.Type != nil {
		return "compact-array of " + v.Type.String()
	}
	return describeData(v)
}

// BillingRecord is one record of the ECS68 billing data log, the compact
// array element structure(7){06, 06, array(48) of 06, 4 × array(8) of 06}.
// The specification gives the types, not the meaning, of the fields.
type BillingRecord struct {
	// Values are the two leading double-long-unsigned elements.
	Values [2]uint32 `json:"values"`
	// Array48 is the array(48) of double-long-unsigned.
	Array48 [48]uint32 `json:"array48"`
	// Arrays8 are the four array(8) of double-long-unsigned.
	Arrays8 [4][8]uint32 `json:"arrays8"`
}

// BillingDataLog is the plaintext of an ECS68 alert (gbcs-payloads.md 4.5):
// structure(1){compact-array of BillingRecord}.
type BillingDataLog struct {
	Records []BillingRecord `json:"records"`
}

var billingType = func() TypeDesc {
	u := TypeDesc{Tag: TagDoubleLongUnsigned}
	a8 := TypeDesc{Tag: TagArray, Count: 8, Elems: []TypeDesc{u}}
	return TypeDesc{Tag: TagStructure, Elems: []TypeDesc{u, u, {Tag: TagArray, Count: 48, Elems: []TypeDesc{u}}, a8, a8, a8, a8}}
}()

func uints(v []uint32) Data {
	d := Data{Tag: TagArray, Elems: make([]Data, len(v))}
	for i, x := range v {
		d.Elems[i] = DoubleLongUnsigned(x)
	}
	return d
}

// Data returns the plaintext Data value.
func (l BillingDataLog) Data() Data {
	elems := make([]Data, len(l.Records))
	for i, r := range l.Records {
		elems[i] = Structure(DoubleLongUnsigned(r.Values[0]), DoubleLongUnsigned(r.Values[1]), uints(r.Array48[:]),
			uints(r.Arrays8[0][:]), uints(r.Arrays8[1][:]), uints(r.Arrays8[2][:]), uints(r.Arrays8[3][:]))
	}
	return Structure(CompactArray(billingType, elems...))
}

// ReadBillingDataLog reads the decrypted plaintext of an ECS68 alert.
func ReadBillingDataLog(v Data) (BillingDataLog, error) {
	var l BillingDataLog
	outer, err := list(v, TagStructure, 1, "billing data log plaintext")
	if err != nil {
		return l, err
	}
	ca := outer[0]
	if ca.Tag != TagCompactArray || ca.Type == nil || !ca.Type.Equal(billingType) {
		return l, mismatch("billing data log: want compact-array of %s, have %s", billingType, describeCompact(ca))
	}
	if err := conforms(ca); err != nil {
		return l, err
	}
	l.Records = make([]BillingRecord, len(ca.Elems))
	for i, e := range ca.Elems {
		r := &l.Records[i]
		r.Values = [2]uint32{uint32(e.Elems[0].Value), uint32(e.Elems[1].Value)}
		for j, x := range e.Elems[2].Elems {
			r.Array48[j] = uint32(x.Value)
		}
		for k := range 4 {
			for j, x := range e.Elems[3+k].Elems {
				r.Arrays8[k][j] = uint32(x.Value)
			}
		}
	}
	return l, nil
}
