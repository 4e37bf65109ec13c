package router

import (
	"fmt"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// The bounds of the originator counter (spec gbcs-security.md section 7,
// our rule). GBCS sets no upper bound on the counter, so one command whose
// counter is near 2^64 would leave a device refusing every later command
// from its originator; the router refuses such a counter before any MAC.
const (
	// MaxCounterStep is how far above the last counter forwarded for an
	// (originator, target) pair a counter may be: 2^32.
	MaxCounterStep uint64 = 1 << 32
	// MaxCounterLead is how far ahead of the current Unix time in
	// milliseconds the counter of a pair's first command may be: one day.
	MaxCounterLead = 24 * time.Hour
)

// checkCounter applies the anti-replay rules to counter, a command's
// counter from origin to target: strictly greater than last, the last
// forwarded for the pair when known; and not too far ahead: at most
// MaxCounterLead ahead of now in Unix milliseconds, or, when further ahead
// than that, at most MaxCounterStep above last. A counter not above last
// wraps ErrReplay; one too far ahead wraps ErrCounterAhead. Each error names
// the rule and the numbers.
//
// The spec's rule (gbcs-security.md section 7) bounds every counter to 2^32
// above the last; 2^32 ms is 49.7 days, so a user whose counters follow the
// clock (as DCC tools set them) and who sends nothing to a meter for 50
// days would be refused for ever after. A counter within a day of the clock
// cannot lock a meter out (the clock overtakes it within a day), so it is
// accepted whatever the last; the 2^32 step bounds only counters ahead of
// the clock.
func checkCounter(origin, target smki.EUI, last uint64, known bool, counter uint64, now time.Time) error {
	if known && counter <= last {
		return fmt.Errorf("%w: counter %d is not greater than %d, the last forwarded from %s to %s", ErrReplay, counter, last, origin, target)
	}
	limit := firstCounterLimit(now)
	if counter <= limit {
		return nil
	}
	if !known {
		return fmt.Errorf("%w: counter %d of the first command from %s to %s is more than one day (%d ms) ahead of the clock, %d ms since the Unix epoch; the limit is %d",
			ErrCounterAhead, counter, origin, target, MaxCounterLead.Milliseconds(), now.UnixMilli(), limit)
	}
	if step := counter - last; step > MaxCounterStep {
		return fmt.Errorf("%w: counter %d is more than one day ahead of the clock (%d ms since the Unix epoch) and %d above %d, the last forwarded from %s to %s; the limit is %d (2^32) above the last",
			ErrCounterAhead, counter, now.UnixMilli(), step, last, origin, target, MaxCounterStep)
	}
	return nil
}

// firstCounterLimit is the largest counter a pair's first command may
// carry at now.
func firstCounterLimit(now time.Time) uint64 {
	return uint64(max(now.UnixMilli(), 0)) + uint64(MaxCounterLead.Milliseconds())
}

// pickCounter is the counter the router writes into a command it builds
// for a pair: the clock in milliseconds, or one above the last forwarded
// when that is later, so that checkCounter accepts it. Only a pair whose
// last counter is 2^64-1 has no counter left; checkCounter refuses what
// this returns then.
func pickCounter(last uint64, known bool, now time.Time) uint64 {
	clock := uint64(max(now.UnixMilli(), 0))
	if !known {
		return clock
	}
	if last == ^uint64(0) {
		return last
	}
	return max(clock, last+1)
}
