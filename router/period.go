package router

import (
	"fmt"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

// This file holds the consented data period (spec section 11, our rule):
// an other user reading a consumer's data under consent may read at most
// ConsentDataMonths (13) months back from the time of the read, whatever
// the consent's own dates. The period is a rolling window, not the
// consent's NotBefore: a consumer who consents today shares the history the
// meter holds for the last 13 months, as GB third parties read it, and no
// older data however long the consent lasts.

// DataPeriodStart returns the oldest instant an other user's read at at
// may reach: ConsentDataMonths calendar months before at.
func DataPeriodStart(at time.Time) time.Time { return at.AddDate(0, -ConsentDataMonths, 0) }

// readStart returns the start of the data m asks for: the from date of a
// half-hour profile (ECS22b) or daily log (ECS66) read, or the first
// interval of a gas profile (GCS17) or daily log (GCS61) read ending at its
// end time (0, or a time after now: the latest interval); false when m
// reads no period of the past (a register or a balance, read as it is
// now). A payload that does not decode is malformed: the meter would not
// execute it, and the period must not be dodged by an odd encoding.
func readStart(m *commands.Message, now time.Time) (time.Time, bool, error) {
	switch uint16(m.Code) {
	case codeECS22b, codeECS66:
		a, err := dlms.Parse(m.Payload)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: read payload: %w", ErrMalformed, err)
		}
		if a.AccessRequest == nil {
			return time.Time{}, false, fmt.Errorf("%w: read payload: a DLMS %s, want an ACCESS-Request", ErrMalformed, a.Kind())
		}
		var q dlms.ProtectedAttributesRequest
		if uint16(m.Code) == codeECS22b {
			q, err = dlms.ReadHalfHourProfileRequest(a.AccessRequest)
		} else {
			q, err = dlms.ReadDailyConsumptionLogRequest(a.AccessRequest)
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: read payload: %w", ErrMalformed, err)
		}
		from, err := q.Objects[0].From.Time()
		if err != nil {
			// A from date with wildcards reaches back without bound.
			return time.Time{}, false, fmt.Errorf("%w: the read's from date %s names no instant: %w", ErrConsentPeriod, q.Objects[0].From, err)
		}
		return from, true, nil
	case codeGCS17, codeGCS61:
		p, err := gbz.Parse(m.Payload)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: read payload: %w", ErrMalformed, err)
		}
		u, err := gbz.Describe(uint16(m.Code), p)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: read payload: %w", ErrMalformed, err)
		}
		q, ok := u.Value.(*gbz.GetProfile)
		if !ok || u.Message != "command" {
			return time.Time{}, false, fmt.Errorf("%w: read payload: a %s %s, want the Get Profile command", ErrMalformed, u.Name, u.Message)
		}
		step := 30 * time.Minute
		if uint16(m.Code) == codeGCS61 {
			step = 24 * time.Hour
		}
		end := now
		if q.EndTime != 0 && q.EndTime.Time().Before(now) {
			end = q.EndTime.Time()
		}
		return end.Truncate(step).Add(-time.Duration(q.Periods) * step), true, nil
	}
	return time.Time{}, false, nil
}

// checkDataPeriod refuses an other user's read that reaches back before
// the data period of a read at at.
func checkDataPeriod(m *commands.Message, at time.Time) error {
	from, ok, err := readStart(m, at)
	if err != nil || !ok {
		return err
	}
	if oldest := DataPeriodStart(at); from.Before(oldest) {
		return fmt.Errorf("%w: the read starts at %s, before %s: under consent an other user may read at most %d months back",
			ErrConsentPeriod, from.UTC().Format(time.RFC3339), oldest.UTC().Format(time.RFC3339), ConsentDataMonths)
	}
	return nil
}
