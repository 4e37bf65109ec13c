package dlms

import "fmt"

// Object is a COSEM attribute or method of a known object, with a name for
// display.
type Object struct {
	Class uint16
	OBIS  OBIS
	// Method tells a method (action) from an attribute (get, set).
	Method bool
	// ID is the attribute or method id.
	ID uint8
	// Name reads "object: attribute", such as
	// "disconnect control: control_state".
	Name string
}

type objectKey struct {
	class  uint16
	obis   OBIS
	method bool
	id     uint8
}

// knownObjects names the objects of the use cases in gbcs-payloads.md 4.5.
var knownObjects = func() map[objectKey]Object {
	m := make(map[objectKey]Object)
	add := func(class uint16, obis string, method bool, id uint8, name string) {
		o := Object{Class: class, OBIS: MustParseOBIS(obis), Method: method, ID: id, Name: name}
		m[objectKey{o.Class, o.OBIS, o.Method, o.ID}] = o
	}
	const attr, meth = false, true
	add(20, "0-0:13.0.0.255", attr, 7, "activity calendar: season_profile_passive")
	add(20, "0-0:13.0.0.255", attr, 8, "activity calendar: week_profile_table_passive")
	add(20, "0-0:13.0.0.255", attr, 9, "activity calendar: day_profile_table_passive")
	add(20, "0-0:13.0.0.255", attr, 10, "activity calendar: activate_passive_calendar_time")
	add(11, "0-1:11.0.0.255", attr, 2, "special days table: entries")
	for i := range 8 {
		add(21, fmt.Sprintf("0-0:16.1.%d.255", 11+i), attr, 2, fmt.Sprintf("register monitor (block thresholds, TOU rate %d): thresholds", i+1))
	}
	add(9000, "0-0:94.44.2.0", attr, 4, "currency unit (GBCS extended data): value_passive")
	add(9000, "0-0:94.44.2.0", attr, 6, "currency unit (GBCS extended data): activate_passive_value_time")
	add(9000, "0-0:94.44.128.29", attr, 6, "GBCS extended data 0-0:94.44.128.29: activate_passive_value_time")
	add(9000, "0-0:63.1.1.255", attr, 6, "GBCS extended data 0-0:63.1.1.255: activate_passive_value_time")
	add(113, "0-0:19.20.4.255", attr, 6, "charge (standing charge): unit_charge_passive")
	add(113, "0-0:19.20.4.255", attr, 7, "charge (standing charge): unit_charge_activation_time")
	add(113, "0-0:19.20.0.255", attr, 6, "charge (TOU/block prices): unit_charge_passive")
	add(113, "0-0:19.20.0.255", attr, 7, "charge (TOU/block prices): unit_charge_activation_time")
	for i := range 3 {
		add(112, fmt.Sprintf("0-0:19.10.%d.255", i), meth, 2, fmt.Sprintf("credit %d: set_amount_to_value", i))
	}
	add(30, "0-0:43.2.8.255", meth, 1, "data protection (import energy registers): get_protected_attributes")
	add(30, "0-0:43.2.7.255", meth, 1, "data protection (half-hour profile): get_protected_attributes")
	add(1, "0-0:94.44.34.10", attr, 2, "import energy registers: value")
	add(7, "0-0:99.1.0.255", attr, 2, "half-hour profile (active import): buffer")
	add(9, "0-0:10.0.106.255", meth, 1, "script table (load switch): execute")
	add(70, "0-0:96.3.10.255", attr, 3, "disconnect control: control_state")
	add(1, "0-3:96.13.1.255", attr, 2, "customer identification number (CIN): value")
	add(1, "0-0:0.2.1.255", attr, 2, "firmware version: value")
	// Objects of the layouts of our own (ours.go).
	add(30, "0-0:43.2.9.255", meth, 1, "data protection (daily consumption log, ours): get_protected_attributes")
	add(7, "0-0:99.2.0.255", attr, 2, "daily consumption profile (ours): buffer")
	add(112, "0-0:19.10.0.255", attr, 2, "credit 0 (meter balance, ours): current_credit_amount")
	return m
}()

// LookupObject returns the known COSEM attribute (method false) or method
// (method true) of class at obis with id.
func LookupObject(class uint16, obis OBIS, method bool, id uint8) (Object, bool) {
	o, ok := knownObjects[objectKey{class, obis, method, id}]
	return o, ok
}

// Name returns the display name of the attribute or method s addresses, or
// "" when the package does not know it.
func (s RequestSpec) Name() string {
	o, ok := LookupObject(s.Class, s.OBIS, s.Kind == Action, s.ID)
	if !ok {
		return ""
	}
	return o.Name
}

// String returns the specification as "get 70 0-0:96.3.10.255 attribute 3
// (disconnect control: control_state)".
func (s RequestSpec) String() string {
	what := "attribute"
	if s.Kind == Action {
		what = "method"
	}
	str := fmt.Sprintf("%s %d %s %s %d", s.Kind, s.Class, s.OBIS, what, s.ID)
	if n := s.Name(); n != "" {
		str += " (" + n + ")"
	}
	return str
}
