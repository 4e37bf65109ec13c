package router

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestDailyLogRange reads the parameters of service request 4.17: a number
// of days before today, or a from-to period whose completed days are read.
func TestDailyLogRange(t *testing.T) {
	now := time.Date(2026, 12, 5, 21, 30, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		params   string
		from, to time.Time
		err      error
	}{
		{`{"days": 3}`, day(2), day(5), nil},
		{`{"from": "2026-12-01T00:00:00Z", "to": "2026-12-04T00:00:00Z"}`, day(1), day(4), nil},
		{`{"from": "2026-11-30T06:00:00Z", "to": "2026-12-04T23:00:00Z"}`, day(1), day(4), nil}, // whole days only
		{`{"from": "2026-12-01T00:00:00Z", "to": "2026-12-09T00:00:00Z"}`, day(1), day(5), nil}, // not past today
		{`{"from": "2026-12-01T06:00:00Z", "to": "2026-12-01T23:00:00Z"}`, time.Time{}, time.Time{}, ErrBadRequest},
		{`{"from": "2026-10-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}`, time.Time{}, time.Time{}, ErrBadRequest}, // 61 days
		{`{"days": 3, "from": "2026-12-01T00:00:00Z"}`, time.Time{}, time.Time{}, ErrBadRequest},
		{`{"days": 32}`, time.Time{}, time.Time{}, ErrBadRequest},
		{`{}`, time.Time{}, time.Time{}, ErrBadRequest},
	} {
		t.Run(tc.params, func(t *testing.T) {
			from, to, err := dailyLogRange(json.RawMessage(tc.params), now)
			if !errors.Is(err, tc.err) || !from.Equal(tc.from) || !to.Equal(tc.to) {
				t.Fatalf("= %s, %s, %v; want %s, %s, %v", from, to, err, tc.from, tc.to, tc.err)
			}
		})
	}
}
