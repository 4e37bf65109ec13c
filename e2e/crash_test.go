package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// outcome is what the client learnt of one submitted command.
type outcome int

const (
	accepted outcome = iota // 202 with a receipt: the router promised it
	refused                 // a problem: nothing accepted
	unknown                 // the connection failed: accepted or not, the client cannot tell
)

// sent is one submitted command.
type sent struct {
	target  smki.EUI
	counter uint64
	outcome outcome
	id      string
}

// TestRouterKilledMidLoad submits register reads to a fleet of meters
// through a router process, kills the router with SIGKILL a third of the
// way through and restarts it on the same store: every command answered
// "accepted" is executed by its meter exactly once (DESIGN.md principle 4),
// and nothing is executed that was not submitted. Two load shapes: each
// client pipelines its meter's commands (the next one as soon as the
// previous is accepted), or keeps one in flight (the next one once the
// meter has executed the previous), which leaves the router no ordering
// to get wrong and so tests crash recovery alone.
func TestRouterKilledMidLoad(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		for _, mode := range []struct {
			name          string
			awaitExecuted bool
		}{{"pipelined", false}, {"one-in-flight", true}} {
			t.Run(backend+"/"+mode.name, func(t *testing.T) {
				t.Parallel() // the restarted router waits out the dead one's leases (30s)
				killedMidLoad(t, backend, mode.awaitExecuted)
			})
		}
	}
}

