package device

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrPayload is wrapped by every error about a use-case payload that does
// not decode, or a value that cannot be encoded.
var ErrPayload = errors.New("device: invalid payload")

func payloadErr(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrPayload, what, fmt.Sprintf(format, args...))
}

// DLMS tags and codes used by the supply-switch and balance-reset payloads.
// The layout follows the DLMS access-request of the GBCS section 18.4 test
// vector (ECS04b): D9, a 4-byte long-invoke-id-and-priority, a date-time
// (00 when absent), the list of request specifications, then the list of
// data.
const (
	tagAccessRequest  = 0xD9
	tagAccessResponse = 0xDA
	reqGet            = 0x01
	reqAction         = 0x03
	dataNull          = 0x00
	dataDoubleLong    = 0x05
	dataEnum          = 0x16
	// defaultInvokeID is the long-invoke-id-and-priority of the 18.4
	// vector: break-on-error set, invoke id 1.
	defaultInvokeID = 0x20000001
	// classDisconnectControl is DLMS interface class 70, the supply switch
	// (load switch or gas valve), at OBIS 0-0-96-3-10-255.
	classDisconnectControl = 70
	// classCredit is DLMS interface class 112, the ESME credit registers at
	// OBIS 0-0-19-10-{0,1,2}-255; method 2 is set_amount_to_value.
	classCredit = 112
	// Disconnect control methods and attributes.
	methodRemoteDisconnect = 1
	methodRemoteReconnect  = 2
	attrControlState       = 3
	methodSetAmount        = 2
)

var (
	obisDisconnect = [6]byte{0, 0, 96, 3, 10, 255}
	obisCredit     = [3][6]byte{{0, 0, 19, 10, 0, 255}, {0, 0, 19, 10, 1, 255}, {0, 0, 19, 10, 2, 255}}
)

// DLMS action and data-access results, as carried in an access response.
const (
	dlmsSuccess          = 0
	dlmsTemporaryFailure = 2
)

// dlmsItem is one request specification of an access request: a get of an
// attribute or an action of a method on a COSEM object.
type dlmsItem struct {
	kind  byte // reqGet or reqAction
	class uint16
	obis  [6]byte
	id    byte // attribute or method id
}

// dlmsData is one element of the data list: null, double-long or enum.
type dlmsData struct {
	tag byte
	val int32
}

func appendDLMSData(b []byte, d dlmsData) []byte {
	b = append(b, d.tag)
	switch d.tag {
	case dataDoubleLong:
		b = binary.BigEndian.AppendUint32(b, uint32(d.val))
	case dataEnum:
		b = append(b, byte(d.val))
	}
	return b
}

func buildAccessRequest(invokeID uint32, items []dlmsItem, data []dlmsData) []byte {
	b := []byte{tagAccessRequest}
	b = binary.BigEndian.AppendUint32(b, invokeID)
	b = append(b, 0x00, byte(len(items)))
	for _, it := range items {
		b = append(b, it.kind)
		b = binary.BigEndian.AppendUint16(b, it.class)
		b = append(b, it.obis[:]...)
		b = append(b, it.id)
	}
	b = append(b, byte(len(data)))
	for _, d := range data {
		b = appendDLMSData(b, d)
	}
	return b
}

type dlmsReader struct {
	what string
	b    []byte
	pos  int
}

