package dlms

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// ClockTime is a 4-byte DLMS time: hour, minute, second, hundredths (0xFF
// not specified).
type ClockTime [4]byte

// MarshalText writes the bytes as hex.
func (c ClockTime) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, c[:]), nil }

// UnmarshalText reads 8 hex digits.
func (c *ClockTime) UnmarshalText(b []byte) error { return fixedHex(c[:], b, "time") }

// String returns hh:mm:ss.
func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d:%02d", c[0], c[1], c[2]) }

// Date is a 5-byte DLMS date: year (2 bytes), month, day of month, day of
// week (0xFF, 0xFFFF for the year, not specified).
type Date [5]byte

// MarshalText writes the bytes as hex.
func (d Date) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, d[:]), nil }

// UnmarshalText reads 10 hex digits.
func (d *Date) UnmarshalText(b []byte) error { return fixedHex(d[:], b, "date") }

func fixedHex(dst, src []byte, what string) error {
	v, err := hex.DecodeString(string(src))
	if err != nil || len(v) != len(dst) {
		return invalid("%s %q: want %d hex digits", what, src, 2*len(dst))
	}
	copy(dst, v)
	return nil
}

// Season is an entry of the season profile: its name, start and week
// profile name.
type Season struct {
	Name  HexBytes `json:"name"`
	Start DateTime `json:"start"`
	Week  HexBytes `json:"week"`
}

// WeekProfile names the day profile of each day, Monday first.
type WeekProfile struct {
	Name HexBytes `json:"name"`
	Days [7]uint8 `json:"days"`
}

// DayAction is a switch of a day profile: at Start, run the script
// Selector of the script table Script (0-0:10.0.100.255 in GBCS).
type DayAction struct {
	Start    ClockTime `json:"start"`
	Script   OBIS      `json:"script"`
	Selector uint16    `json:"selector"`
}

// DayProfile is a day profile: its id and its switches.
type DayProfile struct {
	ID      uint8       `json:"id"`
	Actions []DayAction `json:"actions"`
}

// SpecialDay maps a date to a day profile.
type SpecialDay struct {
	Index uint16 `json:"index"`
	Date  Date   `json:"date"`
	DayID uint8  `json:"day-id"`
}

// Charge is one entry of a charge table: the index and the price (a long,
// to be scaled by the price scale).
type Charge struct {
	Index HexBytes `json:"index"`
	Price int16    `json:"price"`
}

// UnitCharge is the unit_charge_passive attribute of a charge object
// (class 113): the scalers, the commodity reference and the charge table.
type UnitCharge struct {
	CommodityScale int8 `json:"commodity-scale"`
	PriceScale     int8 `json:"price-scale"`
	// CommodityClass, CommodityOBIS and CommodityAttribute name the
	// commodity the charge applies to.
	CommodityClass     uint16   `json:"commodity-class"`
	CommodityOBIS      OBIS     `json:"commodity-obis"`
	CommodityAttribute int8     `json:"commodity-attribute"`
	Charges            []Charge `json:"charges"`
}

// Prices returns every price of the table with the price scale applied.
func (u UnitCharge) Prices() []Scaled {
	out := make([]Scaled, len(u.Charges))
	for i, c := range u.Charges {
		out[i] = Scaled{Value: int64(c.Price), Exp: u.PriceScale}
	}
	return out
}

func (u UnitCharge) data() Data {
	table := make([]Data, len(u.Charges))
	for i, c := range u.Charges {
		table[i] = Structure(OctetString(nonNil(c.Index)), Long(c.Price))
	}
	return Structure(
		Structure(Integer(u.CommodityScale), Integer(u.PriceScale)),
		Structure(LongUnsigned(u.CommodityClass), OctetString(bytes.Clone(u.CommodityOBIS[:])), Integer(u.CommodityAttribute)),
		Array(table...),
	)
}

