package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// releaseStore opens a fresh embedded store holding one released record per
// ref, released at t0.
func releaseStore(t *testing.T, t0 time.Time, refs ...string) *store.AnomalyStore {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDataDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := db.Anomaly()
	for _, ref := range refs {
		q := anomaly.Quarantine{Ref: ref, CommandID: "cmd-" + ref, User: smki.EUI{0, 1}, ServiceRef: "1.1",
			Target: smki.EUI{0, 2}, Kind: anomaly.KindUserThreshold, Command: []byte{1}, At: t0,
			State: anomaly.StateQuarantined, CreatedAt: t0}
		a := anomaly.AuditEntry{Time: t0, Actor: "test", Action: "anomaly.quarantine", Object: ref, Outcome: anomaly.OutcomeSuccess}
		if err := s.AddQuarantine(ctx, q, a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DecideQuarantine(ctx, anomaly.Decide{Ref: ref, To: anomaly.StateReleased, By: "otto", At: t0, Reason: "ok"}, a); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func TestReleasesSweep(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// errs are the forward function's answers, attempt by attempt.
		errs        []error
		maxAttempts int
		want        anomaly.ForwardState
		wantCalls   int
		wantError   error
	}{
		{name: "forwarded", errs: []error{nil}, want: anomaly.ForwardForwarded, wantCalls: 1},
		{name: "permanent refusal", errs: []error{fmt.Errorf("%w: counter 5 <= 9", ErrReplay)},
			want: anomaly.ForwardFailed, wantCalls: 1, wantError: ErrReplay},
		{name: "transient then forwarded", errs: []error{fmt.Errorf("%w: store down", ErrUnavailable), errors.New("timeout"), nil},
			want: anomaly.ForwardForwarded, wantCalls: 3},
		{name: "transient until given up", maxAttempts: 2,
			errs: []error{fmt.Errorf("%w: a", ErrUnavailable), fmt.Errorf("%w: b", ErrUnavailable), nil},
			want: anomaly.ForwardFailed, wantCalls: 2, wantError: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := releaseStore(t, t0, "Q-1")
			clock := &fakeClock{t: t0}
			var calls atomic.Int32
			r, err := NewReleases(ReleasesConfig{Queue: s, MaxAttempts: tt.maxAttempts, Clock: clock.now,
				Forward: func(_ context.Context, q anomaly.Quarantine) (Receipt, error) {
					i := int(calls.Add(1)) - 1
					if q.Ref != "Q-1" || q.State != anomaly.StateReleased {
						t.Errorf("forwarded %+v", q)
					}
					if err := tt.errs[i]; err != nil {
						return Receipt{}, err
					}
					return Receipt{ID: "C-1", Status: "accepted"}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			// Sweep well past every backoff; each due retry runs once.
			for range 20 {
				if _, err := r.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
				clock.add(time.Minute)
			}
			if got := int(calls.Load()); got != tt.wantCalls {
				t.Errorf("%d forwarding attempts, want %d", got, tt.wantCalls)
			}
			q, err := s.Quarantine(ctx, "Q-1")
			if err != nil {
				t.Fatal(err)
			}
			f := q.Forwarding
			if f.State != tt.want || f.Attempts != tt.wantCalls {
				t.Errorf("forwarding %+v, want %s after %d attempts", f, tt.want, tt.wantCalls)
			}
			if tt.want == anomaly.ForwardForwarded && (f.CommandID != "C-1" || f.Error != "" || f.At.IsZero()) {
				t.Errorf("forwarded record %+v", f)
			}
			if tt.wantError != nil && f.Error == "" {
				t.Errorf("failed record %+v has no error", f)
			}
		})
	}
}

// TestReleasesBackoff checks the retry delays double up to the cap.
func TestReleasesBackoff(t *testing.T) {
	r, err := NewReleases(ReleasesConfig{Queue: &store.AnomalyStore{}, Forward: func(context.Context, anomaly.Quarantine) (Receipt, error) { return Receipt{}, nil },
		Retry: time.Second, MaxRetry: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 40: 5 * time.Second} {
		if got := r.backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}

// TestReleasesForwardOnce has the synchronous path and sweepers race for one
// release: it is forwarded exactly once, and the losers of the race say it
// is pending.
func TestReleasesForwardOnce(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().UTC()
	s := releaseStore(t, t0, "Q-1")
	var calls atomic.Int32
	r, err := NewReleases(ReleasesConfig{Queue: s, Forward: func(context.Context, anomaly.Quarantine) (Receipt, error) {
		calls.Add(1)
		return Receipt{ID: "C-1"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.Quarantine(ctx, "Q-1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var pending atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				r.Sweep(ctx)
				return
			}
			if _, err := r.Forward(ctx, q); errors.Is(err, anomaly.ErrForwardPending) {
				pending.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("forwarded %d times, want once", n)
	}
	if _, err := r.Forward(ctx, q); !errors.Is(err, anomaly.ErrForwardPending) {
		t.Errorf("Forward of a forwarded release: %v, want ErrForwardPending", err)
	}
	if got, _ := s.Quarantine(ctx, "Q-1"); got.Forwarding.State != anomaly.ForwardForwarded {
		t.Errorf("forwarding %+v", got.Forwarding)
	}
	q.State = anomaly.StateQuarantined
	if _, err := r.Forward(ctx, q); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Forward of an undecided record: %v, want ErrBadRequest", err)
	}
}
