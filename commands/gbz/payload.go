package gbz

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
)

// ProfileID is the ZigBee Smart Energy profile id that opens every GBZ
// payload, written 01 09.
const ProfileID = 0x0109

// Control is the control byte of a GBZ component (section 5.1). Bit 0 marks
// the last component, bit 1 an encrypted one and bit 4 the presence of a
// from-date-time; other bits are kept as they are.
type Control uint8

// The control bits of section 5.1.
const (
	ControlLast         Control = 0x01
	ControlEncrypted    Control = 0x02
	ControlFromDateTime Control = 0x10
)

// Last reports bit 0, set on the final component of a payload.
func (c Control) Last() bool { return c&ControlLast != 0 }

// Encrypted reports bit 1.
func (c Control) Encrypted() bool { return c&ControlEncrypted != 0 }

// FromDateTime reports bit 4.
func (c Control) FromDateTime() bool { return c&ControlFromDateTime != 0 }

// String lists the bits set, for example "last|encrypted", or "none".
func (c Control) String() string {
	var parts []string
	if c.Last() {
		parts = append(parts, "last")
	}
	if c.Encrypted() {
		parts = append(parts, "encrypted")
	}
	if c.FromDateTime() {
		parts = append(parts, "from-date-time")
	}
	if rest := c &^ (ControlLast | ControlEncrypted | ControlFromDateTime); rest != 0 {
		parts = append(parts, fmt.Sprintf("other-bits-0x%02x", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Encryption holds what an encrypted component carries in place of its
// clear ZCL payload: the additional header and the ciphered information
// (sections 2.1 and 5.1).
type Encryption struct {
	// Control is the additional header control byte, 0x00 in every known
	// payload; kept as read.
	Control uint8 `json:"control"`
	// FrameCounter numbers the encrypted components of a payload 0, 1, 2 ...
	FrameCounter uint8 `json:"frame_counter"`
	// Ciphered is the ciphered block of section 2.2 (0x31, a 4-byte
	// invocation counter, the ciphertext, a 12-byte tag), without its 2-byte
	// length. Its plaintext is the component's ZCL payload.
	Ciphered Hex `json:"ciphered"`
}

// Component is one GBZ component: a ZCL command on one cluster, in clear or
// encrypted.
//
// The encoder derives the encrypted and from-date-time bits of the control
// byte from the presence of Encryption and FromDateTime, and writes every
// other bit of Control as it is; a parsed component has them in agreement,
// so it re-encodes to the same bytes.
type Component struct {
	// Control is the component control byte.
	Control Control `json:"control"`
	// Cluster is the ZCL cluster id.
	Cluster Cluster `json:"cluster"`
	// FromDateTime is the optional from-date-time, big-endian on the wire;
	// nil when absent.
	FromDateTime *UTC `json:"from_date_time,omitempty"`
	// Encryption is set for an encrypted component and nil for a clear one.
	Encryption *Encryption `json:"encryption,omitempty"`
	// ZCL is the ZCL header.
	ZCL Header `json:"zcl"`
	// Payload is the clear ZCL payload; empty for an encrypted component.
	Payload Hex `json:"payload,omitempty"`
}

// MarshalJSON adds the control_name, cluster_name, command_name and
// from_date_time_name display fields.
func (c Component) MarshalJSON() ([]byte, error) {
	type plain Component
	v := struct {
		plain
		ControlName      string `json:"control_name"`
		ClusterName      string `json:"cluster_name"`
		CommandName      string `json:"command_name,omitempty"`
		FromDateTimeName string `json:"from_date_time_name,omitempty"`
	}{plain: plain(c), ControlName: c.control().String(), ClusterName: c.Cluster.String(), CommandName: CommandName(c.Cluster, c.ZCL)}
	if c.FromDateTime != nil {
		v.FromDateTimeName = c.FromDateTime.String()
	}
	return json.Marshal(v)
}

// control returns the control byte the encoder writes.
func (c *Component) control() Control {
	ctl := c.Control &^ (ControlEncrypted | ControlFromDateTime)
	if c.Encryption != nil {
		ctl |= ControlEncrypted
	}
	if c.FromDateTime != nil {
		ctl |= ControlFromDateTime
	}
	return ctl
}

// Encrypted reports whether c is an encrypted component.
func (c *Component) Encrypted() bool { return c.Encryption != nil }

// Payload is a GBZ payload: profile id 0x0109, a component count and the
// components (section 5.1).
type Payload struct {
	// Components lists the components in order; the count byte is
	// len(Components).
	Components []Component `json:"components"`
}

const (
	componentHeaderLen  = 5 // control, cluster id, length
	fromDateTimeLen     = 4
	additionalHeaderLen = 2
	zclHeaderLen        = 3
	cipheredLenLen      = 2
	maxComponents       = 0xFF
	maxComponentLen     = 0xFFFF
)

// Parse reads a whole GBZ payload (section 5.1). The bytes must hold exactly
// the components the count announces, each ending where its length says.
// ZCL payloads are not interpreted here: see ParseReadAttributes and the
// other ZCL readers, and Describe. The returned value's byte slices alias b.
//
// A GBZ alert (CRA flag 3) has a different layout after the count: read it
// with ParseAlert.
func Parse(b []byte) (*Payload, error) {
	n, off, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	comps, off, err := parseComponents(b, off, n)
	if err != nil {
		return nil, err
	}
	if off != len(b) {
		return nil, parseErr("payload", off, "%d bytes after the last of %d components", len(b)-off, n)
	}
	return &Payload{Components: comps}, nil
}

// parseHeader reads the profile id and the count byte.
func parseHeader(b []byte) (n, off int, err error) {
	if len(b) < 2 {
		return 0, 0, parseErr("profile-id", 0, "need 2 bytes, have %d", len(b))
	}
	if p := binary.BigEndian.Uint16(b); p != ProfileID {
		return 0, 0, parseErr("profile-id", 0, "0x%04x, want 0x%04x", p, ProfileID)
	}
	if len(b) < 3 {
		return 0, 2, parseErr("component-count", 2, "missing")
	}
	return int(b[2]), 3, nil
}

// parseComponents reads n components starting at off.
func parseComponents(b []byte, off, n int) ([]Component, int, error) {
	comps := make([]Component, 0, min(n, len(b)/(componentHeaderLen+zclHeaderLen)+1))
	for i := range n {
		c, next, err := parseComponent(b, off, i, n)
		if err != nil {
			return nil, 0, err
		}
		comps = append(comps, c)
		off = next
	}
	return comps, off, nil
}

// parseComponent reads component i of n at off and returns it and the
// offset after it.
func parseComponent(b []byte, off, i, n int) (Component, int, error) {
	field := fmt.Sprintf("component[%d]", i)
	if len(b)-off < componentHeaderLen {
		return Component{}, 0, parseErr(field, off, "component %d of %d needs a 5-byte header but %d bytes remain", i+1, n, len(b)-off)
	}
	c := Component{
		Control: Control(b[off]),
		Cluster: Cluster(binary.BigEndian.Uint16(b[off+1:])),
	}
	length := int(binary.BigEndian.Uint16(b[off+3:]))
	if length > len(b)-off-componentHeaderLen {
		return Component{}, 0, parseErr(field+".length", off+3, "length %d exceeds the %d bytes remaining", length, len(b)-off-componentHeaderLen)
	}
	start := off + componentHeaderLen
	end := start + length
	need := zclHeaderLen
	if c.Control.FromDateTime() {
		need += fromDateTimeLen
	}
	if c.Control.Encrypted() {
		need += additionalHeaderLen + cipheredLenLen
	}
	if length < need {
		return Component{}, 0, parseErr(field+".length", off+3, "length %d ends before the component's %d-byte fixed fields (control 0x%02x)", length, need, uint8(c.Control))
	}
	p := start
	if c.Control.FromDateTime() {
		t := UTC(binary.BigEndian.Uint32(b[p:]))
		c.FromDateTime = &t
		p += fromDateTimeLen
	}
	if c.Control.Encrypted() {
		c.Encryption = &Encryption{Control: b[p], FrameCounter: b[p+1]}
		p += additionalHeaderLen
	}
	c.ZCL = Header{FrameControl: FrameControl(b[p]), Sequence: b[p+1], Command: b[p+2]}
	p += zclHeaderLen
	if c.Encryption != nil {
		cl := int(binary.BigEndian.Uint16(b[p:]))
		if cl != end-p-cipheredLenLen {
			return Component{}, 0, parseErr(field+".ciphered-length", p, "ciphered information length %d, but the component length leaves %d bytes", cl, end-p-cipheredLenLen)
		}
		p += cipheredLenLen
		c.Encryption.Ciphered = nonEmpty(b[p:end])
	} else {
		c.Payload = nonEmpty(b[p:end])
	}
	return c, end, nil
}

func nonEmpty(b []byte) Hex {
	if len(b) == 0 {
		return nil
	}
	return Hex(b)
}

// Marshal returns the encoding of p.
func (p *Payload) Marshal() ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the encoding of p to b. It fails, wrapping
// ErrInvalid, for more than 255 components, a component longer than 65535
// bytes, or an encrypted component that also carries a clear payload.
func (p *Payload) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Components) > maxComponents {
		return nil, fmt.Errorf("%w: %d components exceed the count byte's 255", ErrInvalid, len(p.Components))
	}
	b = binary.BigEndian.AppendUint16(b, ProfileID)
	b = append(b, byte(len(p.Components)))
	return appendComponents(b, p.Components)
}

func appendComponents(b []byte, comps []Component) ([]byte, error) {
	for i := range comps {
		var err error
		if b, err = comps[i].AppendBinary(b); err != nil {
			return nil, fmt.Errorf("component %d: %w", i, err)
		}
	}
	return b, nil
}

// Len returns the encoded length of c, including its 5-byte header.
func (c *Component) Len() int {
	n := componentHeaderLen + zclHeaderLen
	if c.FromDateTime != nil {
		n += fromDateTimeLen
	}
	if c.Encryption != nil {
		return n + additionalHeaderLen + cipheredLenLen + len(c.Encryption.Ciphered)
	}
	return n + len(c.Payload)
}

// AppendBinary appends the encoding of one component to b, with its length
// and, when encrypted, its ciphered-information length computed. It fails,
// wrapping ErrInvalid, when a length does not fit its 2-byte field or an
// encrypted component also carries a clear payload.
func (c *Component) AppendBinary(b []byte) ([]byte, error) {
	if c.Encryption != nil && len(c.Payload) != 0 {
		return nil, fmt.Errorf("%w: encrypted component carries a %d-byte clear payload as well", ErrInvalid, len(c.Payload))
	}
	length := c.Len() - componentHeaderLen
	if length > maxComponentLen {
		return nil, fmt.Errorf("%w: component length %d exceeds 65535", ErrInvalid, length)
	}
	b = append(b, byte(c.control()))
	b = binary.BigEndian.AppendUint16(b, uint16(c.Cluster))
	b = binary.BigEndian.AppendUint16(b, uint16(length))
	if c.FromDateTime != nil {
		b = binary.BigEndian.AppendUint32(b, uint32(*c.FromDateTime))
	}
	if c.Encryption != nil {
		b = append(b, c.Encryption.Control, c.Encryption.FrameCounter)
	}
	b = append(b, byte(c.ZCL.FrameControl), c.ZCL.Sequence, c.ZCL.Command)
	if c.Encryption != nil {
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Encryption.Ciphered)))
		return append(b, c.Encryption.Ciphered...), nil
	}
	return append(b, c.Payload...), nil
}