// Tariff is the content of an ECS01a Set Tariff and Price command
// (gbcs-payloads.md 4.5): 21 set specifications in a fixed order.
type Tariff struct {
	// Seasons, Weeks and Days are the passive season profile, week profile
	// table and day profile table of the activity calendar 0-0:13.0.0.255
	// (attributes 7, 8, 9).
	Seasons []Season      `json:"seasons"`
	Weeks   []WeekProfile `json:"weeks"`
	Days    []DayProfile  `json:"days"`
	// SpecialDays are the entries of the special days table 0-1:11.0.0.255.
	SpecialDays []SpecialDay `json:"special-days"`
	// BlockThresholds are the thresholds of the register monitors
	// 0-0:16.1.11.255 to 0-0:16.1.18.255, one per TOU rate.
	BlockThresholds [8][]uint32 `json:"block-thresholds"`
	// CurrencyFlag is the boolean value_passive of 0-0:94.44.2.0 (the
	// currency unit).
	CurrencyFlag bool `json:"currency-flag"`
	// StandingCharge is unit_charge_passive of 0-0:19.20.4.255; Prices is
	// that of 0-0:19.20.0.255, the TOU/block price matrix.
	StandingCharge UnitCharge `json:"standing-charge"`
	Prices         UnitCharge `json:"prices"`
	// Activation is written to the six activation attributes (specs 16 to
	// 21): Now, Never (cancel) or a future date-time.
	Activation DateTime `json:"activation"`
}

// UnitPrices returns every TOU/block unit price with its price scale
// applied.
func (t *Tariff) UnitPrices() []Scaled { return t.Prices.Prices() }

// StandingCharges returns the standing charge table's prices with their
// price scale applied (one entry in GBCS).
func (t *Tariff) StandingCharges() []Scaled { return t.StandingCharge.Prices() }

var (
	calendar       = MustParseOBIS("0-0:13.0.0.255")
	specialDays    = MustParseOBIS("0-1:11.0.0.255")
	currencyUnit   = MustParseOBIS("0-0:94.44.2.0")
	standingCharge = MustParseOBIS("0-0:19.20.4.255")
	priceMatrix    = MustParseOBIS("0-0:19.20.0.255")
)

// tariffSpecs are the 21 descriptors of ECS01a in order.
var tariffSpecs = func() []RequestSpec {
	set := func(class uint16, o OBIS, attr uint8) RequestSpec {
		return RequestSpec{Kind: Set, Class: class, OBIS: o, ID: attr}
	}
	s := []RequestSpec{set(20, calendar, 7), set(20, calendar, 8), set(20, calendar, 9), set(11, specialDays, 2)}
	for i := range 8 {
		s = append(s, set(21, OBIS{0, 0, 16, 1, byte(11 + i), 255}, 2))
	}
	return append(s, set(9000, currencyUnit, 4), set(113, standingCharge, 6), set(113, priceMatrix, 6),
		set(20, calendar, 10), set(9000, MustParseOBIS("0-0:94.44.128.29"), 6), set(9000, currencyUnit, 6),
		set(113, standingCharge, 7), set(113, priceMatrix, 7), set(9000, MustParseOBIS("0-0:63.1.1.255"), 6))
}()

// TariffSpecCount is the number of set specifications of ECS01a.
const TariffSpecCount = 21

