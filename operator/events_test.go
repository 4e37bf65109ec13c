package operator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
)

// TestEventsAlertWithinOneSecond checks that an operator's event stream
// carries a quarantine alert within one second of the breach, then the
// release alert, and heartbeats; and that a stream for another user sees
// none of them.
func TestEventsAlertWithinOneSecond(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{Heartbeat: Duration(200 * time.Millisecond)})
			ts := httptest.NewServer(f.srv.Handler())
			defer ts.Close()
			all, closeAll := openStream(t, ts.URL, "", viewerToken)
			defer closeAll()
			mine, closeMine := openStream(t, ts.URL, "?user="+supplier.String(), officerToken)
			defer closeMine()
			others, closeOthers := openStream(t, ts.URL, "?user="+supplier2.String(), viewerToken)
			defer closeOthers()

			start := time.Now()
			ref := f.quarantine(supplier)
			for name, ch := range map[string]<-chan sseEvent{"all users": all, "the user's": mine} {
				a := nextAlert(t, ch, time.Second)
				if a.Ref != ref || a.State != anomaly.StateQuarantined || a.User != supplier || a.Kind != anomaly.KindDCCThreshold || a.Origin != "" {
					t.Errorf("%s stream: alert %+v", name, a)
				}
				t.Logf("%s stream: alert after %s", name, time.Since(start))
			}
			if st, b, _ := f.do("POST", "/v1/quarantine/"+ref+"/release", officerToken, `{"reason":"known batch"}`); st != http.StatusOK {
				t.Fatalf("release = %d: %s", st, b)
			}
			if a := nextAlert(t, mine, time.Second); a.Ref != ref || a.State != anomaly.StateReleased || a.By == "" || a.Reason != "known batch" {
				t.Errorf("release alert %+v", a)
			}
			// The other user's stream gets heartbeats and nothing else.
			deadline := time.After(700 * time.Millisecond)
			beats := 0
		loop:
			for {
				select {
				case ev, ok := <-others:
					if !ok {
						t.Fatal("stream ended")
					}
					if ev.Event != EventHeartbeat {
						t.Fatalf("other user's stream got %+v", ev)
					}
					beats++
				case <-deadline:
					break loop
				}
			}
			if beats == 0 {
				t.Error("no heartbeat in 700ms with a 200ms heartbeat")
			}
		})
	}
}

// nextAlert returns the next alert on ch, skipping heartbeats, failing
// after within.
func nextAlert(t *testing.T, ch <-chan sseEvent, within time.Duration) anomaly.Alert {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Event == EventHeartbeat {
				continue
			}
			if ev.Event != EventAlert || ev.ID == "" {
				t.Fatalf("event %+v, want an alert", ev)
			}
			var a anomaly.Alert
			if err := json.Unmarshal([]byte(ev.Data), &a); err != nil {
				t.Fatalf("alert data %q: %v", ev.Data, err)
			}
			return a
		case <-deadline:
			t.Fatalf("no alert within %s", within)
		}
	}
}

// TestEventsShutdown checks that Serve ends event streams when its context
// is done and returns cleanly.
func TestEventsShutdown(t *testing.T) {
	f := newFixture(t, "memory", Config{Heartbeat: Duration(time.Hour), ShutdownTimeout: Duration(2 * time.Second)})
	ln, err := netListen(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	ch, closeStream := openStream(t, "http://"+ln.Addr().String(), "", viewerToken)
	defer closeStream()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	for range ch {
	}
}