func killedMidLoad(t *testing.T, backend string, awaitExecuted bool) {
	t.Helper()
	const meters, perMeter = 12, 12
	w := newWorld(t, backend, meters)
	r := w.startRouter(t, "router-1", "")

	// One service request per meter gives the command; the load
	// varies its counter (a register read is not critical, so
	// unsigned).
	base := uint64(time.Now().UnixMilli())
	msgs := make([][][]byte, meters)
	for i, eui := range w.meters {
		tmpl := w.preCommand(t, r, w.supplier, "4.1.1", eui, base)
		for j := range perMeter {
			msgs[i] = append(msgs[i], withCounter(t, tmpl, base+1+uint64(j)))
		}
	}

	var (
		mu        sync.Mutex
		results   []sent
		nAccepted atomic.Int64
		current   atomic.Pointer[routerProc]
	)
	current.Store(r)
	killAt := int64(meters * perMeter / 3)
	killed := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The killer: SIGKILL once a third of the load is accepted, then
	// a new router on the same address and store.
	go func() {
		for nAccepted.Load() < killAt {
			if ctx.Err() != nil {
				close(killed)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("SIGKILL to the router after %d commands accepted", nAccepted.Load())
		r.kill()
		close(killed)
	}()

	var wg sync.WaitGroup
	// On any exit, even t.Fatal, the clients stop before the test ends.
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, eui := range w.meters {
		wg.Go(func() {
			for j := range perMeter {
				if ctx.Err() != nil {
					t.Errorf("meter %s: load deadline passed after %d commands", eui, j)
					return
				}
				counter := base + 1 + uint64(j)
				st, rc, pr, err := current.Load().submit(w.supplier, msgs[i][j])
				s := sent{target: eui, counter: counter}
				switch {
				case err != nil:
					s.outcome = unknown
					time.Sleep(20 * time.Millisecond)
				case st == http.StatusAccepted:
					if rc.Counter != counter || rc.Target != eui || rc.Status != "accepted" {
						t.Errorf("receipt %+v for %s counter %d", rc, eui, counter)
					}
					s.outcome, s.id = accepted, rc.ID
					nAccepted.Add(1)
				case st == http.StatusServiceUnavailable:
					s.outcome = refused // "nothing was accepted; try again later"
				default:
					t.Errorf("meter %s counter %d: %d %+v", eui, counter, st, pr)
					s.outcome = refused
				}
				mu.Lock()
				results = append(results, s)
				mu.Unlock()
				if s.outcome == accepted && awaitExecuted && !w.awaitExecution(ctx, eui, counter) {
					t.Errorf("meter %s: counter %d not executed before the load deadline", eui, counter)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	<-killed
	if ctx.Err() == nil {
		// Restart as soon as the old process is gone: the same
		// address, the same store.
		current.Store(w.startRouter(t, "router-2", r.addr))
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Commands leased by the dead router come back when their lease
	// (30s) runs out.
	w.awaitOutboxEmpty(t, 75*time.Second)
	checkExactlyOnce(t, w, current.Load(), results)
}

// awaitExecution polls the fleet until meter eui has executed counter, and
// reports whether it did before ctx ended.
func (w *world) awaitExecution(ctx context.Context, eui smki.EUI, counter uint64) bool {
	c := &http.Client{Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		if res, err := c.Get(w.fleetURL + "/v1/devices/" + eui.String() + "/stats"); err == nil {
			var ms device.MeterStats
			err = json.NewDecoder(res.Body).Decode(&ms)
			res.Body.Close()
			for _, x := range ms.Executions {
				if err == nil && x.Counter == counter {
					return true
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// checkExactlyOnce compares the meters' execution journals with what the
// clients were told.
func checkExactlyOnce(t *testing.T, w *world, r *routerProc, results []sent) {
	t.Helper()
	fs, err := w.fleetStats()
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		target  smki.EUI
		counter uint64
	}
	executed := map[key]int{}
	highest := map[smki.EUI]uint64{}
	for eui, ms := range fs.Devices {
		e := smki.MustParseEUI(eui)
		if uint64(len(ms.Executions)) != ms.Executed {
			t.Errorf("meter %s executed %d commands, journal holds %d", eui, ms.Executed, len(ms.Executions))
		}
		for _, x := range ms.Executions {
			if x.Originator != w.supplier.eui {
				t.Errorf("meter %s executed a command from %s", eui, x.Originator)
			}
			executed[key{e, x.Counter}]++
			highest[e] = max(highest[e], x.Counter)
		}
	}
	var nAccepted, nUnknown, nUnknownRan int
	states := map[string]int{}
	outcomes := map[key]outcome{}
	for _, s := range results {
		k := key{s.target, s.counter}
		outcomes[k] = s.outcome
		switch s.outcome {
		case accepted:
			nAccepted++
			states[r.commandState(t, w.supplier, s.id)]++
			switch n := executed[k]; {
			case n == 0 && highest[s.target] > s.counter:
				t.Errorf("accepted command %s to %s counter %d never executed, but the meter executed later counters (up to %d): "+
					"the router forwarded commands to one meter out of order and the meter refused this one as a replay (router state %q)",
					s.id, s.target, s.counter, highest[s.target], r.commandState(t, w.supplier, s.id))
			case n != 1:
				t.Errorf("accepted command %s to %s counter %d executed %d times, want once (router state %q)",
					s.id, s.target, s.counter, n, r.commandState(t, w.supplier, s.id))
			}
		case unknown:
			nUnknown++
			if executed[k] > 0 {
				nUnknownRan++
			}
		}
	}
	for k, n := range executed {
		o, ok := outcomes[k]
		switch {
		case !ok:
			t.Errorf("meter %s executed counter %d, which was never submitted", k.target, k.counter)
		case n > 1:
			t.Errorf("meter %s executed counter %d %d times", k.target, k.counter, n)
		case o == refused:
			t.Errorf("meter %s executed counter %d, which the router refused", k.target, k.counter)
		}
	}
	if nAccepted == 0 {
		t.Error("no command accepted")
	}
	t.Logf("%d accepted, %d with unknown outcome (%d of them executed); meters executed %d, discarded %v; router states of the accepted: %v",
		nAccepted, nUnknown, nUnknownRan, fs.Executed, fmt.Sprint(fs.Discarded), states)
}

// commandState reads an accepted command's state from the router as its
// caller sees it (GET /v1/commands/{id}).
func (r *routerProc) commandState(t *testing.T, p *party, id string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+"/v1/commands/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, b, pr, err := do(p.httpClient, req)
	if err != nil || st != http.StatusOK {
		return fmt.Sprintf("unreadable: %d %+v %v", st, pr, err)
	}
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Sprintf("unreadable: %v", err)
	}
	return v.State
}
