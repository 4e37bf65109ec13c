package device

import (
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

func TestConsumptionModel(t *testing.T) {
	euis := []smki.EUI{smki.MustParseEUI("0012A3FFFE000001"), smki.MustParseEUI("0012A3FFFE000002"), smki.MustParseEUI("FFFFFFFFFFFFFFFE")}
	now := time.Date(2026, 11, 23, 18, 45, 10, 0, time.UTC)
	for _, eui := range euis {
		t.Run(eui.String(), func(t *testing.T) {
			c := newConsumption(eui)
			if again := newConsumption(eui); again != c {
				t.Fatal("model is not a function of the EUI")
			}
			if c.daily < 5000 || c.daily >= 13000 {
				t.Errorf("daily mean %d Wh outside 5 to 13 kWh", c.daily)
			}
			first, end := profileWindow(now)
			if got, want := slotStart(first), time.Date(2025, 10, 23, 19, 0, 0, 0, time.UTC); !got.Equal(want) {
				t.Errorf("log starts %v, want %v (13 months back, first whole slot)", got, want)
			}
			if got, want := slotStart(end), time.Date(2026, 11, 23, 18, 30, 0, 0, time.UTC); !got.Equal(want) {
				t.Errorf("log ends before %v, want %v (the slot in progress)", got, want)
			}
			// Slots are never negative and add up to the register; days add
			// up to their slots and average the daily mean.
			var sum, days uint64
			for d := first - first%slotsPerDay + slotsPerDay; d+slotsPerDay <= end; d += slotsPerDay {
				var day uint64
				for n := d; n < d+slotsPerDay; n++ {
					if c.register(n+1) < c.register(n) {
						t.Fatalf("register falls at slot %d", n)
					}
					day += c.slot(n)
				}
				if day != c.register(d+slotsPerDay)-c.register(d) {
					t.Fatalf("day at slot %d: slots sum to %d, registers differ by %d", d, day, c.register(d+slotsPerDay)-c.register(d))
				}
				sum += day
				days++
			}
			if mean := sum / days; mean+c.jitter < c.daily || mean > c.daily+c.jitter {
				t.Errorf("mean day %d Wh, model daily %d±%d", mean, c.daily, c.jitter)
			}
			// Evening peak above night base, on average.
			var night, evening uint64
			for d := first - first%slotsPerDay + slotsPerDay; d+slotsPerDay <= end; d += slotsPerDay {
				night += c.slot(d + 6)    // 03:00
				evening += c.slot(d + 35) // 17:30
			}
			if evening <= 2*night {
				t.Errorf("evening %d Wh not well above night %d Wh over the log", evening, night)
			}
			// The register between slot boundaries interpolates.
			at := time.Date(2026, 11, 23, 18, 15, 0, 0, time.UTC)
			n, _ := slotOf(at)
			if r := c.registerAt(at); r < c.register(n) || r > c.register(n+1) {
				t.Errorf("register at %v = %d outside [%d, %d]", at, r, c.register(n), c.register(n+1))
			}
		})
	}
	a, b := newConsumption(euis[0]), newConsumption(euis[1])
	if a.slot(1_000_000) == b.slot(1_000_000) && a.slot(1_000_001) == b.slot(1_000_001) && a.daily == b.daily {
		t.Error("two meters report the same consumption")
	}
}

func TestProfileAndDailyLogBounds(t *testing.T) {
	c := newConsumption(smki.MustParseEUI("0012A3FFFE000001"))
	now := time.Date(2026, 11, 23, 18, 45, 10, 0, time.UTC)
	first, end := profileWindow(now)
	tests := []struct {
		name      string
		from, to  time.Time
		wantStart time.Time
		wantLen   int
	}{
		{"last hour", now.Add(-time.Hour), now, time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC), 1},
		{"future only", now.Add(time.Hour), now.Add(2 * time.Hour), slotStart(end), 0},
		{"before the log", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), slotStart(first), 0},
		{"whole log and more", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), now.Add(48 * time.Hour), slotStart(first), int(end - first)},
		{"one day, aligned", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 48},
		{"unaligned range rounds inwards at the start", time.Date(2026, 6, 1, 0, 10, 0, 0, time.UTC), time.Date(2026, 6, 1, 1, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := c.profile(now, tc.from, tc.to)
			if len(l.Values) != tc.wantLen || (tc.wantLen > 0 && !l.Start.Equal(tc.wantStart)) {
				t.Fatalf("profile from %v, %d slots; want %v, %d", l.Start, len(l.Values), tc.wantStart, tc.wantLen)
			}
		})
	}
	d := c.days(now, time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), now, 731)
	if len(d) != 31 || !d[0].start.Equal(time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("daily log of %d days", len(d))
	}
	for _, day := range d {
		if got := c.registerAt(day.start.Add(24*time.Hour)) - c.registerAt(day.start); uint64(day.wh) != got {
			t.Fatalf("day %v: %d Wh, registers say %d", day.start, day.wh, got)
		}
	}
	if d := c.days(now, now.AddDate(-3, 0, 0), now, 731); len(d) != 731 {
		t.Fatalf("daily log keeps %d days, want 731", len(d))
	}
}