// Request returns the ECS01a ACCESS-Request: the 21 set specifications in
// the order of the specification's table, with their values.
func (t *Tariff) Request(invokeID uint32) *AccessRequest {
	seasons := make([]Data, len(t.Seasons))
	for i, s := range t.Seasons {
		seasons[i] = Structure(OctetString(nonNil(s.Name)), s.Start.Data(), OctetString(nonNil(s.Week)))
	}
	weeks := make([]Data, len(t.Weeks))
	for i, w := range t.Weeks {
		f := []Data{OctetString(nonNil(w.Name))}
		for _, d := range w.Days {
			f = append(f, Unsigned(d))
		}
		weeks[i] = Structure(f...)
	}
	days := make([]Data, len(t.Days))
	for i, d := range t.Days {
		acts := make([]Data, len(d.Actions))
		for j, a := range d.Actions {
			acts[j] = Structure(OctetString(bytes.Clone(a.Start[:])), OctetString(bytes.Clone(a.Script[:])), LongUnsigned(a.Selector))
		}
		days[i] = Structure(Unsigned(d.ID), Array(acts...))
	}
	special := make([]Data, len(t.SpecialDays))
	for i, s := range t.SpecialDays {
		special[i] = Structure(LongUnsigned(s.Index), OctetString(bytes.Clone(s.Date[:])), Unsigned(s.DayID))
	}
	values := []Data{Array(seasons...), Array(weeks...), Array(days...), Array(special...)}
	for _, th := range t.BlockThresholds {
		values = append(values, uints(th))
	}
	values = append(values, Boolean(t.CurrencyFlag), t.StandingCharge.data(), t.Prices.data())
	for range 6 {
		values = append(values, t.Activation.Data())
	}
	return &AccessRequest{InvokeID: invokeID, Specs: append([]RequestSpec(nil), tariffSpecs...), Data: values}
}

// ReadTariff reads an ECS01a request. It refuses a request whose six
// activation times differ.
func ReadTariff(q *AccessRequest) (Tariff, error) {
	var t Tariff
	if err := checkSpecs(q, tariffSpecs); err != nil {
		return t, err
	}
	v := q.Data
	var err error
	if t.Seasons, err = readSeasons(v[0]); err != nil {
		return t, err
	}
	if t.Weeks, err = readWeeks(v[1]); err != nil {
		return t, err
	}
	if t.Days, err = readDays(v[2]); err != nil {
		return t, err
	}
	if t.SpecialDays, err = readSpecialDays(v[3]); err != nil {
		return t, err
	}
	for i := range 8 {
		th, err := list(v[4+i], TagArray, -1, fmt.Sprintf("block thresholds %d", i+1))
		if err != nil {
			return t, err
		}
		t.BlockThresholds[i] = make([]uint32, len(th))
		for j, e := range th {
			if t.BlockThresholds[i][j], err = u32(e, TagDoubleLongUnsigned, "block threshold"); err != nil {
				return t, err
			}
		}
	}
	if v[12].Tag != TagBoolean {
		return t, mismatch("currency unit: want boolean, have %s", describeData(v[12]))
	}
	t.CurrencyFlag = v[12].Bool()
	if t.StandingCharge, err = readUnitCharge(v[13], "standing charge"); err != nil {
		return t, err
	}
	if t.Prices, err = readUnitCharge(v[14], "price matrix"); err != nil {
		return t, err
	}
	if t.Activation, err = dateTimeOf(v[15], "activation time"); err != nil {
		return t, err
	}
	for i := 16; i < TariffSpecCount; i++ {
		a, err := dateTimeOf(v[i], "activation time")
		if err != nil {
			return t, err
		}
		if a != t.Activation {
			return t, mismatch("activation time of specification %d is %s, specification 16 has %s", i+1, a, t.Activation)
		}
	}
	return t, nil
}

