package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// barrierCommand is a command of originator to target; a barrier when
// barrier is set.
func barrierCommand(id, originator, target string, counter uint64, barrier bool) RouterCommand {
	c := rtCommand(id, counter)
	c.Caller, c.Originator, c.Target, c.Barrier = originator, originator, target, barrier
	return c
}

const (
	bOther = "2222222222222222"
	bTCoS  = "3333333333333333"
	bThird = "4444444444444444"
	bElse  = "BBBBBBBBBBBBBBBB"
)

// TestClaimOutboxBarrier: a barrier waits until every command of its
// target admitted before it has left the outbox (forwarded, or failed for
// good), whatever their pairs and however they back off; the commands of
// its target admitted after it, of any pair, wait until it has left; other
// targets are not held up; a handoff at admission follows the same rule.
func TestClaimOutboxBarrier(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		rs := db.Router()
		for _, c := range []RouterCommand{
			barrierCommand("s1", rtSupplier, rtDevice, 1, false),
			barrierCommand("n1", bOther, rtDevice, 1, false),
			barrierCommand("x1", bTCoS, rtDevice, 1, true),
			barrierCommand("s2", rtSupplier, rtDevice, 2, false),
			barrierCommand("o1", bThird, rtDevice, 1, false),
			barrierCommand("u1", rtSupplier, bElse, 1, false),
		} {
			if err := rs.RecordCommand(ctx, c, nil); err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
		}
		if c, err := rs.RouterCommand(ctx, "x1"); err != nil || !c.Barrier {
			t.Fatalf("x1 read back: barrier %v, %v", c.Barrier, err)
		}
		claim := func(at time.Time) []string {
			t.Helper()
			items, err := rs.ClaimOutbox(ctx, at, time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, it := range items {
				out = append(out, it.Command.ID)
			}
			slices.Sort(out)
			return out
		}
		want := func(at time.Time, ids ...string) {
			t.Helper()
			if got := claim(at); !slices.Equal(got, ids) {
				t.Fatalf("claim at +%s = %v, want %v", at.Sub(rtT0), got, ids)
			}
		}
		// Before the barrier: s1 and n1; after it, s2 and o1 wait; u1 is
		// another meter's.
		want(rtT0, "n1", "s1", "u1")
		for _, id := range []string{"s1", "u1"} {
			if err := rs.MarkForwarded(ctx, id, rtT0); err != nil {
				t.Fatal(err)
			}
		}
		want(rtT0) // n1 is still in the outbox (leased): x1 waits
		// n1 fails and backs off: still in the outbox, x1 still waits.
		if err := rs.RetryOutbox(ctx, "n1", rtT0.Add(time.Hour), "down"); err != nil {
			t.Fatal(err)
		}
		want(rtT0.Add(2 * time.Minute))
		// n1 fails for good: x1 is claimed, and only x1.
		if _, err := rs.CompleteCommand(ctx, "n1", CommandFailed, nil, "gave up",
			Delivery{Caller: bOther, CommandID: "n1", Kind: DeliveryFailure, At: rtT0}); err != nil {
			t.Fatal(err)
		}
		want(rtT0.Add(2*time.Minute), "x1")
		// x1 backs off: s2 and o1 still wait behind it.
		if err := rs.RetryOutbox(ctx, "x1", rtT0.Add(time.Hour), "down"); err != nil {
			t.Fatal(err)
		}
		want(rtT0.Add(4 * time.Minute))
		// A command admitted now for the meter is not handed off past x1;
		// one for another meter is.
		res, _, err := rs.Admit(ctx, AdmitGroup{Items: []Admission{
			{Command: barrierCommand("o2", bThird, rtDevice, 2, false), Handoff: true, Lease: rtT0.Add(3 * time.Hour)},
			{Command: barrierCommand("v1", bOther, bElse, 1, false), Handoff: true, Lease: rtT0.Add(3 * time.Hour)},
		}, Seal: func(int) ([]byte, error) { return []byte{0xDD, 9}, nil }})
		if err != nil || res[0].Err != nil || res[1].Err != nil {
			t.Fatalf("Admit = %+v, %v", res, err)
		}
		if res[0].Handoff || !res[1].Handoff {
			t.Fatalf("handoffs %v (behind the barrier) and %v (another meter), want false and true", res[0].Handoff, res[1].Handoff)
		}
		if err := rs.MarkForwarded(ctx, "x1", rtT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// x1 has gone: the commands after it go, each pair's head.
		want(rtT0.Add(time.Hour), "o1", "s2")
		for _, id := range []string{"o1", "s2"} {
			if err := rs.MarkForwarded(ctx, id, rtT0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		want(rtT0.Add(time.Hour), "o2")
		if err := rs.MarkForwarded(ctx, "o2", rtT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A barrier admitted to a meter with an empty outbox is handed off;
		// one behind a command is not.
		res, _, err = rs.Admit(ctx, AdmitGroup{Items: []Admission{
			{Command: barrierCommand("x2", bTCoS, rtDevice, 2, true), Handoff: true, Lease: rtT0.Add(2 * time.Hour)},
			{Command: barrierCommand("x3", bTCoS, bElse, 1, true), Handoff: true, Lease: rtT0.Add(2 * time.Hour)},
		}, Seal: func(int) ([]byte, error) { return []byte{0xDD, 9}, nil }})
		if err != nil || res[0].Err != nil || res[1].Err != nil {
			t.Fatalf("Admit = %+v, %v", res, err)
		}
		if !res[0].Handoff || res[1].Handoff {
			t.Fatalf("barrier handoffs %v (empty outbox) and %v (behind v1), want true and false", res[0].Handoff, res[1].Handoff)
		}
	})
}

// TestClaimOutboxBarrierRace has claimers race over meters whose outboxes
// mix pairs and barriers, each forwarding what it claims after a random
// pause: every command is claimed exactly once, and for every barrier the
// commands of its meter admitted before it had left the outbox when it was
// claimed, and it had left when any admitted after it was claimed.
func TestClaimOutboxBarrierRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			db := open(t)
			ctx := context.Background()
			const targets, perTarget = 6, 9
			originators := []string{rtSupplier, bOther, bThird, bTCoS}
			type entry struct {
				c     RouterCommand
				order int // admission order within the target
			}
			byID := map[string]entry{}
			counters := map[string]uint64{}
			for i := range perTarget {
				for tg := range targets {
					target := fmt.Sprintf("AAAAAAAAAAAAAA%02X", tg)
					o := originators[(i+tg)%len(originators)]
					barrier := i%4 == 3
					if barrier {
						o = bTCoS
					}
					counters[o+target]++
					c := barrierCommand(fmt.Sprintf("t%d-%d", tg, i), o, target, counters[o+target], barrier)
					if err := db.Router().RecordCommand(ctx, c, nil); err != nil {
						t.Fatal(err)
					}
					byID[c.ID] = entry{c, i}
				}
			}
			var (
				mu      sync.Mutex
				claimed = map[string]int{}
				gone    = map[string]bool{} // marked forwarded
				errs    []string
			)
			// check runs when id is claimed: the commands of its meter that
			// must have left the outbox have left.
			check := func(id string) {
				e := byID[id]
				for _, o := range byID {
					if o.c.Target != e.c.Target || o.c.ID == id {
						continue
					}
					must := (e.c.Barrier && o.order < e.order) || (o.c.Barrier && o.order < e.order)
					if must && !gone[o.c.ID] {
						errs = append(errs, fmt.Sprintf("%s claimed while %s (barrier %v) was in the outbox", id, o.c.ID, o.c.Barrier))
					}
				}
			}
			var wg sync.WaitGroup
			for w := range 4 {
				h := db
				if w%2 == 1 {
					h = open(t)
				}
				wg.Go(func() {
					for idle := 0; idle < 200; {
						items, err := h.Router().ClaimOutbox(ctx, rtT0, time.Hour, 3)
						if err != nil {
							mu.Lock()
							errs = append(errs, err.Error())
							mu.Unlock()
							return
						}
						if len(items) == 0 {
							mu.Lock()
							done := len(gone) == len(byID)
							mu.Unlock()
							if done {
								return
							}
							idle++
							time.Sleep(time.Millisecond)
							continue
						}
						mu.Lock()
						for _, it := range items {
							claimed[it.Command.ID]++
							check(it.Command.ID)
						}
						mu.Unlock()
						time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
						for _, it := range items {
							// Gone just before the mark: a row not yet gone was
							// certainly in the outbox, so every violation
							// check reports is real.
							mu.Lock()
							gone[it.Command.ID] = true
							mu.Unlock()
							if err := h.Router().MarkForwarded(ctx, it.Command.ID, rtT0); err != nil {
								mu.Lock()
								errs = append(errs, err.Error())
								mu.Unlock()
							}
						}
					}
				})
			}
			wg.Wait()
			for _, e := range errs {
				t.Error(e)
			}
			for id := range byID {
				if claimed[id] != 1 {
					t.Errorf("%s claimed %d times, want once", id, claimed[id])
				}
			}
			if n, _ := db.Router().OutboxDepth(ctx); n != 0 {
				t.Errorf("outbox holds %d commands at the end", n)
			}
		})
	}
}
