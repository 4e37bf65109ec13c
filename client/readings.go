package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

// Interval is one interval of a profile or consumption log: its start and
// the energy consumed in it, in Wh.
type Interval struct {
	Start time.Time `json:"start"`
	Wh    uint32    `json:"wh"`
}

// Readings are the intervals of a profile or consumption-log read, oldest
// first, as the meter's encrypted response carries them.
type Readings struct {
	// UseCase names the GBCS use case: ECS22b or GCS17 (half-hourly
	// profile, service request 4.8.1), ECS66 or GCS61 (daily log, 4.17).
	UseCase string `json:"useCase"`
	// Period is the length of each interval: 30 minutes or a day.
	Period    time.Duration `json:"-"`
	Intervals []Interval    `json:"intervals"`
}

// MarshalJSON writes Period as a duration string, such as "30m0s".
func (r Readings) MarshalJSON() ([]byte, error) {
	type plain Readings
	return json.Marshal(struct {
		plain
		Period string `json:"period"`
	}{plain(r), r.Period.String()})
}

// Readings reads the decrypted intervals of a profile or consumption-log
// response: electricity (DLMS: ECS22b, ECS66) or gas (GBZ Get Profile
// Response: GCS17, GCS61). It fails for another use case, a response
// without its one ciphered block, or a gas meter's failure status.
func (r *Response) Readings() (Readings, error) {
	if len(r.Plaintexts) != 1 {
		return Readings{}, fmt.Errorf("client: %d decrypted blocks, want the one of a read's response", len(r.Plaintexts))
	}
	p := r.Plaintexts[0]
	switch code := uint16(r.Message.Code); code {
	case dlms.CodeECS22b, dlms.CodeECS66:
		v, err := dlms.ParseData(p)
		if err != nil {
			return Readings{}, fmt.Errorf("client: the decrypted profile: %w", err)
		}
		if code == dlms.CodeECS66 {
			l, err := dlms.ReadDailyConsumptionLog(v)
			if err != nil {
				return Readings{}, fmt.Errorf("client: the decrypted daily log: %w", err)
			}
			out := Readings{UseCase: "ECS66", Period: 24 * time.Hour, Intervals: []Interval{}}
			for _, d := range l.Days {
				out.Intervals = append(out.Intervals, Interval{Start: dlms.Epoch2000.Add(time.Duration(d.Start) * time.Second), Wh: d.Wh})
			}
			return out, nil
		}
		hh, err := dlms.ReadHalfHourProfile(v)
		if err != nil {
			return Readings{}, fmt.Errorf("client: the decrypted profile: %w", err)
		}
		out := Readings{UseCase: "ECS22b", Period: 30 * time.Minute, Intervals: []Interval{}}
		for _, rec := range hh.Records {
			out.Intervals = append(out.Intervals, Interval{Start: rec.At().UTC(), Wh: rec.Value})
		}
		return out, nil
	case gbz.CodeGCS17, gbz.CodeGCS61:
		g, err := gbz.ParseGetProfileResponse(p)
		if err != nil {
			return Readings{}, fmt.Errorf("client: the decrypted profile: %w", err)
		}
		name, want := "GCS17", gbz.Period30Minutes
		if code == gbz.CodeGCS61 {
			name, want = "GCS61", gbz.PeriodDaily
		}
		switch {
		case g.Status != gbz.ProfileSuccess:
			return Readings{}, fmt.Errorf("client: the gas meter answered the profile read: %s", g.Status)
		case g.Period != want:
			return Readings{}, fmt.Errorf("client: a %s profile of %s intervals, want %s", name, g.Period, want)
		}
		out := Readings{UseCase: name, Period: time.Duration(g.Period.Seconds()) * time.Second, Intervals: []Interval{}}
		if len(g.Intervals) == 0 {
			return out, nil
		}
		start, err := g.Start()
		if err != nil {
			return Readings{}, fmt.Errorf("client: the decrypted profile: %w", err)
		}
		for i, v := range g.Chronological() {
			out.Intervals = append(out.Intervals, Interval{Start: start.Time().Add(time.Duration(i) * out.Period), Wh: v})
		}
		return out, nil
	}
	return Readings{}, fmt.Errorf("client: GBCS %04X is not a profile or consumption-log read", uint16(r.Message.Code))
}

// Decrypted returns each decrypted block read by its structure: a DLMS
// data value for an electricity meter, the typed GBZ plaintext for a gas
// meter's (*gbz.GetProfileResponse for GCS17 and GCS61,
// *gbz.PublishSnapshot for GCS13a), or the bytes in hex when they do not
// read.
func (r *Response) Decrypted() []any {
	var out []any
	for _, p := range r.Plaintexts {
		v, err := decodePlaintext(r.Message.Code, r.Payload.Structure, p)
		if err != nil {
			out = append(out, hex.EncodeToString(p))
			continue
		}
		out = append(out, v)
	}
	return out
}

func decodePlaintext(code commands.MessageCode, s commands.Structure, p []byte) (any, error) {
	if s == commands.StructureDLMS {
		return dlms.ParseData(p)
	}
	switch uint16(code) {
	case gbz.CodeGCS17, gbz.CodeGCS61:
		return gbz.ParseGetProfileResponse(p)
	case gbz.CodeGCS13a:
		return gbz.ParsePublishSnapshot(p)
	}
	return nil, errors.New("no plaintext layout known")
}

// MaxHalfHours returns the most half-hour intervals one profile read
// (service request 4.8.1) returns from a meter of the fuel: 255 from a gas
// meter (the Get Profile Response counts its intervals in one byte), 8,064
// (168 days) from an electricity meter, whose ECS22b response is then 64,696
// bytes, one message within the 65,535 a two-byte MAC header length frames
// (docs/client.md derives it).
func MaxHalfHours(fuel string) int {
	if fuel == Gas {
		return 255
	}
	return 168 * 48
}

// Span is a period of time [From, To).
type Span struct {
	From, To time.Time
}

// ProfileSpans splits [from, to), its ends rounded out to half hours, into
// consecutive spans of at most MaxHalfHours(fuel) half hours, oldest first:
// the reads of service request 4.8.1 that cover it.
func ProfileSpans(fuel string, from, to time.Time) []Span {
	const hh = 30 * time.Minute
	from = from.UTC().Truncate(hh)
	if t := to.UTC().Truncate(hh); t.Before(to) {
		to = t.Add(hh)
	} else {
		to = t
	}
	step := time.Duration(MaxHalfHours(fuel)) * hh
	var out []Span
	for at := from; at.Before(to); at = at.Add(step) {
		end := at.Add(step)
		if end.After(to) {
			end = to
		}
		out = append(out, Span{From: at, To: end})
	}
	return out
}

// ProfileParams returns the parameters of the 4.8.1 read of the half hours
// starting in s: the gas meter's read ends at To (GCS17's end time), the
// electricity meter's includes the half hour starting at its to (ECS22b),
// so it is given To less a second.
func (s Span) ProfileParams(fuel string) map[string]any {
	to := s.To
	if fuel != Gas {
		to = to.Add(-time.Second)
	}
	return map[string]any{"from": s.From.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339)}
}