// CipheredBlocks returns a pointer to the ciphered block of every encrypted
// component, in payload order (section 2.1), so a caller can decrypt the
// blocks or replace them in place; the encoder recomputes the lengths. All
// blocks of one message use the same key and IV (section 2.3).
func (p *Payload) CipheredBlocks() []*Hex {
	var out []*Hex
	for i := range p.Components {
		if e := p.Components[i].Encryption; e != nil {
			out = append(out, &e.Ciphered)
		}
	}
	return out
}

// NewCommand builds a command payload from comps as section 5.1 lays it out:
// it sets the last-component bit on the final component only, numbers the
// encrypted components' frame counters 0, 1, 2 ... and sets each ZCL
// transaction sequence number to the component's index. The components are
// copied; comps is not changed.
func NewCommand(comps ...Component) *Payload {
	p := NewResponse(comps...)
	for i := range p.Components {
		p.Components[i].ZCL.Sequence = uint8(i)
	}
	return p
}

// NewResponse is NewCommand for a response or alert: it sets the
// last-component bit and the frame counters but keeps each ZCL transaction
// sequence number as given, since a response component carries the number of
// the command component it answers.
func NewResponse(comps ...Component) *Payload {
	p := &Payload{Components: make([]Component, len(comps))}
	frame := 0
	for i, c := range comps {
		c.Control &^= ControlLast
		if i == len(comps)-1 {
			c.Control |= ControlLast
		}
		if c.Encryption != nil {
			e := *c.Encryption
			e.FrameCounter = uint8(frame)
			frame++
			c.Encryption = &e
		}
		if c.FromDateTime != nil {
			t := *c.FromDateTime
			c.FromDateTime = &t
		}
		p.Components[i] = c
	}
	return p
}

