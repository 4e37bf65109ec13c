package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// delivery names one command as the transport saw it: target and
// originator counter, unique per command.
type delivery struct {
	target  smki.EUI
	counter uint64
}

// recorder is the router's transport during the bench: it records every
// command handed to it (when and how many times) and acknowledges it, the
// response to come later; with meters on, it delivers to the in-process
// fleet first and returns the meter's response.
type recorder struct {
	fleet router.Transport

	mu     sync.Mutex
	meters bool
	seen   map[delivery]int
	last   time.Time
	count  int
	bad    int
}

func newRecorder(fleet router.Transport) *recorder {
	return &recorder{fleet: fleet, seen: map[delivery]int{}}
}

// Send records msg and, with meters on, delivers it.
func (r *recorder) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	m, err := commands.Parse(msg)
	if err != nil || !m.HasMAC() || m.Recipient != target {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: bench transport got a command that is not a MAC'd command for %s", router.ErrDeviceRefused, target)
	}
	r.mu.Lock()
	meters := r.meters
	r.mu.Unlock()
	var resp []byte
	if meters {
		if resp, err = r.fleet.Send(ctx, target, msg); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[delivery{target, m.Counter}]++
	r.count++
	r.last = time.Now()
	return resp, nil
}

// reset starts a phase: forget what was recorded, deliver to the meters or
// not.
func (r *recorder) reset(meters bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meters = meters
	r.seen = map[delivery]int{}
	r.count, r.bad = 0, 0
	r.last = time.Time{}
}

// tally reports how many sends were recorded, of how many distinct
// commands, how many arrived more than once, how many were not MAC'd
// commands, and when the last arrived.
func (r *recorder) tally() (sends, distinct, duplicates, bad int, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		if n > 1 {
			duplicates++
		}
	}
	return r.count, len(r.seen), duplicates, r.bad, r.last
}

// times reports how many times the command to target with counter was
// recorded.
func (r *recorder) times(target smki.EUI, counter uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[delivery{target, counter}]
}

// targetCounter reads a submitted command's target and counter.
func targetCounter(raw []byte) (smki.EUI, uint64, error) {
	m, err := commands.Parse(raw)
	if err != nil {
		return smki.EUI{}, 0, err
	}
	return m.Recipient, m.Counter, nil
}
