package dlms

import (
	"encoding/json"
	"fmt"
)

// APDU tags (gbcs-payloads.md 4.1).
const (
	TagAccessRequest    = 0xD9
	TagAccessResponse   = 0xDA
	TagDataNotification = 0x0F
)

// InvokeID returns the long-invoke-id-and-priority GBCS uses for a message
// with header originator counter counter: 0x20000000 | (counter & 0xFFFFFF)
// (gbcs-payloads.md 4.1).
func InvokeID(counter uint64) uint32 { return 0x20000000 | uint32(counter&0xFFFFFF) }

// APDU is one parsed DLMS payload: exactly one of its fields is set.
type APDU struct {
	AccessRequest    *AccessRequest    `json:"access-request,omitempty"`
	AccessResponse   *AccessResponse   `json:"access-response,omitempty"`
	DataNotification *DataNotification `json:"data-notification,omitempty"`
}

// Kind returns "access-request", "access-response", "data-notification",
// or "" for an APDU with no field set.
func (a *APDU) Kind() string {
	switch {
	case a.AccessRequest != nil:
		return "access-request"
	case a.AccessResponse != nil:
		return "access-response"
	case a.DataNotification != nil:
		return "data-notification"
	}
	return ""
}

// InvokeID returns the long-invoke-id-and-priority of whichever APDU is set.
func (a *APDU) InvokeID() uint32 {
	switch {
	case a.AccessRequest != nil:
		return a.AccessRequest.InvokeID
	case a.AccessResponse != nil:
		return a.AccessResponse.InvokeID
	case a.DataNotification != nil:
		return a.DataNotification.InvokeID
	}
	return 0
}

// Parse reads one DLMS APDU filling b, choosing the kind by its first byte:
// D9 ACCESS-Request, DA ACCESS-Response, 0F DATA-NOTIFICATION.
func Parse(b []byte) (*APDU, error) {
	if len(b) == 0 {
		return nil, parseErr("apdu.tag", 0, "empty input")
	}
	r := &reader{b: b}
	var a APDU
	var err error
	switch b[0] {
	case TagAccessRequest:
		a.AccessRequest = new(AccessRequest)
		err = a.AccessRequest.read(r)
	case TagAccessResponse:
		a.AccessResponse = new(AccessResponse)
		err = a.AccessResponse.read(r)
	case TagDataNotification:
		a.DataNotification = new(DataNotification)
		err = a.DataNotification.read(r)
	default:
		return nil, parseErr("apdu.tag", 0, "tag 0x%02x: want D9, DA or 0F", b[0])
	}
	if err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, parseErr(a.Kind(), r.off, "%d bytes after the APDU", r.remaining())
	}
	return &a, nil
}

// MarshalBinary returns the encoding of whichever APDU is set.
func (a *APDU) MarshalBinary() ([]byte, error) { return a.AppendBinary(nil) }

// AppendBinary appends the encoding of whichever APDU is set to b.
func (a *APDU) AppendBinary(b []byte) ([]byte, error) {
	n := 0
	for _, set := range []bool{a.AccessRequest != nil, a.AccessResponse != nil, a.DataNotification != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, invalid("APDU with %d kinds set, want exactly 1", n)
	}
	switch {
	case a.AccessRequest != nil:
		return a.AccessRequest.AppendBinary(b)
	case a.AccessResponse != nil:
		return a.AccessResponse.AppendBinary(b)
	}
	return a.DataNotification.AppendBinary(b)
}

// readHeader reads the tag, the invoke id and the date-time common to the
// three APDUs. The date-time is an untagged octet-string: 00 (absent, every
// GBCS payload) or 0C and 12 bytes.
func (r *reader) readHeader(kind string) (uint32, *DateTime, error) {
	p := &path{name: kind, index: -1}
	r.off++ // tag, checked by Parse
	v, err := r.uint(p.sub("invoke-id"), 4)
	if err != nil {
		return 0, nil, err
	}
	at := r.off
	n, err := r.byte(p.sub("date-time"))
	if err != nil {
		return 0, nil, err
	}
	switch n {
	case 0:
		return uint32(v), nil, nil
	case 12:
		s, err := r.bytes(p.sub("date-time"), 12)
		if err != nil {
			return 0, nil, err
		}
		dt := DateTime(s)
		return uint32(v), &dt, nil
	}
	return 0, nil, parseErr(kind+".date-time", at, "length %d: want 0 (absent) or 12", n)
}

func appendHeader(b []byte, tag byte, invoke uint32, dt *DateTime) []byte {
	b = append(b, tag, byte(invoke>>24), byte(invoke>>16), byte(invoke>>8), byte(invoke))
	if dt == nil {
		return append(b, 0)
	}
	b = append(b, 12)
	return append(b, dt[:]...)
}

