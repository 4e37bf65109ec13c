package device

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// SlotDuration is the length of one profile-log slot: half an hour.
const SlotDuration = 30 * time.Minute

// slotsPerDay is the number of half-hour slots in a UTC day. Slot n starts
// at n*1800 seconds after the Unix epoch, so slot n%48 == 0 starts at
// midnight UTC.
const slotsPerDay = 48

// ProfileMonths is how far back the half-hourly profile log reaches: 13
// months, as GB meters keep.
const ProfileMonths = 13

// dailyShape is the relative weight of each half hour of the day in the
// synthetic load curve: a night-time base, a morning rise and an evening
// peak, as a typical GB domestic profile. The weights sum to 1000.
var dailyShape = [slotsPerDay]uint32{
	14, 13, 12, 11, 11, 11, 11, 11, 11, 11, 12, 13, // 00:00-06:00
	16, 20, 25, 27, 26, 23, 20, 19, 18, 18, 19, 20, // 06:00-12:00
	22, 21, 19, 18, 18, 19, 21, 25, 30, 35, 38, 38, // 12:00-18:00
	36, 33, 30, 27, 25, 23, 21, 19, 18, 16, 15, 14, // 18:00-24:00
}

// cumShape[i] is the sum of dailyShape[0:i].
var cumShape = func() (c [slotsPerDay + 1]uint32) {
	for i, w := range dailyShape {
		c[i+1] = c[i] + w
	}
	return c
}()

// consumption is a meter's synthetic consumption model: the cumulative
// import register is a closed-form function of the slot number, so any slot,
// day or register value is computed in constant time from a few numbers
// derived from the EUI, and nothing is stored.
//
// C(n) = base + (n/48)*daily + prefix[n%48] + jitter(n), where prefix is the
// running sum of the slot means and |jitter| <= half the smallest slot mean,
// so the half-hour consumption C(n+1)-C(n) is never negative.
type consumption struct {
	key    uint64 // jitter hash key
	base   uint64 // register offset in Wh
	daily  uint64 // mean daily consumption in Wh
	jitter uint64 // jitter amplitude in Wh
	// openingBalance is the meter's balance when made, in milli-pence.
	openingBalance int64
}

func newConsumption(eui smki.EUI) consumption {
	h := sha256.Sum256(append([]byte("metertrust/device consumption v1:"), eui[:]...))
	r := func(i int) uint64 { return binary.BigEndian.Uint64(h[i*8:]) }
	daily := 5000 + r(0)%8000 // 5 to 13 kWh a day: 1.8 to 4.7 MWh a year
	minMean := daily * 11 / 1000
	return consumption{
		key:            r(1),
		base:           1_000_000 + r(2)%50_000_000, // 1 to 51 MWh already on the register
		daily:          daily,
		jitter:         minMean / 2,
		openingBalance: 100_000 + int64(r(3)%5_000_000), // 1 to 51 pounds, in milli-pence
	}
}

// slotMean returns the mean consumption in Wh of slot-of-day i and the sum
// of the means of the slots before it, distributing rounding so the means
// of a day add up to exactly daily.
func (c *consumption) slotMean(i int) (mean, prefix uint64) {
	// prefix(i) = floor(daily * cum(i) / 1000), mean = prefix(i+1)-prefix(i).
	cum := uint64(cumShape[i])
	prefix = c.daily * cum / 1000
	next := c.daily * (cum + uint64(dailyShape[i])) / 1000
	return next - prefix, prefix
}

// jitterAt returns the jitter term of C(n), in [0, 2*jitter], offset so
// that the register stays positive.
func (c *consumption) jitterAt(n uint64) uint64 {
	if c.jitter == 0 {
		return 0
	}
	x := n ^ c.key
	// splitmix64 finaliser: a fast, well-mixed hash of the slot number.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x % (2*c.jitter + 1)
}

// register returns C(n): the import register in Wh at the start of slot n.
func (c *consumption) register(n uint64) uint64 {
	_, prefix := c.slotMean(int(n % slotsPerDay))
	return c.base + (n/slotsPerDay)*c.daily + prefix + c.jitterAt(n)
}

// slot returns the consumption in Wh of slot n.
func (c *consumption) slot(n uint64) uint64 { return c.register(n+1) - c.register(n) }

// registerAt returns the import register in Wh at time t, interpolating
// within the current slot.
func (c *consumption) registerAt(t time.Time) uint64 {
	n, into := slotOf(t)
	return c.register(n) + c.slot(n)*uint64(into)/uint64(SlotDuration)
}

// slotOf returns the slot containing t and how far into it t is.
func slotOf(t time.Time) (uint64, time.Duration) {
	s := t.Unix()
	if s < 0 {
		return 0, 0
	}
	n := uint64(s) / uint64(SlotDuration/time.Second)
	return n, t.Sub(slotStart(n))
}

// slotStart returns the start time of slot n, in UTC.
func slotStart(n uint64) time.Time {
	return time.Unix(int64(n)*int64(SlotDuration/time.Second), 0).UTC()
}

// profileWindow returns the first and one-past-last slots of the profile log
// a meter holds at time now: the completed half hours of the last 13 months.
func profileWindow(now time.Time) (first, end uint64) {
	end, _ = slotOf(now)
	from := now.UTC().AddDate(0, -ProfileMonths, 0)
	first, into := slotOf(from)
	if into > 0 {
		first++
	}
	return first, end
}

// profile returns the slots starting in [from, to) that the log holds at
// time now.
func (c *consumption) profile(now, from, to time.Time) ProfileLog {
	first, end := profileWindow(now)
	lo, into := slotOf(from)
	if into > 0 {
		lo++
	}
	hi, into := slotOf(to)
	if into > 0 {
		hi++
	}
	lo, hi = max(lo, first), min(hi, end)
	l := ProfileLog{Start: slotStart(lo), Values: []uint32{}}
	for n := lo; n < hi; n++ {
		l.Values = append(l.Values, uint32(min(c.slot(n), 1<<32-1)))
	}
	return l
}

// ProfileLog is half-hourly consumption: Values[i] is the energy in Wh of
// the half hour starting at Start + i*30 minutes.
type ProfileLog struct {
	Start  time.Time
	Values []uint32
}

// Balance is the meter balance.
type Balance struct {
	// MilliPence is the meter balance in thousandths of a penny; negative
	// when the consumer owes.
	MilliPence int64
}

// day is one completed UTC day of the daily log.
type day struct {
	start time.Time
	wh    uint32
}

// days returns the completed UTC days whose start lies in [from, to], no
// earlier than keep days before the current day, at time now.
func (c *consumption) days(now, from, to time.Time, keep int) []day {
	today, _ := slotOf(now)
	today -= today % slotsPerDay
	first := uint64(0)
	if back := uint64(keep) * slotsPerDay; today > back {
		first = today - back
	}
	lo, into := slotOf(from)
	if into > 0 || lo%slotsPerDay != 0 {
		lo += slotsPerDay - lo%slotsPerDay
	}
	hi, _ := slotOf(to)
	var out []day
	for d := max(lo, first); d < today && d <= hi; d += slotsPerDay {
		out = append(out, day{start: slotStart(d), wh: clamp32(c.register(d+slotsPerDay) - c.register(d))})
	}
	return out
}
