package commands

import (
	"errors"
	"testing"
	"time"
)

func TestDateTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 23, 18, 30, 15, 250_000_000, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 22, 23, 59, 59, 990_000_000, time.UTC), // a Sunday
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("BST", 3600)),
	} {
		t.Run(tm.Format(time.RFC3339Nano), func(t *testing.T) {
			b, err := EncodeDateTime(tm)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeDateTime(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tm) {
				t.Errorf("round trip %v, want %v", got, tm)
			}
			m := &Message{CRA: Command, Originator: testSupplier, Recipient: testDevice, DateTime: b}
			raw, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := DecodeDateTime(p.DateTime); err != nil || !got.Equal(tm) {
				t.Errorf("through a message: %v, %v", got, err)
			}
		})
	}
	good, _ := EncodeDateTime(time.Date(2026, 11, 23, 18, 30, 0, 0, time.UTC)) // a Monday
	set := func(i int, v ...byte) []byte {
		b := append([]byte(nil), good...)
		copy(b[i:], v)
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		field string
	}{
		{"short", good[:11], "date-time"},
		{"year wildcard", set(0, 0xff, 0xff), "date-time.year"},
		{"month 13", set(2, 13), "date-time.month"},
		{"day 0", set(3, 0), "date-time.day"},
		{"30 February", set(2, 2, 30, 0xff), "date-time.day"},
		{"wrong weekday", set(4, 2), "date-time.day-of-week"},
		{"hour 24", set(5, 24), "date-time.hour"},
		{"minute 60", set(6, 60), "date-time.minute"},
		{"second 60", set(7, 60), "date-time.second"},
		{"hundredths 100", set(8, 100), "date-time.hundredths"},
		{"deviation", set(9, 0xff, 0xc4), "date-time.deviation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeDateTime(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Errorf("error %v, want field %s", err, tt.field)
			}
		})
	}
	unspecified := set(8, 0xff, 0x80, 0x00, 0xff)
	if got, err := DecodeDateTime(unspecified); err != nil || !got.Equal(time.Date(2026, 11, 23, 18, 30, 0, 0, time.UTC)) {
		t.Errorf("unspecified hundredths and deviation: %v, %v", got, err)
	}
	if _, err := EncodeDateTime(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrInvalid) {
		t.Errorf("year -1: %v", err)
	}
}