func readSeasons(v Data) ([]Season, error) {
	l, err := list(v, TagArray, -1, "season profile")
	if err != nil {
		return nil, err
	}
	out := make([]Season, len(l))
	for i, e := range l {
		f, err := list(e, TagStructure, 3, "season")
		if err != nil {
			return nil, err
		}
		if out[i].Name, err = octets(f[0], -1, "season name"); err != nil {
			return nil, err
		}
		if out[i].Start, err = dateTimeOf(f[1], "season start"); err != nil {
			return nil, err
		}
		if out[i].Week, err = octets(f[2], -1, "season week name"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readWeeks(v Data) ([]WeekProfile, error) {
	l, err := list(v, TagArray, -1, "week profile table")
	if err != nil {
		return nil, err
	}
	out := make([]WeekProfile, len(l))
	for i, e := range l {
		f, err := list(e, TagStructure, 8, "week profile")
		if err != nil {
			return nil, err
		}
		if out[i].Name, err = octets(f[0], -1, "week profile name"); err != nil {
			return nil, err
		}
		for d := range 7 {
			if out[i].Days[d], err = u8(f[1+d], TagUnsigned, "week profile day id"); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func readDays(v Data) ([]DayProfile, error) {
	l, err := list(v, TagArray, -1, "day profile table")
	if err != nil {
		return nil, err
	}
	out := make([]DayProfile, len(l))
	for i, e := range l {
		f, err := list(e, TagStructure, 2, "day profile")
		if err != nil {
			return nil, err
		}
		if out[i].ID, err = u8(f[0], TagUnsigned, "day profile id"); err != nil {
			return nil, err
		}
		acts, err := list(f[1], TagArray, -1, "day profile actions")
		if err != nil {
			return nil, err
		}
		out[i].Actions = make([]DayAction, len(acts))
		for j, a := range acts {
			af, err := list(a, TagStructure, 3, "day profile action")
			if err != nil {
				return nil, err
			}
			st, err := octets(af[0], 4, "day profile action start time")
			if err != nil {
				return nil, err
			}
			sc, err := octets(af[1], 6, "day profile action script")
			if err != nil {
				return nil, err
			}
			sel, err := u16(af[2], TagLongUnsigned, "day profile action script selector")
			if err != nil {
				return nil, err
			}
			out[i].Actions[j] = DayAction{Start: ClockTime(st), Script: OBIS(sc), Selector: sel}
		}
	}
	return out, nil
}

func readSpecialDays(v Data) ([]SpecialDay, error) {
	l, err := list(v, TagArray, -1, "special days")
	if err != nil {
		return nil, err
	}
	out := make([]SpecialDay, len(l))
	for i, e := range l {
		f, err := list(e, TagStructure, 3, "special day")
		if err != nil {
			return nil, err
		}
		idx, err := u16(f[0], TagLongUnsigned, "special day index")
		if err != nil {
			return nil, err
		}
		d, err := octets(f[1], 5, "special day date")
		if err != nil {
			return nil, err
		}
		id, err := u8(f[2], TagUnsigned, "special day day id")
		if err != nil {
			return nil, err
		}
		out[i] = SpecialDay{Index: idx, Date: Date(d), DayID: id}
	}
	return out, nil
}

func readUnitCharge(v Data, what string) (UnitCharge, error) {
	var u UnitCharge
	f, err := list(v, TagStructure, 3, what)
	if err != nil {
		return u, err
	}
	sc, err := list(f[0], TagStructure, 2, what+" scalers")
	if err != nil {
		return u, err
	}
	if sc[0].Tag != TagInteger || sc[1].Tag != TagInteger {
		return u, mismatch("%s scalers: want two integers, have %s and %s", what, describeData(sc[0]), describeData(sc[1]))
	}
	u.CommodityScale, u.PriceScale = int8(sc[0].Int()), int8(sc[1].Int())
	cm, err := list(f[1], TagStructure, 3, what+" commodity")
	if err != nil {
		return u, err
	}
	if u.CommodityClass, err = u16(cm[0], TagLongUnsigned, what+" commodity class"); err != nil {
		return u, err
	}
	ln, err := octets(cm[1], 6, what+" commodity logical name")
	if err != nil {
		return u, err
	}
	u.CommodityOBIS = OBIS(ln)
	if cm[2].Tag != TagInteger {
		return u, mismatch("%s commodity attribute: want integer, have %s", what, describeData(cm[2]))
	}
	u.CommodityAttribute = int8(cm[2].Int())
	table, err := list(f[2], TagArray, -1, what+" charge table")
	if err != nil {
		return u, err
	}
	u.Charges = make([]Charge, len(table))
	for i, e := range table {
		c, err := list(e, TagStructure, 2, what+" charge")
		if err != nil {
			return u, err
		}
		if u.Charges[i].Index, err = octets(c[0], -1, what+" charge index"); err != nil {
			return u, err
		}
		if c[1].Tag != TagLong {
			return u, mismatch("%s charge price: want long, have %s", what, describeData(c[1]))
		}
		u.Charges[i].Price = int16(c[1].Int())
	}
	return u, nil
}
