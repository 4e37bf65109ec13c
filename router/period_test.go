package router

import (
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// TestCheckDataPeriod checks the 13-month data period on the four reads an
// other user sends under consent, electricity (from date in the payload)
// and gas (end time and periods), and that other use cases have none.
func TestCheckDataPeriod(t *testing.T) {
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	oldest := DataPeriodStart(now)
	if want := time.Date(2025, 10, 23, 18, 0, 0, 0, time.UTC); !oldest.Equal(want) {
		t.Fatalf("DataPeriodStart = %s, want %s", oldest, want)
	}
	dailyLog := func(from, to time.Time) []byte {
		f, _ := dlms.NewDateTime(from)
		tt, _ := dlms.NewDateTime(to)
		b, err := dlms.DailyConsumptionLogRequest(1, f, tt, dlms.NewProtectionParameters(1, smki.EUI{}, smki.EUI{})).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gasProfile := func(end time.Time, periods uint8) []byte {
		q := gbz.GetProfile{Channel: gbz.ChannelConsumptionDelivered, Periods: periods}
		if !end.IsZero() {
			q.EndTime = utc(end)
		}
		b, err := gbz.NewReadProfile(q).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		code    uint16
		payload []byte
		want    error
	}{
		{"profile of the last day", codeECS22b, profileRead(t, now.Add(-24*time.Hour), now), nil},
		{"profile from the start of the period", codeECS22b, profileRead(t, oldest, now), nil},
		{"profile from a second before it", codeECS22b, profileRead(t, oldest.Add(-time.Second), now), ErrConsentPeriod},
		{"profile of two years ago", codeECS22b, profileRead(t, now.AddDate(-2, 0, 0), now.AddDate(-2, 0, 1)), ErrConsentPeriod},
		{"profile request not decoding", codeECS22b, []byte{0xD9, 0x01}, ErrMalformed},
		{"daily log of a month", codeECS66, dailyLog(now.AddDate(0, -1, 0), now), nil},
		{"daily log of 14 months", codeECS66, dailyLog(now.AddDate(0, -14, 0), now), ErrConsentPeriod},
		{"gas profile, latest 48 half hours", codeGCS17, gasProfile(time.Time{}, 48), nil},
		{"gas profile ending 14 months ago", codeGCS17, gasProfile(now.AddDate(0, -14, 0), 48), ErrConsentPeriod},
		{"gas profile ending after now", codeGCS17, gasProfile(now.Add(time.Hour), 2), nil},
		{"gas daily log of 255 days", codeGCS61, gasProfile(time.Time{}, 255), nil},
		{"gas daily log ending a year ago, 255 days", codeGCS61, gasProfile(now.AddDate(-1, 0, 0), 255), ErrConsentPeriod},
		{"gas request not decoding", codeGCS61, []byte{0x01}, ErrMalformed},
		{"register read: no period", codeECS17b, []byte{0x01}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDataPeriod(&commands.Message{Code: commands.MessageCode(tt.code), Payload: tt.payload}, now)
			if (tt.want == nil && err != nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("checkDataPeriod = %v, want %v", err, tt.want)
			}
		})
	}
}