func (r *dlmsReader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, payloadErr(r.what, "truncated at byte %d: need %d more bytes, have %d", r.pos, n, len(r.b)-r.pos)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *dlmsReader) byte() (byte, error) {
	s, err := r.bytes(1)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (r *dlmsReader) data() (dlmsData, error) {
	at := r.pos
	t, err := r.byte()
	if err != nil {
		return dlmsData{}, err
	}
	switch t {
	case dataNull:
		return dlmsData{tag: t}, nil
	case dataDoubleLong:
		s, err := r.bytes(4)
		if err != nil {
			return dlmsData{}, err
		}
		return dlmsData{tag: t, val: int32(binary.BigEndian.Uint32(s))}, nil
	case dataEnum:
		v, err := r.byte()
		if err != nil {
			return dlmsData{}, err
		}
		return dlmsData{tag: t, val: int32(v)}, nil
	}
	return dlmsData{}, payloadErr(r.what, "byte %d: unsupported DLMS data tag 0x%02X", at, t)
}

func (r *dlmsReader) end() error {
	if r.pos != len(r.b) {
		return payloadErr(r.what, "%d trailing bytes after byte %d", len(r.b)-r.pos, r.pos)
	}
	return nil
}

// parseAccessRequest reads a DLMS access request of the layout above.
func parseAccessRequest(what string, p []byte) (invokeID uint32, items []dlmsItem, data []dlmsData, err error) {
	r := &dlmsReader{what: what, b: p}
	t, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	if t != tagAccessRequest {
		return 0, nil, nil, payloadErr(what, "want DLMS access-request tag 0xD9, have 0x%02X", t)
	}
	id, err := r.bytes(4)
	if err != nil {
		return 0, nil, nil, err
	}
	invokeID = binary.BigEndian.Uint32(id)
	dt, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	if dt != 0 {
		// A date-time is an octet string of 12 bytes.
		if dt != 12 {
			return 0, nil, nil, payloadErr(what, "date-time length %d, want 0 or 12", dt)
		}
		if _, err := r.bytes(12); err != nil {
			return 0, nil, nil, err
		}
	}
	n, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	for range int(n) {
		s, err := r.bytes(10)
		if err != nil {
			return 0, nil, nil, err
		}
		it := dlmsItem{kind: s[0], class: binary.BigEndian.Uint16(s[1:3]), id: s[9]}
		copy(it.obis[:], s[3:9])
		if it.kind != reqGet && it.kind != reqAction {
			return 0, nil, nil, payloadErr(what, "request specification kind %d, want get (1) or action (3)", it.kind)
		}
		items = append(items, it)
	}
	m, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	for range int(m) {
		d, err := r.data()
		if err != nil {
			return 0, nil, nil, err
		}
		data = append(data, d)
	}
	if err := r.end(); err != nil {
		return 0, nil, nil, err
	}
	return invokeID, items, data, nil
}

// dlmsResult is one entry of an access response: the kind of the request it
// answers and its result code.
type dlmsResult struct {
	kind   byte
	result byte
}

// buildAccessResponse writes DA, the invoke id, an absent date-time, an
// absent request specification (00), the data list and the result list.
func buildAccessResponse(invokeID uint32, data []dlmsData, results []dlmsResult) []byte {
	b := []byte{tagAccessResponse}
	b = binary.BigEndian.AppendUint32(b, invokeID)
	b = append(b, 0x00, 0x00, byte(len(data)))
	for _, d := range data {
		b = appendDLMSData(b, d)
	}
	b = append(b, byte(len(results)))
	for _, r := range results {
		b = append(b, r.kind, r.result)
	}
	return b
}

func parseAccessResponse(what string, p []byte) (invokeID uint32, data []dlmsData, results []dlmsResult, err error) {
	r := &dlmsReader{what: what, b: p}
	t, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	if t != tagAccessResponse {
		return 0, nil, nil, payloadErr(what, "want DLMS access-response tag 0xDA, have 0x%02X", t)
	}
	id, err := r.bytes(4)
	if err != nil {
		return 0, nil, nil, err
	}
	hdr, err := r.bytes(2)
	if err != nil {
		return 0, nil, nil, err
	}
	if !bytes.Equal(hdr, []byte{0, 0}) {
		return 0, nil, nil, payloadErr(what, "want absent date-time and request specification (00 00), have % X", hdr)
	}
	n, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	for range int(n) {
		d, err := r.data()
		if err != nil {
			return 0, nil, nil, err
		}
		data = append(data, d)
	}
	m, err := r.byte()
	if err != nil {
		return 0, nil, nil, err
	}
	for range int(m) {
		s, err := r.bytes(2)
		if err != nil {
			return 0, nil, nil, err
		}
		results = append(results, dlmsResult{kind: s[0], result: s[1]})
	}
	if err := r.end(); err != nil {
		return 0, nil, nil, err
	}
	return binary.BigEndian.Uint32(id), data, results, nil
}