// SpecKind is the choice of an access request or response specification.
type SpecKind uint8

// Specification kinds (IEC 62056-5-3 ACCESS service; gbcs-payloads.md 4.1).
const (
	Get              SpecKind = 1
	Set              SpecKind = 2
	Action           SpecKind = 3
	GetWithSelection SpecKind = 4
	SetWithSelection SpecKind = 5
)

// String returns "get", "set", "action", "get-with-selection",
// "set-with-selection" or "kind N".
func (k SpecKind) String() string {
	switch k {
	case Get:
		return "get"
	case Set:
		return "set"
	case Action:
		return "action"
	case GetWithSelection:
		return "get-with-selection"
	case SetWithSelection:
		return "set-with-selection"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// RequestSpec is one access request specification: the choice, the COSEM
// descriptor (class, logical name, attribute or method id) and, for the
// with-selection kinds, the access selector and its parameters.
type RequestSpec struct {
	Kind  SpecKind `json:"kind"`
	Class uint16   `json:"class"`
	OBIS  OBIS     `json:"obis"`
	// ID is the attribute id (get, set) or the method id (action).
	ID uint8 `json:"id"`
	// Selector and Parameters are the access selector and its parameters
	// (one tagged Data) of the with-selection kinds; zero otherwise.
	Selector   uint8 `json:"selector,omitempty"`
	Parameters *Data `json:"parameters,omitempty"`
}

// MarshalJSON adds the readable name of the kind and, when the package
// knows it, of the COSEM object ("name").
func (s RequestSpec) MarshalJSON() ([]byte, error) {
	type plain RequestSpec
	return json.Marshal(struct {
		plain
		KindName string `json:"kind-name"`
		Name     string `json:"name,omitempty"`
	}{plain(s), s.Kind.String(), s.Name()})
}

// UnmarshalJSON reads the form MarshalJSON writes; the names are ignored.
func (s *RequestSpec) UnmarshalJSON(b []byte) error {
	type plain RequestSpec
	return json.Unmarshal(b, (*plain)(s))
}

func (r *reader) requestSpec(p *path) (RequestSpec, error) {
	at := r.off
	c, err := r.byte(p.sub("choice"))
	if err != nil {
		return RequestSpec{}, err
	}
	s := RequestSpec{Kind: SpecKind(c)}
	if s.Kind < Get || s.Kind > SetWithSelection {
		return RequestSpec{}, parseErr(p.sub("choice").String(), at, "choice %d: want 1 to 5", c)
	}
	v, err := r.uint(p.sub("class-id"), 2)
	if err != nil {
		return RequestSpec{}, err
	}
	s.Class = uint16(v)
	o, err := r.bytes(p.sub("obis"), 6)
	if err != nil {
		return RequestSpec{}, err
	}
	s.OBIS = OBIS(o)
	if s.ID, err = r.byte(p.sub("id")); err != nil {
		return RequestSpec{}, err
	}
	if s.Kind == GetWithSelection || s.Kind == SetWithSelection {
		if s.Selector, err = r.byte(p.sub("access-selector")); err != nil {
			return RequestSpec{}, err
		}
		d, err := r.data(&path{parent: p, name: "access-parameters", index: -1}, 0)
		if err != nil {
			return RequestSpec{}, err
		}
		s.Parameters = &d
	}
	return s, nil
}

func (s *RequestSpec) appendBinary(b []byte) ([]byte, error) {
	if s.Kind < Get || s.Kind > SetWithSelection {
		return nil, invalid("request specification kind %d", s.Kind)
	}
	b = append(b, byte(s.Kind), byte(s.Class>>8), byte(s.Class))
	b = append(b, s.OBIS[:]...)
	b = append(b, s.ID)
	if s.Kind == GetWithSelection || s.Kind == SetWithSelection {
		if s.Parameters == nil {
			return nil, invalid("%s without access parameters", s.Kind)
		}
		b = append(b, s.Selector)
		return s.Parameters.AppendBinary(b)
	}
	if s.Parameters != nil || s.Selector != 0 {
		return nil, invalid("%s with an access selector", s.Kind)
	}
	return b, nil
}

// AccessRequest is a DLMS ACCESS-Request (tag D9): n request specifications
// and m Data values, one per specification in GBCS (null-data for a get,
// the new value for a set, the method parameter for an action).
type AccessRequest struct {
	InvokeID uint32        `json:"invoke-id"`
	DateTime *DateTime     `json:"date-time,omitempty"`
	Specs    []RequestSpec `json:"specs"`
	Data     []Data        `json:"data"`
}

func (q *AccessRequest) read(r *reader) error {
	var err error
	if q.InvokeID, q.DateTime, err = r.readHeader("access-request"); err != nil {
		return err
	}
	at := r.off
	n, err := r.minimalLength(name("access-request.spec-count"))
	if err != nil {
		return err
	}
	if 10*n > r.remaining() {
		return parseErr("access-request.spec-count", at, "%d specifications of 10 bytes or more, %d bytes remain", n, r.remaining())
	}
	q.Specs = make([]RequestSpec, n)
	for i := range q.Specs {
		if q.Specs[i], err = r.requestSpec(&path{name: "access-request.spec", index: i}); err != nil {
			return err
		}
	}
	if q.Data, err = r.dataList("access-request.data"); err != nil {
		return err
	}
	return nil
}

// dataList reads a count and that many tagged Data values.
func (r *reader) dataList(field string) ([]Data, error) {
	at := r.off
	m, err := r.minimalLength(name(field + "-count"))
	if err != nil {
		return nil, err
	}
	if m > r.remaining() {
		return nil, parseErr(field+"-count", at, "%d values, %d bytes remain", m, r.remaining())
	}
	list := make([]Data, m)
	for i := range list {
		if list[i], err = r.data(&path{name: field, index: i}, 0); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func appendDataList(b []byte, list []Data) ([]byte, error) {
	if len(list) > maxLength {
		return nil, invalid("%d values, at most %d", len(list), maxLength)
	}
	b = appendLength(b, len(list), LengthMinimal)
	var err error
	for i := range list {
		if b, err = list[i].AppendBinary(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// MarshalBinary returns the encoding of q.
func (q *AccessRequest) MarshalBinary() ([]byte, error) { return q.AppendBinary(nil) }

// AppendBinary appends the encoding of q to b.
func (q *AccessRequest) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, TagAccessRequest, q.InvokeID, q.DateTime)
	if len(q.Specs) > maxLength {
		return nil, invalid("%d request specifications", len(q.Specs))
	}
	b = appendLength(b, len(q.Specs), LengthMinimal)
	var err error
	for i := range q.Specs {
		if b, err = q.Specs[i].appendBinary(b); err != nil {
			return nil, fmt.Errorf("access-request spec %d: %w", i, err)
		}
	}
	return appendDataList(b, q.Data)
}

// ResponseSpec is one access response specification: the kind (get, set or
// action; a get-with-selection is answered as a get) and the result.
type ResponseSpec struct {
	Kind SpecKind `json:"kind"`
	// Result is a data-access-result for get and set and an action-result
	// for action; 0 is success.
	Result uint8 `json:"result"`
}

// ResultName returns the name of the result for the kind, such as
// "success", "hardware-fault" or "other-reason".
func (s ResponseSpec) ResultName() string {
	if s.Kind == Action {
		return ActionResult(s.Result).String()
	}
	return DataAccessResult(s.Result).String()
}

// MarshalJSON adds the readable names of the kind and the result.
func (s ResponseSpec) MarshalJSON() ([]byte, error) {
	type plain ResponseSpec
	return json.Marshal(struct {
		plain
		KindName   string `json:"kind-name"`
		ResultName string `json:"result-name"`
	}{plain(s), s.Kind.String(), s.ResultName()})
}

// UnmarshalJSON reads the form MarshalJSON writes; the names are ignored.
func (s *ResponseSpec) UnmarshalJSON(b []byte) error {
	type plain ResponseSpec
	return json.Unmarshal(b, (*plain)(s))
}

// AccessResponse is a DLMS ACCESS-Response (tag DA): the optional copy of
// the request specifications (absent, 00, in every GBCS payload), the list
// of data and one response specification per request specification.
type AccessResponse struct {
	InvokeID uint32    `json:"invoke-id"`
	DateTime *DateTime `json:"date-time,omitempty"`
	// RequestSpecs is the access-request-specification, written only when
	// HasRequestSpecs is set (01, then the count and the specifications).
	HasRequestSpecs bool           `json:"has-request-specs,omitempty"`
	RequestSpecs    []RequestSpec  `json:"request-specs,omitempty"`
	Data            []Data         `json:"data"`
	Results         []ResponseSpec `json:"results"`
}

func (s *AccessResponse) read(r *reader) error {
	var err error
	if s.InvokeID, s.DateTime, err = r.readHeader("access-response"); err != nil {
		return err
	}
	at := r.off
	opt, err := r.byte(name("access-response.access-request-specification"))
	if err != nil {
		return err
	}
	switch opt {
	case 0:
	case 1:
		s.HasRequestSpecs = true
		at := r.off
		n, err := r.minimalLength(name("access-response.request-spec-count"))
		if err != nil {
			return err
		}
		if 10*n > r.remaining() {
			return parseErr("access-response.request-spec-count", at, "%d specifications of 10 bytes or more, %d bytes remain", n, r.remaining())
		}
		s.RequestSpecs = make([]RequestSpec, n)
		for i := range s.RequestSpecs {
			if s.RequestSpecs[i], err = r.requestSpec(&path{name: "access-response.request-spec", index: i}); err != nil {
				return err
			}
		}
	default:
		return parseErr("access-response.access-request-specification", at, "presence byte 0x%02x: want 00 or 01", opt)
	}
	if s.Data, err = r.dataList("access-response.data"); err != nil {
		return err
	}
	at = r.off
	n, err := r.minimalLength(name("access-response.result-count"))
	if err != nil {
		return err
	}
	if 2*n > r.remaining() {
		return parseErr("access-response.result-count", at, "%d results of 2 bytes, %d bytes remain", n, r.remaining())
	}
	s.Results = make([]ResponseSpec, n)
	for i := range s.Results {
		at := r.off
		k, _ := r.byte(name("access-response.result")) // bounded by the count check
		res, _ := r.byte(name("access-response.result"))
		if SpecKind(k) < Get || SpecKind(k) > Action {
			return parseErr(fmt.Sprintf("access-response.result[%d].choice", i), at, "choice %d: want 1 to 3", k)
		}
		s.Results[i] = ResponseSpec{Kind: SpecKind(k), Result: res}
	}
	return nil
}

// MarshalBinary returns the encoding of s.
func (s *AccessResponse) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding of s to b.
func (s *AccessResponse) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, TagAccessResponse, s.InvokeID, s.DateTime)
	var err error
	if !s.HasRequestSpecs {
		if len(s.RequestSpecs) != 0 {
			return nil, invalid("access-response has request specifications but HasRequestSpecs is false")
		}
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendLength(b, len(s.RequestSpecs), LengthMinimal)
		for i := range s.RequestSpecs {
			if b, err = s.RequestSpecs[i].appendBinary(b); err != nil {
				return nil, fmt.Errorf("access-response request spec %d: %w", i, err)
			}
		}
	}
	if b, err = appendDataList(b, s.Data); err != nil {
		return nil, err
	}
	if len(s.Results) > maxLength {
		return nil, invalid("%d results", len(s.Results))
	}
	b = appendLength(b, len(s.Results), LengthMinimal)
	for i, res := range s.Results {
		if res.Kind < Get || res.Kind > Action {
			return nil, invalid("access-response result %d kind %d", i, res.Kind)
		}
		b = append(b, byte(res.Kind), res.Result)
	}
	return b, nil
}

// DataNotification is a DLMS DATA-NOTIFICATION (tag 0F), the APDU of ESME
// alerts (gbcs-payloads.md 6.2): one Data value.
type DataNotification struct {
	InvokeID uint32    `json:"invoke-id"`
	DateTime *DateTime `json:"date-time,omitempty"`
	Body     Data      `json:"body"`
}

func (n *DataNotification) read(r *reader) error {
	var err error
	if n.InvokeID, n.DateTime, err = r.readHeader("data-notification"); err != nil {
		return err
	}
	n.Body, err = r.data(&path{name: "data-notification.body", index: -1}, 0)
	return err
}

// MarshalBinary returns the encoding of n.
func (n *DataNotification) MarshalBinary() ([]byte, error) { return n.AppendBinary(nil) }

// AppendBinary appends the encoding of n to b.
func (n *DataNotification) AppendBinary(b []byte) ([]byte, error) {
	b = appendHeader(b, TagDataNotification, n.InvokeID, n.DateTime)
	return n.Body.AppendBinary(b)
}

// DataAccessResult is the result of a get or set (gbcs-payloads.md 4.1).
type DataAccessResult uint8

// The results GB devices report most (the DCC's reference data uses 0, 1
// and 250).
const (
	DataAccessSuccess       DataAccessResult = 0
	DataAccessHardwareFault DataAccessResult = 1
	DataAccessOtherReason   DataAccessResult = 250
	ActionSuccess           ActionResult     = 0
	ActionHardwareFault     ActionResult     = 1
	ActionOtherReason       ActionResult     = 250
)

var dataAccessResults = map[DataAccessResult]string{
	0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
	4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
	12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
	15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
	18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason",
}

// String returns the name of the result, or "data-access-result N".
func (r DataAccessResult) String() string {
	if s, ok := dataAccessResults[r]; ok {
		return s
	}
	return fmt.Sprintf("data-access-result %d", uint8(r))
}

// ActionResult is the result of an action (gbcs-payloads.md 4.1).
type ActionResult uint8

var actionResults = map[ActionResult]string{
	0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
	4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
	12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
	15: "long-action-aborted", 16: "no-long-action-in-progress", 250: "other-reason",
}

// String returns the name of the result, or "action-result N".
func (r ActionResult) String() string {
	if s, ok := actionResults[r]; ok {
		return s
	}
	return fmt.Sprintf("action-result %d", uint8(r))
}
