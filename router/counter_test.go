package router

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// TestCheckCounter checks the anti-replay rules of spec gbcs-security.md
// section 7 at their edges (as the router applies them: the 2^32 step bounds
// only a counter more than a day ahead of the clock), and that each refusal
// names its rule and numbers.
func TestCheckCounter(t *testing.T) {
	origin, target := smki.MustParseEUI("1111111111111111"), smki.MustParseEUI("AAAAAAAAAAAAAAAA")
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	ms := uint64(now.UnixMilli())
	day := uint64(24 * time.Hour / time.Millisecond)
	tests := []struct {
		name    string
		last    uint64
		known   bool
		counter uint64
		want    error
		says    []string // in the error
	}{
		{"first: small", 0, false, 1, nil, nil},
		{"first: the clock", 0, false, ms, nil, nil},
		{"first: one day ahead", 0, false, ms + day, nil, nil},
		{"first: one day and 1 ms ahead", 0, false, ms + day + 1, ErrCounterAhead,
			[]string{"first command", "one day", strconv.FormatUint(ms+day+1, 10), strconv.FormatUint(ms, 10), strconv.FormatUint(ms+day, 10), origin.String(), target.String()}},
		{"first: 2^64-1", 0, false, math.MaxUint64, ErrCounterAhead, []string{"18446744073709551615"}},
		{"known: one above", 100, true, 101, nil, nil},
		{"known: 2^32 above", 100, true, 100 + 1<<32, nil, nil},
		{"known: 2^32+1 above, behind the clock", 100, true, 100 + 1<<32 + 1, nil, nil},
		{"known: the clock, 60 days after the last", ms - 60*day, true, ms, nil, nil},
		{"known: a day and 1 ms ahead, 2^32+1 above", ms + day - 1<<32, true, ms + day + 1, ErrCounterAhead,
			[]string{"2^32", strconv.FormatUint(ms+day+1, 10), "4294967297 above", "the last forwarded", "one day ahead", origin.String(), target.String()}},
		{"known: 2^64-1 after the clock", ms, true, math.MaxUint64, ErrCounterAhead, []string{"18446744073709551615", strconv.FormatUint(ms, 10)}},
		{"known: far ahead of the clock but within 2^32 of the last", ms + 10*day, true, ms + 10*day + 1, nil, nil},
		{"known: 2^64-1 within 2^32 of the last", math.MaxUint64 - 5, true, math.MaxUint64, nil, nil},
		{"known: equal", 100, true, 100, ErrReplay, []string{"not greater than 100", "counter 100"}},
		{"known: below", 100, true, 99, ErrReplay, []string{"counter 99", "100"}},
		{"known: zero after zero", 0, true, 0, ErrReplay, nil},
		{"known: last 2^64-1", math.MaxUint64, true, math.MaxUint64, ErrReplay, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCounter(origin, target, tt.last, tt.known, tt.counter, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("checkCounter: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("checkCounter: %v, want %v", err, tt.want)
			}
			for _, k := range Kinds() {
				if k != tt.want && errors.Is(err, k) {
					t.Fatalf("error %v also matches kind %s", err, k.Code())
				}
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// TestPickCounter checks that the counter the router picks for a command
// it builds follows the clock, stays above the last and is always one that
// checkCounter accepts.
func TestPickCounter(t *testing.T) {
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	ms := uint64(now.UnixMilli())
	tests := []struct {
		name  string
		last  uint64
		known bool
		want  uint64
	}{
		{"first: the clock", 0, false, ms},
		{"last behind the clock", ms - 5, true, ms},
		{"last ahead of the clock", ms + 5, true, ms + 6},
		{"last far behind the clock: the clock", 7, true, ms},
		{"last near 2^64", math.MaxUint64 - 1, true, math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickCounter(tt.last, tt.known, now)
			if got != tt.want {
				t.Fatalf("pickCounter = %d, want %d", got, tt.want)
			}
			if err := checkCounter(smki.EUI{1}, smki.EUI{2}, tt.last, tt.known, got, now); err != nil {
				t.Fatalf("the picked counter is refused: %v", err)
			}
		})
	}
	if err := checkCounter(smki.EUI{1}, smki.EUI{2}, math.MaxUint64, true, pickCounter(math.MaxUint64, true, now), now); !errors.Is(err, ErrReplay) {
		t.Fatalf("a pair at 2^64-1: %v, want ErrReplay", err)
	}
}

// TestSubmitBoundsCounter puts the hostile counters through the pipeline:
// 2^64-1 is refused, audited and leaves the pair's counter where it was,
// so that ordinary commands from the same originator still pass.
func TestSubmitBoundsCounter(t *testing.T) {
	w := newWorld(t)
	r := w.router(t)
	ctx := context.Background()
	ms := uint64(w.now.UnixMilli())
	steps := []struct {
		name    string
		counter uint64
		want    error
	}{
		{"first command at 2^64-1", math.MaxUint64, ErrCounterAhead},
		{"first command two days ahead of the clock", ms + 2*uint64(MaxCounterLead.Milliseconds()), ErrCounterAhead},
		{"first command at the clock", ms, nil},
		{"2^64-1 after it", math.MaxUint64, ErrCounterAhead},
		{"2^32+1 above the last", ms + MaxCounterStep + 1, ErrCounterAhead},
		{"2^32 above the last", ms + MaxCounterStep, nil},
		{"the next", ms + MaxCounterStep + 1, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before, known, _ := w.ledger.LastCounter(ctx, w.supplier.eui, w.device)
			_, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, st.counter, true))
			if !errors.Is(err, st.want) && (st.want != nil || err != nil) {
				t.Fatalf("Submit: %v, want %v", err, st.want)
			}
			last, nowKnown, _ := w.ledger.LastCounter(ctx, w.supplier.eui, w.device)
			if st.want == nil {
				if last != st.counter {
					t.Fatalf("last counter %d, want %d", last, st.counter)
				}
				return
			}
			if last != before || nowKnown != known {
				t.Fatalf("a refused counter moved the pair's counter: %d (%v) -> %d (%v)", before, known, last, nowKnown)
			}
			if a := w.audit.last(); a.Action != "command.refused" || a.Kind != "counter-ahead" || a.Stage != StageCounter || a.Counter != st.counter ||
				!strings.Contains(a.Detail, strconv.FormatUint(st.counter, 10)) {
				t.Fatalf("audit entry %+v", a)
			}
		})
	}
}

// TestBuildServiceRequestCounter checks that a service request never hands
// out a counter the pipeline would refuse: a given one is refused at once
// with the pipeline's error; a picked one follows the clock within 2^32 of
// the last and passes the pipeline.
func TestBuildServiceRequestCounter(t *testing.T) {
	w := newWorld(t)
	r := w.router(t)
	ctx := context.Background()
	ms := uint64(w.now.UnixMilli())
	builder := func(p party) func(uint64) (PreCommand, error) {
		return func(counter uint64) (PreCommand, error) {
			return r.BuildServiceRequest(ctx, p.caller(), ServiceRequestInput{Ref: "4.1.1", Target: w.device, Counter: counter})
		}
	}
	submit := func(t *testing.T, p party, pc PreCommand) {
		t.Helper()
		raw, _ := hex.DecodeString(pc.Message)
		if _, err := r.Submit(ctx, p.caller(), raw); err != nil {
			t.Fatalf("submitting the built command: %v", err)
		}
	}

	// The supplier's first command: a given counter too far ahead is
	// refused; the router picks the clock, then one above the last.
	build := builder(w.supplier)
	if _, err := build(math.MaxUint64); !errors.Is(err, ErrCounterAhead) || !strings.Contains(err.Error(), "first command") {
		t.Fatalf("2^64-1 for a first command: %v", err)
	}
	pc := mustBuild(t, build, 0)
	if pc.Counter != ms {
		t.Fatalf("picked %d, want the clock %d", pc.Counter, ms)
	}
	submit(t, w.supplier, pc)
	if pc := mustBuild(t, build, 0); pc.Counter != ms+1 {
		t.Fatalf("picked %d, want %d", pc.Counter, ms+1)
	}
	if _, err := build(ms); !errors.Is(err, ErrReplay) {
		t.Fatalf("the last counter again: %v", err)
	}
	if _, err := build(ms + MaxCounterStep + 1); !errors.Is(err, ErrCounterAhead) {
		t.Fatalf("2^32+1 above the last: %v", err)
	}

	// The network operator's last counter far behind the clock (it counted
	// from 1, or sent nothing for months): the clock is accepted and
	// picked, though it is more than 2^32 above the last.
	build = builder(w.distributor)
	submit(t, w.distributor, mustBuild(t, build, 7))
	if _, err := build(ms + uint64(MaxCounterLead.Milliseconds())); err != nil {
		t.Fatalf("a day ahead of the clock, far above the last: %v", err)
	}
	pc = mustBuild(t, build, 0)
	if pc.Counter != ms {
		t.Fatalf("picked %d, want the clock %d", pc.Counter, ms)
	}
	submit(t, w.distributor, pc)
}

func mustBuild(t *testing.T, build func(uint64) (PreCommand, error), counter uint64) PreCommand {
	t.Helper()
	pc, err := build(counter)
	if err != nil {
		t.Fatalf("BuildServiceRequest with counter %d: %v", counter, err)
	}
	return pc
}
