package dlms

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// DateTime is a 12-byte DLMS date-time (gbcs-payloads.md 4.3; IEC 62056-6-2
// date-time): year (2 bytes), month, day of month, day of week (1 Monday to
// 7 Sunday), hour, minute, second, hundredths, deviation (2 bytes, signed
// minutes) and clock status. 0xFF (0xFFFF for the year) in a field means
// "not specified", and deviation 0x8000 likewise.
//
// It is kept as the bytes, so any value round-trips; Time interprets it.
type DateTime [12]byte

// Now and Never are the special activation times of GBCS commands: Now
// (all zero, deviation not specified, clock status FF) asks for immediate
// execution and Never (all FF, deviation not specified) cancels a
// future-dated one. They are values; copy them, do not modify them.
var (
	Now   = DateTime{0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0xFF}
	Never = DateTime{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0xFF}
)

const deviationUnspecified = 0x8000

// NewDateTime returns t, in UTC, in the form GB devices and the RTDS use:
// day of week and clock status not specified (FF), deviation not specified
// (8000), hundredths from t.
func NewDateTime(t time.Time) (DateTime, error) {
	u := t.UTC()
	if u.Year() < 0 || u.Year() >= 0xFFFF {
		return DateTime{}, invalid("year %d outside a DLMS date-time", u.Year())
	}
	var d DateTime
	binary.BigEndian.PutUint16(d[:], uint16(u.Year()))
	d[2], d[3], d[4] = byte(u.Month()), byte(u.Day()), 0xFF
	d[5], d[6], d[7], d[8] = byte(u.Hour()), byte(u.Minute()), byte(u.Second()), byte(u.Nanosecond()/1e7)
	binary.BigEndian.PutUint16(d[9:], deviationUnspecified)
	d[11] = 0xFF
	return d, nil
}

// IsNow reports whether d is the immediate-execution value Now.
func (d DateTime) IsNow() bool { return d == Now }

// IsNever reports whether d is the cancellation value Never.
func (d DateTime) IsNever() bool { return d == Never }

// Deviation returns the deviation in minutes and whether it is specified.
// In COSEM the deviation is UTC minus local time: local time plus the
// deviation gives UTC.
func (d DateTime) Deviation() (int, bool) {
	v := binary.BigEndian.Uint16(d[9:])
	return int(int16(v)), v != deviationUnspecified
}

// Time returns the instant d names. The date and the hour, minute and
// second must be specified; unspecified hundredths read as zero, an
// unspecified day of week is not checked, and an unspecified deviation
// reads as UTC (the GB convention). A specified day of week must agree with
// the date.
func (d DateTime) Time() (time.Time, error) {
	year := int(binary.BigEndian.Uint16(d[:]))
	month, day, wd := int(d[2]), int(d[3]), int(d[4])
	hour, minute, sec, hund := int(d[5]), int(d[6]), int(d[7]), int(d[8])
	switch {
	case year == 0xFFFF:
		return time.Time{}, invalid("date-time year not specified")
	case month < 1 || month > 12:
		return time.Time{}, invalid("date-time month %d is not a calendar month", month)
	case day < 1 || day > 31:
		return time.Time{}, invalid("date-time day %d is not a day of the month", day)
	case hour > 23 || minute > 59 || sec > 59:
		return time.Time{}, invalid("date-time %d:%d:%d is not a time of day", hour, minute, sec)
	case hund > 99 && hund != 0xFF:
		return time.Time{}, invalid("date-time hundredths %d", hund)
	case wd != 0xFF && (wd < 1 || wd > 7):
		return time.Time{}, invalid("date-time day of week %d", wd)
	}
	if hund == 0xFF {
		hund = 0
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, hund*1e7, time.UTC)
	if t.Day() != day {
		return time.Time{}, invalid("date-time %04d-%02d has no day %d", year, month, day)
	}
	if wd != 0xFF && int(t.Weekday()+6)%7+1 != wd {
		return time.Time{}, invalid("date-time day of week %d, but %s is a %s", wd, t.Format(time.DateOnly), t.Weekday())
	}
	if dev, ok := d.Deviation(); ok {
		t = t.Add(time.Duration(dev) * time.Minute)
	}
	return t, nil
}

// String returns "now", "never", the UTC time as RFC 3339 when d names one,
// or the hex bytes otherwise.
func (d DateTime) String() string {
	switch {
	case d.IsNow():
		return "now"
	case d.IsNever():
		return "never"
	}
	if t, err := d.Time(); err == nil {
		return t.Format(time.RFC3339Nano)
	}
	return hex.EncodeToString(d[:])
}

// MarshalText writes the 12 bytes as lower-case hex.
func (d DateTime) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, d[:]), nil }

// UnmarshalText reads 24 hex digits.
func (d *DateTime) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil || len(v) != len(d) {
		return invalid("date-time %q: want 24 hex digits", b)
	}
	copy(d[:], v)
	return nil
}

// Data returns d as an octet-string of 12 bytes, the form GBCS carries it
// in.
func (d DateTime) Data() Data { return OctetString(d[:]) }

// dateTimeOf reads an octet-string of 12 bytes.
func dateTimeOf(v Data, what string) (DateTime, error) {
	var d DateTime
	if v.Tag != TagOctetString || len(v.Bytes) != len(d) {
		return d, mismatch("%s: want octet-string(12) date-time, have %s", what, describeData(v))
	}
	copy(d[:], v.Bytes)
	return d, nil
}

// describeData names a value's type and size for error messages.
func describeData(v Data) string {
	switch v.Tag.kind() {
	case kindString, kindFixed:
		return fmt.Sprintf("%s(%d)", v.Tag, len(v.Bytes))
	case kindList, kindCompact:
		return fmt.Sprintf("%s(%d)", v.Tag, len(v.Elems))
	}
	return v.Tag.String()
}
