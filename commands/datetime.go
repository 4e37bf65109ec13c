package commands

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The optional date-time of the general-signing block is a 12-byte DLMS
// date-time (IEC 62056-6-2, COSEM date-time): year (2 bytes), month, day of
// month, day of week (1 Monday to 7 Sunday), hour, minute, second,
// hundredths, deviation (signed minutes, 0x8000 not specified) and clock
// status. GB devices keep UTC.

const deviationUnspecified = 0x8000

// EncodeDateTime encodes t, in UTC, as a DLMS date-time with deviation 0 and
// clock status 0, for Message.DateTime.
func EncodeDateTime(t time.Time) ([]byte, error) {
	u := t.UTC()
	if u.Year() < 0 || u.Year() > 0xfffe {
		return nil, fmt.Errorf("%w: year %d outside a DLMS date-time", ErrInvalid, u.Year())
	}
	b := make([]byte, dateTimeLen)
	binary.BigEndian.PutUint16(b, uint16(u.Year()))
	wd := int(u.Weekday())
	if wd == 0 {
		wd = 7
	}
	b[2], b[3], b[4] = byte(u.Month()), byte(u.Day()), byte(wd)
	b[5], b[6], b[7], b[8] = byte(u.Hour()), byte(u.Minute()), byte(u.Second()), byte(u.Nanosecond()/1e7)
	// b[9:11] deviation 0, b[11] clock status 0.
	return b, nil
}

// DecodeDateTime reads a DLMS date-time as a UTC time. It accepts fully
// specified dates and times with deviation 0 or "not specified" (both read
// as UTC, the GB convention); a wildcard field (0xFF) or a non-zero
// deviation is refused, since the time it names is not one instant in UTC.
func DecodeDateTime(b []byte) (time.Time, error) {
	if len(b) != dateTimeLen {
		return time.Time{}, parseErr("date-time", 0, "want 12 bytes, have %d", len(b))
	}
	year := int(binary.BigEndian.Uint16(b))
	month, day, wd, hour, minute, sec, hund := int(b[2]), int(b[3]), int(b[4]), int(b[5]), int(b[6]), int(b[7]), int(b[8])
	dev := binary.BigEndian.Uint16(b[9:11])
	switch {
	case year == 0xffff:
		return time.Time{}, parseErr("date-time.year", 0, "year not specified")
	case month < 1 || month > 12:
		return time.Time{}, parseErr("date-time.month", 2, "month %d not a calendar month", month)
	case day < 1 || day > 31:
		return time.Time{}, parseErr("date-time.day", 3, "day %d not a day of the month", day)
	case hour > 23:
		return time.Time{}, parseErr("date-time.hour", 5, "hour %d", hour)
	case minute > 59:
		return time.Time{}, parseErr("date-time.minute", 6, "minute %d", minute)
	case sec > 59:
		return time.Time{}, parseErr("date-time.second", 7, "second %d", sec)
	case hund > 99 && hund != 0xff:
		return time.Time{}, parseErr("date-time.hundredths", 8, "hundredths %d", hund)
	case dev != 0 && dev != deviationUnspecified:
		return time.Time{}, parseErr("date-time.deviation", 9, "deviation %d minutes; only UTC is supported", int16(dev))
	}
	if hund == 0xff {
		hund = 0
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, hund*1e7, time.UTC)
	if t.Day() != day {
		return time.Time{}, parseErr("date-time.day", 3, "%04d-%02d has no day %d", year, month, day)
	}
	if wd != 0xff {
		want := int(t.Weekday())
		if want == 0 {
			want = 7
		}
		if wd != want {
			return time.Time{}, parseErr("date-time.day-of-week", 4, "day of week %d, but %s is a %s", wd, t.Format(time.DateOnly), t.Weekday())
		}
	}
	return t, nil
}
