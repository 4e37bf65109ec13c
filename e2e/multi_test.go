package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// TestTwoRoutersCountExactly runs two router processes on one PostgreSQL
// database and splits a burst of signed disconnects (SR 7.2) across them at
// once: with a threshold of limit disconnects per supplier per hour, exactly
// limit are accepted and executed and the rest quarantined (spec section 10,
// "counting is exact across every router instance"): no breach missed, none
// invented.
func TestTwoRoutersCountExactly(t *testing.T) {
	needBinary(t)
	const meters, limit = 30, 10
	w := newWorld(t, "postgres", meters)

	// The threshold is set through the anomaly detector on the shared
	// store: the router exposes no operator API or flag for it.
	ctx := context.Background()
	det, err := anomaly.New(ctx, anomaly.Config{Store: w.db.Anomaly()})
	if err != nil {
		t.Fatal(err)
	}
	admin := anomaly.Actor{ID: "e2e-operator", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2",
		Limit: limit, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	routers := []*routerProc{w.startRouter(t, "router-a", ""), w.startRouter(t, "router-b", "")}

	base := uint64(time.Now().UnixMilli())
	msgs := make([][]byte, meters)
	for i, eui := range w.meters {
		msgs[i] = w.preCommand(t, routers[i%2], w.supplier, "7.2", eui, base)
	}

	type result struct {
		target smki.EUI
		status int
		code   string
		err    error
	}
	results := make([]result, meters)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, eui := range w.meters {
		wg.Go(func() {
			<-gate
			st, _, pr, err := routers[i%2].submit(w.supplier, msgs[i])
			results[i] = result{target: eui, status: st, code: pr.Code, err: err}
		})
	}
	close(gate)
	wg.Wait()

	acceptedTo := map[smki.EUI]bool{}
	quarantined := 0
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("%s: %v", r.target, r.err)
		case r.status == http.StatusAccepted:
			acceptedTo[r.target] = true
		case r.status == http.StatusTooManyRequests && r.code == "quarantined":
			quarantined++
		default:
			t.Errorf("%s: %d %q", r.target, r.status, r.code)
		}
	}
	if len(acceptedTo) != limit || quarantined != meters-limit {
		t.Fatalf("%d accepted and %d quarantined, want %d and %d", len(acceptedTo), quarantined, limit, meters-limit)
	}

	// The quarantine holds the rest, and only the accepted ones reach the
	// meters.
	viewer := anomaly.Actor{ID: "e2e-viewer", Roles: []anomaly.Role{anomaly.RoleViewer}}
	qs, err := det.List(ctx, viewer, anomaly.Filter{State: anomaly.StateQuarantined, Limit: anomaly.MaxList})
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != meters-limit {
		t.Errorf("quarantine holds %d commands, want %d", len(qs), meters-limit)
	}
	w.awaitOutboxEmpty(t, 30*time.Second)
	fs, err := w.fleetStats()
	if err != nil {
		t.Fatal(err)
	}
	for eui, ms := range fs.Devices {
		want := uint64(0)
		if acceptedTo[smki.MustParseEUI(eui)] {
			want = 1
		}
		if ms.Executed != want {
			t.Errorf("meter %s executed %d disconnects, want %d", eui, ms.Executed, want)
		}
	}
}
