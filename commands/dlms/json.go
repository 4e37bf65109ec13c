package dlms

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// dataJSON is the JSON form of Data. "type" is for readers and ignored when
// decoding; "tag" decides.
type dataJSON struct {
	Tag         Tag             `json:"tag"`
	Type        string          `json:"type,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	Raw         *uint8          `json:"raw,omitempty"`
	Bits        *int            `json:"bits,omitempty"`
	Text        *string         `json:"text,omitempty"`
	Hex         *string         `json:"hex,omitempty"`
	Description *TypeDesc       `json:"description,omitempty"`
	Elements    []Data          `json:"elements,omitempty"`
	Form        LengthForm      `json:"form,omitempty"`
}

// MarshalJSON writes d as an object: "tag" (the number) and "type" (its
// name); then "value" for numbers (a JSON number, or true/false for a
// boolean, with "raw" holding a boolean byte other than 00 and 01),
// "hex" for bytes (or "text" for a visible-string or utf8-string that is
// valid UTF-8), "bits" for the bit count of a bit-string, "elements" for
// arrays, structures and compact arrays, "description" for the type
// description of a compact array, and "form" when a length was not written
// in its shortest form.
func (d Data) MarshalJSON() ([]byte, error) {
	j := dataJSON{Tag: d.Tag, Type: d.Tag.String(), Form: d.Form}
	switch d.Tag.kind() {
	case kindUnknown:
		return nil, invalid("unknown data tag 0x%02x", uint8(d.Tag))
	case kindList:
		j.Elements = d.Elems
	case kindCompact:
		j.Description, j.Elements = d.Type, d.Elems
	case kindInt:
		j.Value = json.RawMessage(fmt.Sprint(d.Int()))
	case kindUint:
		if d.Tag == TagBoolean {
			j.Value = json.RawMessage(fmt.Sprint(d.Value != 0))
			if d.Value > 1 {
				raw := uint8(d.Value)
				j.Raw = &raw
			}
			break
		}
		j.Value = json.RawMessage(fmt.Sprint(d.Value))
	case kindString:
		if d.Tag != TagOctetString && utf8.Valid(d.Bytes) {
			s := string(d.Bytes)
			j.Text = &s
			break
		}
		fallthrough
	case kindFixed:
		h := hex.EncodeToString(d.Bytes)
		j.Hex = &h
	case kindBits:
		h, n := hex.EncodeToString(d.Bytes), d.BitLen
		j.Hex, j.Bits = &h, &n
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes. Only "tag" and the
// fields of that tag are read; "type" is ignored. An octet-string may be
// given as "text" instead of "hex".
func (d *Data) UnmarshalJSON(b []byte) error {
	var j dataJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t := j.Tag
	out := Data{Tag: t, Form: j.Form}
	switch t.kind() {
	case kindUnknown:
		return invalid("unknown data tag 0x%02x", uint8(t))
	case kindNull:
	case kindList:
		out.Elems = j.Elements
	case kindCompact:
		if j.Description == nil {
			return invalid("compact-array without a description")
		}
		out.Type, out.Elems = j.Description, j.Elements
	case kindInt:
		var v int64
		if err := json.Unmarshal(j.Value, &v); err != nil {
			return invalid("%s value: %v", t, err)
		}
		bits := 8 * t.size()
		if bits < 64 && (v < -(1<<(bits-1)) || v >= 1<<(bits-1)) {
			return invalid("%s value %d out of range", t, v)
		}
		out.Value = uint64(v)
		if bits < 64 {
			out.Value &= 1<<bits - 1
		}
	case kindUint:
		if t == TagBoolean {
			var v bool
			if err := json.Unmarshal(j.Value, &v); err != nil {
				return invalid("boolean value: %v", err)
			}
			out.Value = 0
			if v {
				out.Value = 1
			}
			if j.Raw != nil {
				if (*j.Raw != 0) != v {
					return invalid("boolean raw byte 0x%02x contradicts value %t", *j.Raw, v)
				}
				out.Value = uint64(*j.Raw)
			}
			break
		}
		var v uint64
		if err := json.Unmarshal(j.Value, &v); err != nil {
			return invalid("%s value: %v", t, err)
		}
		if bits := 8 * t.size(); bits < 64 && v>>bits != 0 {
			return invalid("%s value %d out of range", t, v)
		}
		out.Value = v
	case kindString, kindFixed, kindBits:
		switch {
		case j.Hex != nil && j.Text != nil:
			return invalid("%s has both hex and text", t)
		case j.Text != nil && t.kind() == kindString:
			out.Bytes = []byte(*j.Text)
		case j.Hex != nil:
			v, err := hex.DecodeString(*j.Hex)
			if err != nil {
				return invalid("%s hex: %v", t, err)
			}
			out.Bytes = v
		default:
			return invalid("%s without hex", t)
		}
		if t.kind() == kindFixed && len(out.Bytes) != t.size() {
			return invalid("%s of %d bytes, want %d", t, len(out.Bytes), t.size())
		}
		if t.kind() == kindBits {
			if j.Bits == nil || *j.Bits < 0 || len(out.Bytes) != (*j.Bits+7)/8 {
				return invalid("bit-string needs bits matching its %d bytes", len(out.Bytes))
			}
			out.BitLen = *j.Bits
		}
	}
	*d = out
	return nil
}

type typeDescJSON struct {
	Tag      Tag        `json:"tag"`
	Type     string     `json:"type,omitempty"`
	Count    *uint16    `json:"count,omitempty"`
	Elements []TypeDesc `json:"elements,omitempty"`
}

// MarshalJSON writes t as {"tag", "type"} plus "count" and "elements" (one
// element type) for an array and "elements" for a structure.
func (t TypeDesc) MarshalJSON() ([]byte, error) {
	j := typeDescJSON{Tag: t.Tag, Type: t.Tag.String()}
	switch t.Tag {
	case TagArray:
		c := t.Count
		j.Count, j.Elements = &c, t.Elems
	case TagStructure:
		j.Elements = t.Elems
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (t *TypeDesc) UnmarshalJSON(b []byte) error {
	var j typeDescJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := TypeDesc{Tag: j.Tag, Elems: j.Elements}
	if j.Tag == TagArray {
		if j.Count == nil || len(j.Elements) != 1 {
			return invalid("array type description needs a count and one element type")
		}
		out.Count = *j.Count
	}
	*t = out
	return nil
}
