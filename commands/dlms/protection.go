package dlms

import (
	"bytes"
	"encoding/binary"

	"github.com/metertrust/metertrust/smki"
)

// ProtectionParameters is the typed form of the DLMS protection parameters
// GBCS puts in front of sensitive data (gbcs-payloads.md 4.4):
//
//	array(1) of structure(2) {
//	    enum protection type (02, authentication and encryption)
//	    structure(5) {
//	        octet-string(9) transaction id = 04 ‖ counter(8)
//	        octet-string(8) originator system title
//	        octet-string(8) recipient system title
//	        octet-string    other information (empty)
//	        structure(2) { enum key info type (02, agreed key)
//	                       structure(2) { octet-string key parameters (02),
//	                                      octet-string key ciphered data (empty) } } } }
//
// They are informative: keys are derived from the GBCS header, never from
// these fields (gbcs-payloads.md 2.4).
type ProtectionParameters struct {
	// ProtectionType is the protection type enum; 2 in GBCS.
	ProtectionType uint8 `json:"protection-type"`
	// Counter is the counter of the transaction id 04 ‖ counter.
	Counter uint64 `json:"counter"`
	// Originator and Recipient are the system titles.
	Originator smki.EUI `json:"originator"`
	Recipient  smki.EUI `json:"recipient"`
	// OtherInformation is empty in GBCS.
	OtherInformation HexBytes `json:"other-information"`
	// KeyInfoType is the key info enum; 2 (agreed key) in GBCS.
	KeyInfoType uint8 `json:"key-info-type"`
	// KeyParameters is 02 (C(0e, 2s ECC CDH)) in GBCS; KeyCipheredData is
	// empty.
	KeyParameters   HexBytes `json:"key-parameters"`
	KeyCipheredData HexBytes `json:"key-ciphered-data"`
}

// NewProtectionParameters returns the parameters GBCS uses: protection
// type 2, transaction id 04 ‖ counter, agreed key with key parameters 02.
func NewProtectionParameters(counter uint64, originator, recipient smki.EUI) ProtectionParameters {
	return ProtectionParameters{
		ProtectionType:   2,
		Counter:          counter,
		Originator:       originator,
		Recipient:        recipient,
		OtherInformation: HexBytes{},
		KeyInfoType:      2,
		KeyParameters:    HexBytes{0x02},
		KeyCipheredData:  HexBytes{},
	}
}

// Data returns the protection parameters as a Data value.
func (p ProtectionParameters) Data() Data {
	tid := binary.BigEndian.AppendUint64([]byte{0x04}, p.Counter)
	return Array(Structure(
		Enum(p.ProtectionType),
		Structure(
			OctetString(tid),
			OctetString(bytes.Clone(p.Originator[:])),
			OctetString(bytes.Clone(p.Recipient[:])),
			OctetString(nonNil(p.OtherInformation)),
			Structure(
				Enum(p.KeyInfoType),
				Structure(OctetString(nonNil(p.KeyParameters)), OctetString(nonNil(p.KeyCipheredData))),
			),
		),
	))
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}

// isProtectionParameters reports whether v has the protection-parameters
// shape.
func isProtectionParameters(v Data) bool {
	_, err := ReadProtectionParameters(v)
	return err == nil
}