// CipheredBlock is a ciphered block of section 2.2 split into its parts,
// for display; the cryptography that checks and opens it is elsewhere.
type CipheredBlock struct {
	// SecurityControl is 0x31 (authenticated encryption) in every known
	// block.
	SecurityControl uint8 `json:"security_control"`
	// InvocationCounter is always zero in known blocks.
	InvocationCounter uint32 `json:"invocation_counter"`
	// Ciphertext is as long as the plaintext ZCL payload.
	Ciphertext Hex `json:"ciphertext"`
	// Tag is the 12-byte truncated AES-GCM tag.
	Tag Hex `json:"tag"`
}

// Ciphered block layout constants (section 2.2).
const (
	// SecurityControlEncrypted is the security control byte of a ciphered
	// block: authenticated encryption.
	SecurityControlEncrypted = 0x31
	cipheredHeaderLen        = 5
	// TagLen is the length of the truncated AES-GCM tag.
	TagLen = 12
)

// SplitCiphered splits a ciphered block into its parts. The slices alias b.
// It needs at least the 5-byte header and the 12-byte tag and does not judge
// the security control byte or the invocation counter.
func SplitCiphered(b []byte) (*CipheredBlock, error) {
	if len(b) < cipheredHeaderLen+TagLen {
		return nil, parseErr("ciphered-block", 0, "%d bytes, shorter than the 5-byte header and 12-byte tag", len(b))
	}
	return &CipheredBlock{
		SecurityControl:   b[0],
		InvocationCounter: binary.BigEndian.Uint32(b[1:]),
		Ciphertext:        Hex(b[cipheredHeaderLen : len(b)-TagLen]),
		Tag:               Hex(b[len(b)-TagLen:]),
	}, nil
}

// AppendBinary appends the ciphered block. It fails, wrapping ErrInvalid,
// when the tag is not 12 bytes.
func (c *CipheredBlock) AppendBinary(b []byte) ([]byte, error) {
	if len(c.Tag) != TagLen {
		return nil, fmt.Errorf("%w: ciphered block tag is %d bytes, want %d", ErrInvalid, len(c.Tag), TagLen)
	}
	b = append(b, c.SecurityControl)
	b = binary.BigEndian.AppendUint32(b, c.InvocationCounter)
	b = append(b, c.Ciphertext...)
	return append(b, c.Tag...), nil
}
