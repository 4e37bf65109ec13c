package commands

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

// Structure names the grammar of a payload, chosen as the DCC's GBCS parser
// chooses it (spec gbcs-payloads.md section 9): by message code for the
// ASN.1 use cases, otherwise by the payload's first bytes (01 09 GBZ, in its
// alert form when the message is an alert; D9, DA, 0F DLMS).
type Structure string

// The payload structures.
const (
	StructureASN1     Structure = "ASN.1"
	StructureDLMS     Structure = "DLMS"
	StructureGBZ      Structure = "GBZ"
	StructureGBZAlert Structure = "GBZ alert"
	// StructureOpaque is a payload none of the grammars claims; it is kept
	// as bytes.
	StructureOpaque Structure = "opaque"
)

// Payload is a message's payload read by its structure: the generic tree
// (ASN.1 values, DLMS APDU, GBZ components) that re-encodes to the same
// bytes, and, where the use case is one whose layout the spec gives, its
// typed reading.
type Payload struct {
	// Structure is the grammar the payload follows.
	Structure Structure `json:"structure"`
	// Decoded reports whether the payload parsed under its structure.
	Decoded bool `json:"decoded"`
	// Error says why it did not, when it did not.
	Error string `json:"error,omitempty"`
	// Tree is the decoded payload: *dlms.APDU, *gbz.Payload, *gbz.Alert or
	// an asn.Payload; nil when not decoded. On input (EncodePayload) it is
	// the JSON of one of them.
	Tree any `json:"tree,omitempty"`
	// UseCase is the typed reading of the use case the message code names,
	// when the spec details its layout; display only.
	UseCase any `json:"use_case,omitempty"`
	// UseCaseError says why the payload does not fit its use case's layout.
	UseCaseError string `json:"use_case_error,omitempty"`
	// Hex is the payload's bytes.
	Hex string `json:"hex"`
}

// payloadStructure chooses the structure of a payload of code in a message of
// kind c.
func payloadStructure(code MessageCode, c CRA, p []byte) Structure {
	switch {
	case asn.Has(uint16(code), asn.CRA(c)):
		return StructureASN1
	case len(p) >= 2 && p[0] == 0x01 && p[1] == 0x09 && c == Alert:
		return StructureGBZAlert
	case len(p) >= 2 && p[0] == 0x01 && p[1] == 0x09:
		return StructureGBZ
	case len(p) >= 1 && (p[0] == 0xD9 || p[0] == 0xDA || p[0] == 0x0F):
		return StructureDLMS
	}
	return StructureOpaque
}

// ParsePayload parses m's payload by its structure into its tree:
// *dlms.APDU, *gbz.Payload, *gbz.Alert or an asn.Payload; nil for an opaque
// payload. It is the codec's path, without ReadPayload's display fields.
func ParsePayload(m *Message) (Structure, any, error) {
	st := payloadStructure(m.Code, m.CRA, m.Payload)
	var tree any
	var err error
	switch st {
	case StructureASN1:
		var v asn.Payload
		if v, err = asn.Decode(uint16(m.Code), asn.CRA(m.CRA), m.Payload); err == nil {
			tree = v
		}
	case StructureDLMS:
		var a *dlms.APDU
		if a, err = dlms.Parse(m.Payload); err == nil {
			tree = a
		}
	case StructureGBZ:
		var g *gbz.Payload
		if g, err = gbz.Parse(m.Payload); err == nil {
			tree = g
		}
	case StructureGBZAlert:
		var a *gbz.Alert
		if a, err = gbz.ParseAlert(uint16(m.Code), m.Payload); err == nil {
			tree = a
		}
	}
	return st, tree, err
}

// ReadPayload reads m's payload by its structure, for display and for
// gbcs encode: the tree, the typed reading of its use case, the bytes in
// hex. A payload that does not parse is reported in the result (Decoded
// false, Error), not as an error: the message around it may still be worth
// showing.
func ReadPayload(m *Message) Payload {
	st, tree, err := ParsePayload(m)
	p := Payload{Structure: st, Tree: tree, Decoded: tree != nil, Hex: hex.EncodeToString(m.Payload)}
	if err != nil {
		p.Error = err.Error()
	}
	switch t := tree.(type) {
	case *dlms.APDU:
		d, derr := dlms.Describe(uint16(m.Code), t)
		p.useCase(d, derr, dlms.ErrUnknownUseCase)
	case *gbz.Payload:
		d, derr := gbz.Describe(uint16(m.Code), t)
		p.useCase(d, derr, gbz.ErrUnknownUseCase)
	}
	return p
}

func (p *Payload) useCase(d any, err, unknown error) {
	switch {
	case err == nil:
		p.UseCase = d
	case !errors.Is(err, unknown):
		p.UseCaseError = err.Error()
	}
}

// EncodePayload builds the payload bytes of a message of code and kind c
// from p, as gbcs encode reads it from JSON: the tree when p says it was
// decoded (so an edited field changes the bytes and every length around
// it), the hex otherwise. tree is the JSON of p.Tree.
func EncodePayload(code MessageCode, c CRA, structure Structure, decoded bool, tree json.RawMessage, hexPayload string) ([]byte, error) {
	if !decoded || len(tree) == 0 || string(tree) == "null" {
		b, err := hex.DecodeString(hexPayload)
		if err != nil {
			return nil, fmt.Errorf("%w: payload hex: %v", ErrInvalid, err)
		}
		return b, nil
	}
	strict := func(v any) error {
		if err := json.Unmarshal(tree, v); err != nil {
			return fmt.Errorf("%w: %s payload tree: %v", ErrInvalid, structure, err)
		}
		return nil
	}
	var out []byte
	var err error
	switch structure {
	case StructureASN1:
		v, nerr := asn.New(uint16(code), asn.CRA(c))
		if nerr != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, nerr)
		}
		if err := strict(v); err != nil {
			return nil, err
		}
		out, err = asn.Encode(v)
	case StructureDLMS:
		var a dlms.APDU
		if err := strict(&a); err != nil {
			return nil, err
		}
		out, err = a.MarshalBinary()
	case StructureGBZ:
		var g gbz.Payload
		if err := strict(&g); err != nil {
			return nil, err
		}
		out, err = g.Marshal()
	case StructureGBZAlert:
		a := gbz.Alert{MessageCode: uint16(code)}
		if err := strict(&a); err != nil {
			return nil, err
		}
		out, err = a.Marshal()
	default:
		return nil, fmt.Errorf("%w: payload structure %q has no tree; give the payload as hex", ErrInvalid, structure)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the %s payload: %v", ErrInvalid, structure, err)
	}
	return out, nil
}

// cipheredBlocks returns the ciphered blocks of a decoded payload tree (spec
// gbcs-payloads.md 2.1): pointers to their bytes, in order, so they can be
// decrypted or replaced in place.
func cipheredBlocks(tree any) []*[]byte {
	var out []*[]byte
	switch t := tree.(type) {
	case *dlms.APDU:
		for _, d := range dlms.CipheredBlocks(t) {
			out = append(out, &d.Bytes)
		}
	case *gbz.Payload:
		for _, h := range t.CipheredBlocks() {
			out = append(out, (*[]byte)(h))
		}
	case *gbz.Alert:
		// GCS53 carries its encrypted component as an alert's component.
		p := gbz.Payload{Components: t.Components}
		for _, h := range p.CipheredBlocks() {
			out = append(out, (*[]byte)(h))
		}
	}
	return out
}