// ReadProtectionParameters reads protection parameters from v, which must
// have exactly the shape of ProtectionParameters.
func ReadProtectionParameters(v Data) (ProtectionParameters, error) {
	var p ProtectionParameters
	outer, err := list(v, TagArray, 1, "protection-parameters")
	if err != nil {
		return p, err
	}
	pair, err := list(outer[0], TagStructure, 2, "protection-parameters[0]")
	if err != nil {
		return p, err
	}
	if p.ProtectionType, err = u8(pair[0], TagEnum, "protection-parameters protection type"); err != nil {
		return p, err
	}
	f, err := list(pair[1], TagStructure, 5, "protection-parameters options")
	if err != nil {
		return p, err
	}
	tid, err := octets(f[0], 9, "protection-parameters transaction id")
	if err != nil {
		return p, err
	}
	if tid[0] != 0x04 {
		return p, mismatch("protection-parameters transaction id starts 0x%02x, want 04", tid[0])
	}
	p.Counter = binary.BigEndian.Uint64(tid[1:])
	o, err := octets(f[1], 8, "protection-parameters originator")
	if err != nil {
		return p, err
	}
	r, err := octets(f[2], 8, "protection-parameters recipient")
	if err != nil {
		return p, err
	}
	p.Originator, p.Recipient = smki.EUI(o), smki.EUI(r)
	if p.OtherInformation, err = octets(f[3], -1, "protection-parameters other information"); err != nil {
		return p, err
	}
	ki, err := list(f[4], TagStructure, 2, "protection-parameters key info")
	if err != nil {
		return p, err
	}
	if p.KeyInfoType, err = u8(ki[0], TagEnum, "protection-parameters key info type"); err != nil {
		return p, err
	}
	ak, err := list(ki[1], TagStructure, 2, "protection-parameters agreed key")
	if err != nil {
		return p, err
	}
	if p.KeyParameters, err = octets(ak[0], -1, "protection-parameters key parameters"); err != nil {
		return p, err
	}
	if p.KeyCipheredData, err = octets(ak[1], -1, "protection-parameters key ciphered data"); err != nil {
		return p, err
	}
	return p, nil
}

// Restriction types of a Get Protected Attributes object.
const (
	RestrictionNone   = 0
	RestrictionByDate = 1
)

// ProtectedObject is one entry of the object list of a Get Protected
// Attributes action (gbcs-payloads.md 4.4).
type ProtectedObject struct {
	Class     uint16 `json:"class"`
	OBIS      OBIS   `json:"obis"`
	Attribute int8   `json:"attribute"`
	DataIndex uint16 `json:"data-index"`
	// Restriction is RestrictionNone (value null-data) or RestrictionByDate
	// (value structure(2){From, To}).
	Restriction uint8    `json:"restriction"`
	From        DateTime `json:"from,omitzero"`
	To          DateTime `json:"to,omitzero"`
}

// ProtectedAttributesRequest is the parameter of the Get Protected
// Attributes action, class 30 method 1 (gbcs-payloads.md 4.4).
type ProtectedAttributesRequest struct {
	Objects    []ProtectedObject    `json:"objects"`
	Protection ProtectionParameters `json:"protection"`
}

// Data returns the action parameter.
func (q ProtectedAttributesRequest) Data() (Data, error) {
	objs := make([]Data, len(q.Objects))
	for i, o := range q.Objects {
		var restr Data
		switch o.Restriction {
		case RestrictionNone:
			restr = Structure(Enum(RestrictionNone), Null())
		case RestrictionByDate:
			restr = Structure(Enum(RestrictionByDate), Structure(o.From.Data(), o.To.Data()))
		default:
			return Data{}, invalid("object %d restriction type %d, want 0 or 1", i, o.Restriction)
		}
		objs[i] = Structure(LongUnsigned(o.Class), OctetString(bytes.Clone(o.OBIS[:])), Integer(o.Attribute),
			LongUnsigned(o.DataIndex), restr)
	}
	return Structure(Array(objs...), q.Protection.Data()), nil
}

