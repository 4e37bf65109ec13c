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
// fleet first (in a router instance process, through the bench's fleet
// endpoint) and returns the meter's response. Each router instance has
// its own; the bench adds them up.
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

// tally is what a recorder received in a phase: how many sends, of how
// many distinct commands, how many of them arrived more than once, how
// many were not MAC'd commands, and when the last arrived (Unix
// nanoseconds, zero for none).
type tally struct {
	Sends      int   `json:"sends"`
	Distinct   int   `json:"distinct"`
	Duplicates int   `json:"duplicates"`
	Bad        int   `json:"bad"`
	Last       int64 `json:"last"`
}

// lastTime is Last as a time, zero for none.
func (t tally) lastTime() time.Time {
	if t.Last == 0 {
		return time.Time{}
	}
	return time.Unix(0, t.Last)
}

// tally reports what was recorded since the last reset.
func (r *recorder) tally() tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := tally{Sends: r.count, Distinct: len(r.seen), Bad: r.bad}
	for _, n := range r.seen {
		if n > 1 {
			t.Duplicates++
		}
	}
	if !r.last.IsZero() {
		t.Last = r.last.UnixNano()
	}
	return t
}

// entries lists every command recorded since the last reset with how many
// times it arrived.
func (r *recorder) entries() []seenEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]seenEntry, 0, len(r.seen))
	for d, n := range r.seen {
		out = append(out, seenEntry{Target: d.target, Counter: d.counter, Times: n})
	}
	return out
}

// targetCounter reads a submitted command's target and counter.
func targetCounter(raw []byte) (smki.EUI, uint64, error) {
	m, err := commands.Parse(raw)
	if err != nil {
		return smki.EUI{}, 0, err
	}
	return m.Recipient, m.Counter, nil
}