// ReadProtectedAttributesRequest reads the action parameter v.
func ReadProtectedAttributesRequest(v Data) (ProtectedAttributesRequest, error) {
	var q ProtectedAttributesRequest
	top, err := list(v, TagStructure, 2, "get-protected-attributes parameter")
	if err != nil {
		return q, err
	}
	if top[0].Tag != TagArray {
		return q, mismatch("get-protected-attributes object list: want array, have %s", describeData(top[0]))
	}
	for i, e := range top[0].Elems {
		f, err := list(e, TagStructure, 5, "object list entry")
		if err != nil {
			return q, err
		}
		var o ProtectedObject
		c, err := u16(f[0], TagLongUnsigned, "object class")
		if err != nil {
			return q, err
		}
		ln, err := octets(f[1], 6, "object logical name")
		if err != nil {
			return q, err
		}
		if f[2].Tag != TagInteger {
			return q, mismatch("object %d attribute: want integer, have %s", i, describeData(f[2]))
		}
		di, err := u16(f[3], TagLongUnsigned, "object data index")
		if err != nil {
			return q, err
		}
		o.Class, o.OBIS, o.Attribute, o.DataIndex = c, OBIS(ln), int8(f[2].Int()), di
		r, err := list(f[4], TagStructure, 2, "object restriction")
		if err != nil {
			return q, err
		}
		if o.Restriction, err = u8(r[0], TagEnum, "object restriction type"); err != nil {
			return q, err
		}
		switch o.Restriction {
		case RestrictionNone:
			if r[1].Tag != TagNull {
				return q, mismatch("object %d restriction none: want null-data, have %s", i, describeData(r[1]))
			}
		case RestrictionByDate:
			ft, err := list(r[1], TagStructure, 2, "object restriction by date")
			if err != nil {
				return q, err
			}
			if o.From, err = dateTimeOf(ft[0], "restriction from"); err != nil {
				return q, err
			}
			if o.To, err = dateTimeOf(ft[1], "restriction to"); err != nil {
				return q, err
			}
		default:
			return q, mismatch("object %d restriction type %d, want 0 or 1", i, o.Restriction)
		}
		q.Objects = append(q.Objects, o)
	}
	if q.Protection, err = ReadProtectionParameters(top[1]); err != nil {
		return q, err
	}
	return q, nil
}

// ProtectedResult is a successful Get Protected Attributes answer, the
// list-of-data element structure(2){protection-parameters, octet-string
// ciphered block}.
type ProtectedResult struct {
	Protection ProtectionParameters `json:"protection"`
	// Ciphered is the ciphered block (gbcs-payloads.md 2.2).
	Ciphered HexBytes `json:"ciphered"`
}

// Data returns the list-of-data element.
func (r ProtectedResult) Data() Data {
	return Structure(r.Protection.Data(), OctetString(nonNil(r.Ciphered)))
}

// ReadProtectedResult reads a list-of-data element.
func ReadProtectedResult(v Data) (ProtectedResult, error) {
	var r ProtectedResult
	f, err := list(v, TagStructure, 2, "protected result")
	if err != nil {
		return r, err
	}
	if r.Protection, err = ReadProtectionParameters(f[0]); err != nil {
		return r, err
	}
	if r.Ciphered, err = octets(f[1], -1, "protected result ciphered block"); err != nil {
		return r, err
	}
	return r, nil
}

// Shape helpers for the typed readers. Each returns ErrMismatch naming what.

// list checks that v is tag with n elements (any number when n < 0).
func list(v Data, tag Tag, n int, what string) ([]Data, error) {
	if v.Tag != tag || (n >= 0 && len(v.Elems) != n) {
		if n < 0 {
			return nil, mismatch("%s: want %s, have %s", what, tag, describeData(v))
		}
		return nil, mismatch("%s: want %s(%d), have %s", what, tag, n, describeData(v))
	}
	return v.Elems, nil
}

// octets checks that v is an octet-string of n bytes (any length when
// n < 0) and returns a copy of its bytes.
func octets(v Data, n int, what string) ([]byte, error) {
	if v.Tag != TagOctetString || (n >= 0 && len(v.Bytes) != n) {
		if n < 0 {
			return nil, mismatch("%s: want octet-string, have %s", what, describeData(v))
		}
		return nil, mismatch("%s: want octet-string(%d), have %s", what, n, describeData(v))
	}
	return nonNil(v.Bytes), nil
}

func u8(v Data, tag Tag, what string) (uint8, error) {
	if v.Tag != tag {
		return 0, mismatch("%s: want %s, have %s", what, tag, describeData(v))
	}
	return uint8(v.Value), nil
}

func u16(v Data, tag Tag, what string) (uint16, error) {
	if v.Tag != tag {
		return 0, mismatch("%s: want %s, have %s", what, tag, describeData(v))
	}
	return uint16(v.Value), nil
}

func u32(v Data, tag Tag, what string) (uint32, error) {
	if v.Tag != tag {
		return 0, mismatch("%s: want %s, have %s", what, tag, describeData(v))
	}
	return uint32(v.Value), nil
}
